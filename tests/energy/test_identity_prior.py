"""Unit tests of the identity prior (fitter.energy.identity_prior): ||identity||^2, spread over the frames."""
from __future__ import annotations

import pytest
import torch

from fitter.energy.identity_prior import IdentityPrior
from fitter.scene import Scene
from fitter.state import FitState
from frames import assert_spread_evenly


def state_with(identity: torch.Tensor) -> FitState:
    state = FitState.single(len(identity), 3, (64, 64), 500.0)
    state.identity = identity
    return state


class TestIdentityPrior:
    """The squared norm of the shared identity coefficients, its gradient, and its even spread over frames."""

    def test_value(self, ict):
        value = IdentityPrior()(Scene(ict, state_with(torch.tensor([1.0, -2.0, 3.0, 0.5]))))
        assert value.shape == (1,)
        assert float(value[0]) == pytest.approx(1 + 4 + 9 + 0.25)

    def test_gradient(self, ict):
        def energy(identity):
            return IdentityPrior()(Scene(ict, state_with(identity)))

        identity = torch.randn(5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(energy, (identity,))

    def test_spread_over_frames(self, ict):
        assert_spread_evenly(IdentityPrior(), ict, state_with(torch.tensor([1.0, -2.0, 3.0, 0.5])))
