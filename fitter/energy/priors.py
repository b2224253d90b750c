"""Gaussian priors that keep the fit plausible where the data says little.

Identity coefficients of ICT (and of the other loaders, which normalise to unit variance) are ~ N(0, 1);
expression coefficients are blendshape weights in [0, 1] with most of them near 0; the focal length has a
log-normal prior around a guess (EXIF or a default field of view).
"""
from __future__ import annotations

import math

import torch

from ..scene import Scene


class IdentityPrior:
    """||identity||^2 (shared by all frames, so spread evenly over them)."""

    name = "identity_prior"

    def __call__(self, scene: Scene) -> torch.Tensor:
        s = scene.state
        return (s.identity**2).sum().expand(s.num_frames) / s.num_frames


class ExpressionPrior:
    """||expression / sigma||^2 per frame, plus a steep penalty outside the blendshape range [0, 1]."""

    name = "expression_prior"

    def __init__(self, sigma: float = 0.5, bound_weight: float = 1.0e3) -> None:
        self.sigma = sigma
        self.bound_weight = bound_weight

    def __call__(self, scene: Scene) -> torch.Tensor:
        e = scene.state.expression
        outside = torch.relu(-e) ** 2 + torch.relu(e - 1.0) ** 2
        return ((e / self.sigma) ** 2).sum(-1) + self.bound_weight * outside.sum(-1)


class FocalPrior:
    """((log f - log f0) / sigma)^2 per view, spread over the frames of the view."""

    name = "focal_prior"

    def __init__(self, focal_guess: float, log_sigma: float = 0.5) -> None:
        self.log_f0 = math.log(focal_guess)
        self.log_sigma = log_sigma

    def __call__(self, scene: Scene) -> torch.Tensor:
        s = scene.state
        per_view = ((s.log_focal - self.log_f0) / self.log_sigma) ** 2
        counts = torch.bincount(s.frame_view, minlength=len(per_view)).clamp(min=1)
        return (per_view / counts)[s.frame_view]
