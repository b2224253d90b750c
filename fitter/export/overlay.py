"""overlay.png: the fitted mesh drawn over the photo, with observed (green) and fitted (red) landmarks."""
from __future__ import annotations

import cv2
import numpy as np

MAX_SIDE = 1600  # overlays of huge photos are downscaled to this


def draw_landmarks(canvas: np.ndarray, points: np.ndarray, colour: tuple[int, int, int], scale: float,
                   radius: int = 1) -> None:
    for x, y in np.asarray(points, np.float64) * scale:
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(canvas, (int(round(x - 0.5)), int(round(y - 0.5))), radius, colour, -1, cv2.LINE_AA)


def wireframe_overlay(rgb: np.ndarray, pixels: np.ndarray, edges: np.ndarray, visible: np.ndarray,
                      observed: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Photo with the projected mesh edges (visible ones) blended in and both landmark sets drawn."""
    h, w = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    base = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    layer = base.copy()
    p = pixels * scale - 0.5
    keep = visible[edges].all(axis=1)
    lines = np.round(p[edges[keep]] * 16).astype(np.int32)  # fixed-point (4 fractional bits)
    cv2.polylines(layer, list(lines), False, (80, 200, 255), 1, cv2.LINE_AA, shift=4)
    out = cv2.addWeighted(layer, 0.6, base, 0.4, 0)
    radius = max(1, round(max(base.shape[:2]) / 400))
    draw_landmarks(out, observed, (40, 220, 40), scale, radius)
    draw_landmarks(out, fitted, (230, 40, 40), scale, radius)
    return out


def shaded_overlay(rgb: np.ndarray, render: np.ndarray, mask: np.ndarray, observed: np.ndarray,
                   fitted: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """Photo with a shaded render (float RGB in [0, 1], same size) blended where ``mask`` is set."""
    h, w = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    out = rgb.astype(np.float32) / 255.0
    a = (mask.astype(np.float32) * alpha)[..., None]
    out = (out * (1 - a) + render * a).clip(0, 1)
    out = (out * 255 + 0.5).astype(np.uint8)
    if scale != 1.0:
        out = cv2.resize(out, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    radius = max(1, round(max(out.shape[:2]) / 400))
    draw_landmarks(out, observed, (40, 220, 40), scale, radius)
    draw_landmarks(out, fitted, (230, 40, 40), scale, radius)
    return out
