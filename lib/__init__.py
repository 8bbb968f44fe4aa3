"""Facial-landmark knowledge-distillation kit: data, models, losses, metrics, export, submission."""
