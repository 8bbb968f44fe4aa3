"""Two-stage training: the engine shared by the teacher and the distilled student."""
