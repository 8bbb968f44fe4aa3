"""Figures: landmark overlays and grids."""
