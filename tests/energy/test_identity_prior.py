"""Unit tests of the identity prior (fitter.energy.identity_prior): ||identity||^2, spread over the frames."""
from __future__ import annotations

import pytest
import torch

from fitter.energy.identity_prior import IdentityPrior, mode_weights
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


class TestModeRamp:
    """A stage's ``identity_prior_ramp`` holds later modes harder (1 + (k / ramp)^2); 0 leaves every mode alike."""

    def test_weights(self):
        assert mode_weights(4, 0.0).tolist() == [1.0, 1.0, 1.0, 1.0]
        assert mode_weights(4, 2.0).tolist() == pytest.approx([1.0, 1.25, 2.0, 3.25])

    def test_stage_sets_the_ramp(self, ict):
        prior = IdentityPrior()
        scene = Scene(ict, state_with(torch.tensor([1.0, -2.0, 3.0, 0.5])))
        prior.configure({"identity_prior_ramp": 2.0})
        assert float(prior(scene)[0]) == pytest.approx(1 + 1.25 * 4 + 2.0 * 9 + 3.25 * 0.25)
        prior.configure({})  # the next stage without the key: back to the flat prior
        assert float(prior(scene)[0]) == pytest.approx(1 + 4 + 9 + 0.25)

    def test_schema_knows_the_key(self, tmp_path):
        from fitter.optimize.presets import load_preset
        config = tmp_path / "ramp.toml"
        config.write_text('[[stages]]\nname = "s"\nfree = ["identity"]\niterations = 1\n'
                          'weights = { identity_prior = 1.0 }\nidentity_prior_ramp = 10.0\n')
        assert load_preset("fast", config)["stages"][0]["identity_prior_ramp"] == 10.0
        config.write_text(config.read_text().replace("identity_prior_ramp = 10.0", "identity_prior_ramp = -1.0"))
        with pytest.raises(Exception, match="identity_prior_ramp"):
            load_preset("fast", config)
