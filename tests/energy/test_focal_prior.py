"""Unit tests of the focal prior (fitter.energy.focal_prior): ((log f - log f0) / sigma)^2 per view, spread over
the frames each view sees."""
from __future__ import annotations

import math

import pytest
import torch

from fitter.energy.focal_prior import FocalPrior
from fitter.scene import Scene
from fitter.state import FitState
from frames import assert_spread_evenly

LOG_SIGMA = 0.4
GUESS = 1000.0


def two_view_state(focals: tuple[float, float], frame_view: list[int]) -> FitState:
    """A subject seen by two cameras; ``frame_view`` says which camera took each frame."""
    state = FitState.single(2, 2, (64, 64), focals[0], frames=len(frame_view))
    state.log_focal = torch.log(torch.tensor(focals))
    state.principal = torch.tensor([[32.0, 32.0], [32.0, 32.0]])
    state.image_size = torch.tensor([[64, 64], [64, 64]])
    state.frame_view = torch.tensor(frame_view)
    return state


class TestFocalPriorValue:
    """One sigma away from the guess (in log focal) costs 1; at the guess, 0."""

    @pytest.mark.parametrize("sigmas, expected", [(1.0, 1.0), (-2.0, 4.0), (0.0, 0.0)])
    def test_single_view(self, ict, sigmas, expected):
        state = FitState.single(2, 2, (64, 64), GUESS * math.exp(sigmas * LOG_SIGMA))
        value = FocalPrior(GUESS, LOG_SIGMA)(Scene(ict, state))
        assert value.shape == (1,)
        assert float(value[0]) == pytest.approx(expected, abs=1e-5)

    def test_views_have_their_own_guess_and_share_over_their_frames(self, ict):
        state = two_view_state((GUESS * math.exp(LOG_SIGMA), 2 * GUESS), [0, 0, 1])
        value = FocalPrior([GUESS, 2 * GUESS * math.exp(-2 * LOG_SIGMA)], LOG_SIGMA)(Scene(ict, state))
        # view 0: 1 sigma, over its two frames; view 1: 2 sigmas, one frame
        torch.testing.assert_close(value, torch.tensor([0.5, 0.5, 4.0]), rtol=1e-5, atol=1e-5)


class TestFocalPriorGradient:
    """The analytic gradient in log focal matches finite differences (two views, three frames)."""

    def test_gradcheck(self, ict):
        state = two_view_state((900.0, 1500.0), [0, 1, 1])
        term = FocalPrior([GUESS, 1200.0], LOG_SIGMA)

        def energy(log_focal):
            s = state.detached()
            s.log_focal = log_focal
            return term(Scene(ict, s))

        log_focal = state.log_focal.double().requires_grad_(True)
        assert torch.autograd.gradcheck(energy, (log_focal,))


class TestFocalPriorFrames:
    """One view seen in several frames: the view's prior is spread evenly over them."""

    def test_spread_over_frames(self, ict):
        state = FitState.single(2, 2, (64, 64), GUESS * 1.3)
        assert_spread_evenly(FocalPrior(GUESS, LOG_SIGMA), ict, state)
