"""Expression prior: ||expression / sigma||^2 per frame, plus a steep penalty outside the model's expression
range (ICT's blendshape weights live in [0, 1], most of them near 0; PCA expressions have no range), plus an
optional sparsity cost ``sparsity * sum(|e| / sigma)`` (smoothed at ``SMOOTH``) that switches weak coefficients
off instead of shrinking them: for captures whose expressions use few blendshapes (0 in every preset: on real
photos it moved the fit off the parts; docs/fitting.md "A sparse expression").
Expressions belong to time instants; an instant seen by several views spreads its value over their images."""
from __future__ import annotations

import torch

from ..common.settings import Setting
from ..scene import Scene
from .base import Term, TermContext, TermSpec, register


SMOOTH = 0.01  # |e| is sqrt(e^2 + SMOOTH^2) - SMOOTH: differentiable at 0, linear beyond a few hundredths


class ExpressionPrior(Term):
    name = "expression_prior"

    def __init__(self, sigma: float = 0.5, bound_weight: float = 1.0e3,
                 bounds: tuple[float, float] | None = (0.0, 1.0), sparsity: float = 0.0) -> None:
        self.sigma = sigma
        self.bound_weight = bound_weight
        self.bounds = bounds
        self.sparsity = sparsity

    def __call__(self, scene: Scene) -> torch.Tensor:
        e = scene.state.expression
        energy = ((e / self.sigma) ** 2).sum(-1)
        if self.sparsity:
            energy = energy + self.sparsity * ((e.square() + SMOOTH**2).sqrt() - SMOOTH).sum(-1) / self.sigma
        if self.bounds is not None:
            low, high = self.bounds
            outside = torch.relu(low - e) ** 2 + torch.relu(e - high) ** 2
            energy = energy + self.bound_weight * outside.sum(-1)
        return scene.state.spread_instants(energy)


def build(ctx: TermContext) -> ExpressionPrior:
    cfg = ctx.section("expression_prior")
    return ExpressionPrior(float(cfg["sigma"]), float(cfg["bound_weight"]), ctx.model.expression_bounds,
                           float(cfg["sparsity"]))


SPEC = register(TermSpec(
    "expression_prior", build,
    settings={"sigma": Setting("float", "expression coefficient scale", positive=True),
              "bound_weight": Setting("float", "penalty per squared unit outside the model's range", low=0),
              "sparsity": Setting("float", "weight of sum(|e| / sigma): few blendshapes active (0 = off)", low=0)},
    doc="expression coefficients near zero and inside the model's range"))
