"""Light prior: keeps the higher SH bands moderate relative to the ambient term (no extreme, overfitted
lights that would explain shape by shading)."""
from __future__ import annotations

import torch

from ..common.settings import Setting
from ..scene import Scene
from .base import Term, TermSpec, register

MIN_AMBIENT = 1e-3  # the ambient level a ratio is taken against never falls below this (no division by ~0)


class LightPrior(Term):
    name = "light_prior"

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = sigma

    def __call__(self, scene: Scene) -> torch.Tensor:
        sh = scene.state.sh
        ambient = sh[:, :1].abs().mean(-1, keepdim=True).detach().clamp(min=MIN_AMBIENT)
        return (((sh[:, 1:] / ambient) / self.sigma) ** 2).sum((1, 2))


SPEC = register(TermSpec(
    "light_prior", lambda ctx: LightPrior(float(ctx.section("light_prior")["sigma"])),
    settings={"sigma": Setting("float", "higher SH bands relative to the ambient term", positive=True)},
    doc="moderate SH lighting"))
