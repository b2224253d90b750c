"""overlay.png: the fitted mesh rendered over the photo, with observed (green) and fitted (red) landmarks."""
from __future__ import annotations

import cv2
import numpy as np

MAX_SIDE = 1600  # overlays of huge photos are downscaled to this


def draw_landmarks(canvas: np.ndarray, points: np.ndarray, colour: tuple[int, int, int], scale: float,
                   radius: int = 1) -> np.ndarray:
    """Filled dots at ``points * scale`` on ``canvas`` (H, W, 3) uint8; returns the canvas drawn on.

    OpenCV draws only into C-contiguous arrays: any other layout (a strided view, a reordered copy) is drawn
    on a contiguous copy that is written back, so the caller's array shows the dots either way. Non-finite
    points are left out.
    """
    target = canvas if canvas.flags["C_CONTIGUOUS"] and canvas.flags["WRITEABLE"] else np.ascontiguousarray(canvas)
    for x, y in np.asarray(points, np.float64).reshape(-1, 2) * scale:
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(target, (int(round(x - 0.5)), int(round(y - 0.5))), radius, colour, -1, cv2.LINE_AA)
    if target is not canvas and canvas.flags["WRITEABLE"]:
        canvas[...] = target
    return target


def shaded_overlay(rgb: np.ndarray, render: np.ndarray, mask: np.ndarray, observed: np.ndarray,
                   fitted: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """Photo (uint8, same size as the render) with a render (float RGB in [0, 1]) blended where ``mask`` is set,
    observed landmarks in green and fitted ones in red (pixel coordinates of this image)."""
    out = np.asarray(rgb).astype(np.float32, order="C") / 255.0
    a = (mask.astype(np.float32) * alpha)[..., None]
    out = np.ascontiguousarray(((out * (1 - a) + render * a).clip(0, 1) * 255 + 0.5).astype(np.uint8))
    radius = max(1, round(max(out.shape[:2]) / 400))
    out = draw_landmarks(out, observed, (40, 220, 40), 1.0, radius)
    return draw_landmarks(out, fitted, (230, 40, 40), 1.0, radius)
