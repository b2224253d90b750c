"""facefit: offline 3D face capture by analysis-by-synthesis (library package)."""

__version__ = "0.1.0"
