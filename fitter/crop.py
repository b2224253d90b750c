"""The fitting crop: a square window around a face, resampled to a fixed resolution.

Image-space energies (PRDL anchors, photometric comparison) work inside this crop so that their cost and
their weights do not depend on the photo's resolution or the face's size in it.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class FitCrop:
    x0: float  # top-left corner of the window in full-image pixels
    y0: float
    side: float  # window side in full-image pixels
    size: int  # resolution the window is resampled to

    @classmethod
    def around(cls, points: np.ndarray, size: int, margin: float = 0.25) -> "FitCrop":
        """A square window around ``points`` (N, 2) grown by ``margin`` of its side on every edge."""
        lo, hi = np.nanmin(points, 0), np.nanmax(points, 0)
        centre = (lo + hi) / 2
        side = float(max(hi - lo) * (1 + 2 * margin))
        return cls(float(centre[0] - side / 2), float(centre[1] - side / 2), max(side, 8.0), int(size))

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return self.size / self.side

    def to_crop(self, pixels: torch.Tensor) -> torch.Tensor:
        """Full-image pixel coordinates -> crop pixel coordinates (same pixel-corner convention)."""
        offset = torch.tensor([self.x0, self.y0], dtype=pixels.dtype, device=pixels.device)
        return (pixels - offset) * self.scale

    def line(self, line) -> np.ndarray:
        """A line ``(px, py, nx, ny)`` through an image point with a unit normal -> the same line in crop pixels."""
        px, py, nx, ny = (float(v) for v in line)
        return np.array([(px - self.x0) * self.scale, (py - self.y0) * self.scale, nx, ny], np.float64)

    def pixel_centres(self) -> np.ndarray:
        """(size * size, 2) crop coordinates (x, y) of the crop's pixel centres, row by row."""
        c = np.arange(self.size) + 0.5
        x, y = np.meshgrid(c, c)
        return np.stack([x.ravel(), y.ravel()], 1)

    def K(self, K: torch.Tensor) -> torch.Tensor:
        """Intrinsics (F, 3, 3) of the full image -> intrinsics that project straight into the crop."""
        s = self.scale
        A = torch.tensor([[s, 0.0, -self.x0 * s], [0.0, s, -self.y0 * s], [0.0, 0.0, 1.0]],
                         dtype=K.dtype, device=K.device)
        return A @ K

    def image(self, rgb: np.ndarray, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Resample an (H, W[, C]) array to the crop (size, size[, C]).

        ``origin``: the full-image pixel where the array's pixel (0, 0) lies (e.g. a mask covering only a
        region of the photo). Area-like filtering when shrinking; edges replicate for images, zero for masks.
        """
        s = self.scale
        M = np.array([[s, 0.0, (origin[0] - self.x0) * s], [0.0, s, (origin[1] - self.y0) * s]], np.float64)
        # warpAffine maps pixel centres; our corner convention needs a half-pixel shift on both sides
        M[:, 2] += 0.5 * s - 0.5
        if s < 1:  # warpAffine has no area filter: pre-blur for the downscale
            k = int(round(1 / s)) | 1
            rgb = cv2.GaussianBlur(rgb, (k, k), 0.5 / s)
        border = cv2.BORDER_REPLICATE if origin == (0.0, 0.0) else cv2.BORDER_CONSTANT
        return cv2.warpAffine(rgb, M, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=border)

    def mask(self, mask: np.ndarray, origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """A boolean mask resampled to the crop (bool (size, size))."""
        return self.image(mask.astype(np.uint8) * 255, origin) > 127


def below_line(points: np.ndarray, line: np.ndarray | None) -> np.ndarray:
    """(N,) bool: crop points (N, 2) on the normal's side of a line ``(px, py, nx, ny)`` in crop pixels (the
    mouth's side of a brow line; all True without one)."""
    if line is None:
        return np.ones(len(points), bool)
    return (points[:, 0] - line[0]) * line[2] + (points[:, 1] - line[1]) * line[3] >= 0.0
