"""The critic's crop: the fitting crop (fitter.crop.FitCrop.around the landmarks, the preset's margin), with
detector-like landmark noise and scale jitter while training.

At fit time the crop is taken around the detector's landmarks, which are neither the true points nor stable
from photo to photo; training on crops around noisy points teaches the critic the framing it will meet. The
noise is MediaPipe-like: per-point scatter plus a shift and a scale of the whole set (the landmark term's
default noise is 2 % of the face size; the detector's error on the synthetic benchmark is about 2.5 %).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..crop import FitCrop


@dataclass(frozen=True)
class CropJitter:
    point_sigma: float = 0.015  # per-point scatter, fraction of the landmark box's longer side
    shift_sigma: float = 0.02  # shift of the whole set, same unit
    scale_sigma: float = 0.05  # log-normal scale of the set about its centre

    def as_dict(self) -> dict:
        return {"point_sigma": self.point_sigma, "shift_sigma": self.shift_sigma, "scale_sigma": self.scale_sigma}


NO_JITTER = CropJitter(0.0, 0.0, 0.0)


def noisy_landmarks(points: np.ndarray, rng: np.random.Generator, jitter: CropJitter) -> np.ndarray:
    """``points`` (N, 2) as a detector might report them."""
    side = float(np.ptp(points, 0).max())
    centre = points.mean(0)
    scale = np.exp(rng.normal(0.0, jitter.scale_sigma)) if jitter.scale_sigma else 1.0
    shift = rng.normal(0.0, jitter.shift_sigma * side, 2) if jitter.shift_sigma else 0.0
    scatter = rng.normal(0.0, jitter.point_sigma * side, points.shape) if jitter.point_sigma else 0.0
    return (points - centre) * scale + centre + shift + scatter


def training_crop(points: np.ndarray, size: int, margin: float, rng: np.random.Generator,
                  jitter: CropJitter) -> FitCrop:
    """The fitting crop around detector-like landmarks of ``points`` (N, 2) pixels."""
    return FitCrop.around(noisy_landmarks(points, rng, jitter), size, margin)
