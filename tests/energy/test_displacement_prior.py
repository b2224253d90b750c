"""Unit tests of the displacement prior (fitter.energy.displacement_prior): each part's value on maps computed
by hand, resolution independence, the gradient, the line reweighting's effect, and the frame spread."""
from __future__ import annotations

import math

import pytest
import torch

from fitter.energy.displacement_prior import DisplacementPrior
from fitter.scene import Scene
from fitter.state import FitState
from frames import assert_spread_evenly

OFF = dict(smoothness=0.0, magnitude=0.0, low_frequency=0.0, sparsity=0.0, raised=0.0)


def state_with(displacement: torch.Tensor) -> FitState:
    state = FitState.single(2, 2, (64, 64), 500.0)
    state.displacement = displacement[None, None]
    return state


def ramp(size: int, slope_cm_per_uv: float) -> torch.Tensor:
    """d(u) = slope * u over the map (texel centres), cm."""
    u = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    return (slope_cm_per_uv * u)[None, :].expand(size, size).contiguous()


def value(scene_model, displacement: torch.Tensor, **settings) -> float:
    options = dict(OFF)
    options.update(settings)
    return float(DisplacementPrior(**options)(Scene(scene_model, state_with(displacement)))[0])


class TestDisplacementPriorValue:
    """Each part alone on a map whose energy is known (the map is in cm, the prior in mm)."""

    def test_magnitude(self, ict):
        assert value(ict, torch.full((8, 8), 0.02), magnitude=2.0) == pytest.approx(2.0 * 0.2**2)

    def test_smoothness_of_a_ramp(self, ict):
        # a ramp rising 0.512 cm over the tile: 0.01 mm per texel of the 512 reference grid, along u only
        size = 64
        assert value(ict, ramp(size, 0.512), smoothness=3.0) == pytest.approx(3.0 * 0.01**2, rel=1e-6)

    def test_smoothness_does_not_depend_on_the_map_size(self, ict):
        coarse, fine = (value(ict, ramp(s, 0.3), smoothness=1.0) for s in (32, 128))
        assert coarse == pytest.approx(fine, rel=1e-6)

    def test_sparsity_and_raised(self, ict):
        eps = 0.01
        pen = math.sqrt(0.1**2 + eps**2) - eps  # a 0.1 mm displacement
        groove = value(ict, torch.full((8, 8), -0.01), sparsity=2.0, sparsity_eps=eps, raised=5.0)
        ridge = value(ict, torch.full((8, 8), 0.01), sparsity=2.0, sparsity_eps=eps, raised=5.0)
        assert groove == pytest.approx(2.0 * pen, rel=1e-6)
        assert ridge == pytest.approx((2.0 + 5.0) * pen, rel=1e-6)  # raised texels pay more

    def test_low_frequency_prefers_fine_detail(self, ict):
        size = 64
        broad = torch.full((size, size), 0.01)
        sign = (torch.arange(size)[:, None] + torch.arange(size)[None, :]) % 2 * 2 - 1
        fine = 0.01 * sign.to(torch.float32)  # same magnitude, highest frequency
        assert value(ict, broad, low_frequency=1.0) > 100 * value(ict, fine, low_frequency=1.0)
        assert value(ict, torch.zeros(size, size), low_frequency=1.0) == 0.0


class TestDisplacementPriorGradient:
    """The analytic gradient matches finite differences with every part on (a map without zero texels: the
    raised penalty switches at 0)."""

    def test_gradcheck(self, ict):
        term = DisplacementPrior(smoothness=1.0, magnitude=0.5, low_frequency=2.0, low_sigma=16.0, sparsity=1.0,
                                 sparsity_eps=0.01, raised=3.0)

        def energy(d):
            return term(Scene(ict, state_with(d)))

        d = 0.01 * torch.randn(8, 8, dtype=torch.float64)
        d = (d + 0.002 * d.sign()).requires_grad_(True)
        assert torch.autograd.gradcheck(energy, (d,))


class TestDisplacementPriorLines:
    """With ``line`` > 0, update() lowers the sparsity cost of a line-like groove (and not of the flat map)."""

    def test_groove_costs_less_after_update(self, ict):
        d = torch.zeros(128, 128)
        d[60, 10:118] = -0.03  # a 0.3 mm groove along a row
        term = DisplacementPrior(**dict(OFF, sparsity=1.0), line=0.1, line_floor=0.05)
        scene = Scene(ict, state_with(d))
        before = float(term(scene)[0])
        term.update(scene)
        after = float(term(scene)[0])
        assert after < 0.3 * before
        term.line = 0.0
        term.update(scene)  # no line prior: uniform weights again
        assert term.texel_weight is None and float(term(scene)[0]) == pytest.approx(before)


class TestDisplacementPriorFrames:
    """The map is shared by the subject: the prior is spread evenly over its frames."""

    def test_spread_over_frames(self, ict):
        term = DisplacementPrior(smoothness=1.0, magnitude=0.5, low_frequency=1.0, sparsity=1.0, raised=2.0)
        assert_spread_evenly(term, ict, state_with(0.01 * torch.randn(16, 16)))
