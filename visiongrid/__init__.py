"""VisionGrid: self-hosted video and image analysis on Ray Serve."""

__version__ = "0.1.0"
