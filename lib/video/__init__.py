"""Landmarks on video: tracking between detections, One Euro smoothing, jitter and lag."""
