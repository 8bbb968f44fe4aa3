"""Dataset analysis: shape alignment, shape statistics and simple baselines."""
