"""Identity prior: ||identity||^2. Identity coefficients of ICT (and of the other loaders, which normalise to
unit variance) are ~ N(0, 1); the identity is shared by all frames, so the prior is spread evenly over them.

A stage may set ``identity_prior_ramp = r`` (> 0) to hold the later, finer modes harder: mode k (0-based, modes
in the model's order, largest variance first) weighs ``1 + (k / r)^2``. Evidence that reads only the coarse
shape (shading on a small face) can then move the large modes without the fine ones absorbing its noise."""
from __future__ import annotations

import torch

from ..common.settings import Setting
from ..scene import Scene
from .base import Term, TermSpec, register, spread_over_frames


def mode_weights(count: int, ramp: float, device: torch.device | None = None) -> torch.Tensor:
    """Per-mode prior weights: all 1 for ``ramp <= 0``, else ``1 + (k / ramp)^2``."""
    k = torch.arange(count, dtype=torch.float32, device=device)
    return torch.ones_like(k) if ramp <= 0 else 1.0 + (k / ramp) ** 2


class IdentityPrior(Term):
    name = "identity_prior"

    def __init__(self) -> None:
        self.ramp = 0.0

    def configure(self, stage: dict) -> None:
        self.ramp = float(stage.get("identity_prior_ramp", 0.0))

    def __call__(self, scene: Scene) -> torch.Tensor:
        s = scene.state
        w = mode_weights(s.identity.shape[-1], self.ramp, s.identity.device)
        return spread_over_frames((w * s.identity**2).sum(), s.num_frames)


SPEC = register(TermSpec(
    "identity_prior", lambda ctx: IdentityPrior(),
    stage_settings={"identity_prior_ramp": Setting("float", "> 0: mode k weighs 1 + (k / ramp)^2 (finer modes "
                                                   "held harder); 0: every mode alike", low=0)},
    doc="squared identity coefficients (unit-variance Gaussian)"))
