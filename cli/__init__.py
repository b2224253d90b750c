"""The facefit command-line interface (click + rich)."""
