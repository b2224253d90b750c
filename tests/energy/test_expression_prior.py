"""Unit tests of the expression prior (fitter.energy.expression_prior): ||e / sigma||^2 per frame plus a steep
penalty outside the model's expression range."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from fitter.energy.base import TermContext, registered_terms
from fitter.energy.expression_prior import SMOOTH, ExpressionPrior
from fitter.evidence import Evidence
from fitter.optimize.presets import load_preset
from fitter.scene import Scene
from fitter.state import FitState

SIGMA, BOUND_WEIGHT = 0.5, 1000.0


def state_with(expression: torch.Tensor) -> FitState:
    state = FitState.single(2, expression.shape[1], (64, 64), 500.0, frames=expression.shape[0])
    state.expression = expression
    return state


class TestExpressionPriorValue:
    """Inside the range only the Gaussian part counts; outside, bound_weight times the squared excess adds."""

    def test_inside_the_range(self, ict):
        term = ExpressionPrior(SIGMA, BOUND_WEIGHT, (0.0, 1.0))
        value = term(Scene(ict, state_with(torch.tensor([[0.5, 0.25, 0.0]]))))
        assert value.shape == (1,)
        assert float(value[0]) == pytest.approx((0.5 / SIGMA) ** 2 + (0.25 / SIGMA) ** 2)

    def test_outside_the_range(self, ict):
        e = torch.tensor([[-0.1, 1.2, 0.5]])
        gauss = float(((e / SIGMA) ** 2).sum())
        bounded = ExpressionPrior(SIGMA, BOUND_WEIGHT, (0.0, 1.0))(Scene(ict, state_with(e)))
        assert float(bounded[0]) == pytest.approx(gauss + BOUND_WEIGHT * (0.1**2 + 0.2**2), rel=1e-5)
        unbounded = ExpressionPrior(SIGMA, BOUND_WEIGHT, None)(Scene(ict, state_with(e)))
        assert float(unbounded[0]) == pytest.approx(gauss, rel=1e-6)


class TestExpressionPriorSparsity:
    """``sparsity`` adds sparsity * sum(|e|) / sigma (smoothed near 0): a constant pull that switches weak
    coefficients off, where the Gaussian part alone only shrinks them."""

    def test_value(self, ict):
        e = torch.tensor([[0.5, 0.25, 0.0]])
        plain = float(ExpressionPrior(SIGMA, BOUND_WEIGHT, (0.0, 1.0))(Scene(ict, state_with(e)))[0])
        sparse = float(ExpressionPrior(SIGMA, BOUND_WEIGHT, (0.0, 1.0), sparsity=2.0)(Scene(ict, state_with(e)))[0])
        smooth_abs = sum(math.sqrt(v * v + SMOOTH**2) - SMOOTH for v in (0.5, 0.25, 0.0))
        assert sparse - plain == pytest.approx(2.0 * smooth_abs / SIGMA, rel=1e-5)

    @staticmethod
    def fitted(ict, sparsity: float) -> torch.Tensor:
        """Two coefficients pulled towards 0.05 and 0.5 by a data term of weight 10, plus the prior."""
        target = torch.tensor([[0.05, 0.5]])
        e = torch.full((1, 2), 0.2, requires_grad=True)
        term = ExpressionPrior(SIGMA, BOUND_WEIGHT, (0.0, 1.0), sparsity=sparsity)
        opt = torch.optim.LBFGS([e], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            energy = 10.0 * ((e - target) ** 2).sum() + term(Scene(ict, state_with(e))).sum()
            energy.backward()
            return energy

        opt.step(closure)
        return e.detach()[0]

    def test_weak_coefficients_go_to_zero(self, ict):
        gauss, sparse = self.fitted(ict, 0.0), self.fitted(ict, 2.0)
        assert float(gauss[0]) == pytest.approx(0.05 * 10 / 14, abs=1e-3)  # Gaussian: shrunk, never zero
        assert abs(float(sparse[0])) < 0.01  # below the sparsity threshold: switched off
        assert float(sparse[1]) == pytest.approx((10 - 4) / 28, abs=0.01)  # strong: shrunk by a constant

    def test_off_by_default_in_the_presets(self, ict):
        spec = registered_terms()["expression_prior"]
        for name in ("fast", "default", "vfx"):
            assert spec.build(TermContext(ict, Evidence(), load_preset(name), [1000.0])).sparsity == 0.0

    def test_gradcheck(self, ict):
        term = ExpressionPrior(SIGMA, 10.0, (0.0, 1.0), sparsity=1.5)
        e = torch.tensor([[0.0, 0.3, 0.004], [0.7, 1.1, -0.05]], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x: term(Scene(ict, state_with(x))), (e,))


class TestExpressionPriorGradient:
    """The analytic gradient matches finite differences, inside and outside the range."""

    def test_gradcheck(self, ict):
        term = ExpressionPrior(SIGMA, 10.0, (0.0, 1.0))

        def energy(expression):
            return term(Scene(ict, state_with(expression)))

        e = torch.tensor([[-0.2, 0.3, 1.4], [0.7, 1.1, -0.05]], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(energy, (e,))


class TestExpressionPriorFrames:
    """Expressions are per frame: each frame's value is its own row's prior (shape (F,))."""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_rows(self, ict, frames):
        e = torch.rand(frames, 4) * 1.4 - 0.2
        term = ExpressionPrior(SIGMA, BOUND_WEIGHT, (0.0, 1.0))
        values = term(Scene(ict, state_with(e)))
        assert values.shape == (frames,)
        for f in range(frames):
            torch.testing.assert_close(values[f : f + 1], term(Scene(ict, state_with(e[f : f + 1]))))


class TestExpressionPriorBuild:
    """The builder takes the range from the model: ICT's [0, 1]; none for models without one (PCA)."""

    def test_bounds_follow_the_model(self, ict):
        preset = load_preset("fast")
        spec = registered_terms()["expression_prior"]
        assert spec.build(TermContext(ict, Evidence(), preset, [1000.0])).bounds == (0.0, 1.0)
        pca = copy.copy(ict)
        pca.expression_bounds = None
        built = spec.build(TermContext(pca, Evidence(), preset, [1000.0]))
        assert built.bounds is None and built.sigma == preset["expression_prior"]["sigma"]
