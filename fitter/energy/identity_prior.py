"""Identity prior: ||identity||^2. Identity coefficients of ICT (and of the other loaders, which normalise to
unit variance) are ~ N(0, 1); the identity is shared by all frames, so the prior is spread evenly over them."""
from __future__ import annotations

import torch

from ..scene import Scene
from .base import Term, TermSpec, register, spread_over_frames


class IdentityPrior(Term):
    name = "identity_prior"

    def __call__(self, scene: Scene) -> torch.Tensor:
        s = scene.state
        return spread_over_frames((s.identity**2).sum(), s.num_frames)


SPEC = register(TermSpec("identity_prior", lambda ctx: IdentityPrior(),
                         doc="squared identity coefficients (unit-variance Gaussian)"))
