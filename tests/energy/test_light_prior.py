"""Unit tests of the light prior (fitter.energy.light_prior): the higher SH bands relative to the ambient one."""
from __future__ import annotations

import pytest
import torch

from fitter.energy.light_prior import MIN_AMBIENT, LightPrior
from fitter.scene import Scene
from fitter.state import FitState
from numeric import autograd_gradient

SIGMA = 0.5


def state_with(sh: torch.Tensor) -> FitState:
    state = FitState.single(2, 2, (64, 64), 500.0, frames=sh.shape[0])
    state.sh = sh
    return state


class TestLightPriorValue:
    """sum over bands 1-8 and channels of (sh / ambient / sigma)^2, ambient = mean |band 0| over channels."""

    def test_value(self, ict):
        sh = torch.zeros(1, 9, 3)
        sh[0, 0] = torch.tensor([2.0, -2.0, 2.0])  # |band 0| averages to 2 whatever its sign
        sh[0, 2] = torch.tensor([1.0, 0.5, 0.0])
        value = LightPrior(SIGMA)(Scene(ict, state_with(sh)))
        assert value.shape == (1,)
        assert float(value[0]) == pytest.approx((0.25 + 0.0625) / SIGMA**2)

    def test_ambient_only_light_is_free(self, ict):
        sh = torch.zeros(1, 9, 3)
        sh[0, 0] = 3.5
        assert float(LightPrior(SIGMA)(Scene(ict, state_with(sh)))[0]) == 0.0

    def test_no_ambient_is_finite(self, ict):
        sh = torch.zeros(1, 9, 3)
        sh[0, 1, 0] = 1e-3
        value = LightPrior(SIGMA)(Scene(ict, state_with(sh)))
        assert float(value[0]) == pytest.approx((1e-3 / MIN_AMBIENT / SIGMA) ** 2)


class TestLightPriorGradient:
    """The higher bands get the gradient of the ratio; the ambient band none (it is the held reference)."""

    def test_gradcheck_higher_bands(self, ict):
        ambient = torch.tensor([[[1.5, 2.0, 1.0]]], dtype=torch.float64)

        def energy(bands):
            return LightPrior(SIGMA)(Scene(ict, state_with(torch.cat([ambient.expand(2, 1, 3), bands], 1))))

        bands = torch.randn(2, 8, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(energy, (bands,))

    def test_no_gradient_on_the_ambient_band(self, ict):
        sh = torch.randn(1, 9, 3, dtype=torch.float64)
        grad = autograd_gradient(lambda x: LightPrior(SIGMA)(Scene(ict, state_with(x))).sum(), sh)
        assert bool((grad[:, 0] == 0).all()) and float(grad[:, 1:].abs().sum()) > 0


class TestLightPriorFrames:
    """Light is per frame: each frame's value is its own light's prior (shape (F,))."""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_rows(self, ict, frames):
        sh = torch.randn(frames, 9, 3)
        values = LightPrior(SIGMA)(Scene(ict, state_with(sh)))
        assert values.shape == (frames,)
        for f in range(frames):
            torch.testing.assert_close(values[f : f + 1], LightPrior(SIGMA)(Scene(ict, state_with(sh[f : f + 1]))))
