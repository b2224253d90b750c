"""Expression prior: ||expression / sigma||^2 per frame, plus a steep penalty outside the model's expression
range (ICT's blendshape weights live in [0, 1], most of them near 0; PCA expressions have no range).
Expressions belong to time instants; an instant seen by several views spreads its value over their images."""
from __future__ import annotations

import torch

from ..common.settings import Setting
from ..scene import Scene
from .base import Term, TermContext, TermSpec, register


class ExpressionPrior(Term):
    name = "expression_prior"

    def __init__(self, sigma: float = 0.5, bound_weight: float = 1.0e3,
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> None:
        self.sigma = sigma
        self.bound_weight = bound_weight
        self.bounds = bounds

    def __call__(self, scene: Scene) -> torch.Tensor:
        e = scene.state.expression
        energy = ((e / self.sigma) ** 2).sum(-1)
        if self.bounds is not None:
            low, high = self.bounds
            outside = torch.relu(low - e) ** 2 + torch.relu(e - high) ** 2
            energy = energy + self.bound_weight * outside.sum(-1)
        return scene.state.spread_instants(energy)


def build(ctx: TermContext) -> ExpressionPrior:
    cfg = ctx.section("expression_prior")
    return ExpressionPrior(float(cfg["sigma"]), float(cfg["bound_weight"]), ctx.model.expression_bounds)


SPEC = register(TermSpec(
    "expression_prior", build,
    settings={"sigma": Setting("float", "expression coefficient scale", positive=True),
              "bound_weight": Setting("float", "penalty per squared unit outside the model's range", low=0)},
    doc="expression coefficients near zero and inside the model's range"))
