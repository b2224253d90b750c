"""Focal prior: ((log f - log f0) / sigma)^2 per view around the starting guess (EXIF, a known focal length or
a default field of view), spread over the frames of the view."""
from __future__ import annotations

import math

import torch

from ..common.settings import Setting
from ..scene import Scene
from .base import Term, TermContext, TermSpec, register


class FocalPrior(Term):
    name = "focal_prior"

    def __init__(self, focal_guess: float | list[float], log_sigma: float = 0.5) -> None:
        guesses = focal_guess if isinstance(focal_guess, (list, tuple)) else [focal_guess]
        self.log_f0 = torch.tensor([math.log(f) for f in guesses])
        self.log_sigma = log_sigma

    def __call__(self, scene: Scene) -> torch.Tensor:
        s = scene.state
        per_view = ((s.log_focal - self.log_f0.to(s.log_focal)) / self.log_sigma) ** 2
        counts = torch.bincount(s.frame_view, minlength=len(per_view)).clamp(min=1)
        return (per_view / counts)[s.frame_view]


def build(ctx: TermContext) -> FocalPrior:
    return FocalPrior(list(ctx.focal_guess), float(ctx.section("focal_prior")["log_sigma"]))


SPEC = register(TermSpec(
    "focal_prior", build,
    settings={"log_sigma": Setting("float", "log-normal width around the focal guess", positive=True)},
    doc="focal length near its guess"))
