"""Losses: STAR (v2), Adaptive Wing, heatmap and feature distillation, and the composite criterion."""
