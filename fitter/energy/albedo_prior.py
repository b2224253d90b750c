"""Albedo prior: smoothness (sum_k lambda_k |c_k|^2 over the Laplacian-harmonic basis), left/right symmetry and
a skin-tone prior on the mean albedo. The albedo is shared by the subject, so it is spread over the frames."""
from __future__ import annotations

import torch

from ..common.settings import Setting
from ..model.albedo import AlbedoBasis, albedo_basis
from ..scene import Scene
from .base import Term, TermContext, TermSpec, register, spread_over_frames


class AlbedoPrior(Term):
    name = "albedo_prior"

    def __init__(self, albedo: AlbedoBasis, smoothness: float = 1.0, symmetry: float = 1.0,
                 mean_colour: tuple[float, float, float] | None = None, mean_sigma: float = 0.2,
                 symmetry_scale: float = 0.02) -> None:
        self.albedo = albedo
        self.smoothness = smoothness
        self.symmetry = symmetry
        self.symmetry_scale = symmetry_scale
        self.mean_colour = None if mean_colour is None else torch.tensor(mean_colour)
        self.mean_sigma = mean_sigma
        b = albedo.basis
        self.antisym = b - b[albedo.mirror]  # (N, K): the part of each mode that breaks symmetry

    def __call__(self, scene: Scene) -> torch.Tensor:
        c = scene.state.albedo
        lam = self.albedo.eigenvalues.to(c) / self.albedo.eigenvalues[1:].mean().clamp(min=1e-9)
        e = self.smoothness * (lam[:, None] * c**2).sum()
        e = e + self.symmetry * ((self.antisym.to(c) @ c) ** 2).mean(0).sum() / (self.symmetry_scale**2)
        if self.mean_colour is not None:
            e = e + (((c[0] - self.mean_colour.to(c)) / self.mean_sigma) ** 2).sum()
        return spread_over_frames(e, scene.state.num_frames)


def build(ctx: TermContext) -> AlbedoPrior:
    cfg = ctx.section("albedo_prior")
    basis = albedo_basis(ctx.model, int(ctx.section("albedo")["modes"]))
    return AlbedoPrior(basis, float(cfg["smoothness"]), float(cfg["symmetry"]), tuple(cfg["mean_colour"]),
                       float(cfg["mean_sigma"]), float(cfg["symmetry_scale"]))


SPEC = register(TermSpec(
    "albedo_prior", build,
    settings={
        "smoothness": Setting("float", "weight of sum_k (lambda_k / mean lambda) |c_k|^2", low=0),
        "symmetry": Setting("float", "weight of left/right albedo differences", low=0),
        "symmetry_scale": Setting("float", "albedo difference that costs 1 (linear RGB)", positive=True),
        "mean_colour": Setting("floats", "skin-tone prior of the mean albedo (linear RGB)", low=0, high=1, length=3),
        "mean_sigma": Setting("float", "width of the skin-tone prior", positive=True),
    },
    doc="smooth, symmetric, skin-coloured albedo"))
