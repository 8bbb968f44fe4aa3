"""Models: timm backbones, heatmap heads, the AAM fusion, decoding and the registry."""

from lib.models.registry import build_model

__all__ = ["build_model"]
