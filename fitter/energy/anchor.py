"""Anchor: a trust region around the geometry the term first saw (the landmark + PRDL solution when the
photometric stages start). The face's projected surface points may move only about ``sigma`` of the face size
from where they were, so appearance terms refine the shape where shading is informative without walking away
from the image evidence; decreasing weights over the stages anneal the region open.

    E = sum_i |proj(p_i) - proj(p_i, start)|^2 / (sigma * face_size)^2   per frame, over evenly spaced points
    of the model's face region.
"""
from __future__ import annotations

import torch

from ..common.settings import Setting
from ..model.morphable import MorphableModel
from ..scene import Scene
from .base import Term, TermContext, TermSpec, register


class AnchorTerm(Term):
    name = "anchor"

    def __init__(self, model: MorphableModel, face_size: torch.Tensor, sigma: float = 0.01, points: int = 500,
                 region: str = "face") -> None:
        self.index = torch.as_tensor(model.topology.region_sample(region, points), device=model.device)
        self.scale = face_size * sigma  # (F,) pixels
        self.reference: torch.Tensor | None = None  # (F, N, 2) pixels

    @torch.no_grad()
    def initialise(self, scene: Scene) -> None:
        self.reference = scene.project(scene.vertices_at(self.index))[0].detach().clone()

    def __call__(self, scene: Scene) -> torch.Tensor:
        pix = scene.project(scene.vertices_at(self.index))[0]
        if self.reference is None:  # used before any stage initialised it: no displacement yet
            self.reference = pix.detach().clone()
        return (((pix - self.reference) / self.scale.to(pix)[:, None, None]) ** 2).sum((1, 2))


def build(ctx: TermContext) -> AnchorTerm:
    cfg = ctx.section("anchor")
    return AnchorTerm(ctx.model, torch.as_tensor(ctx.evidence.face_sizes(), device=ctx.device), float(cfg["sigma"]), int(cfg["points"]), str(cfg["region"]))


SPEC = register(TermSpec(
    "anchor", build,
    settings={
        "sigma": Setting("float", "allowed motion of the face's projected points, fraction of the face size",
                         positive=True),
        "points": Setting("int", "evenly spaced face-region vertices that are held", low=1),
        "region": Setting("str", "model region whose vertices are held"),
    },
    doc="trust region: projected face points stay near where the term's first stage found them"))
