"""run_stage (fitter.optimize.schedule) on tiny quadratic terms: both optimisers reach the minimum, rounds call
update(), absent terms are reported, non-finite energies fail, expressions are clamped to the model's range,
and Adam's learning-rate tables."""
from __future__ import annotations

import copy

import pytest
import torch

from fitter.energy.base import Term
from fitter.optimize.presets import load_preset
from fitter.optimize.schedule import NonFiniteFit, adam_rate_factor, check_finite, run_stage
from fitter.state import FitState
from small_models import plane_model

TARGET = torch.tensor([1.0, -2.0, 50.0])  # where the quadratic term wants the translation
EXPRESSION_TARGET = 2.0  # beyond ICT-like bounds (0, 1)


class Quadratic(Term):
    """|translation - TARGET|^2 + |expression - EXPRESSION_TARGET|^2 per frame; records its update() calls."""

    name = "quadratic"

    def __init__(self) -> None:
        self.updates: list[torch.Tensor] = []

    def update(self, scene) -> None:
        self.updates.append(scene.state.translation.detach().clone())

    def __call__(self, scene) -> torch.Tensor:
        s = scene.state
        return ((s.translation - TARGET) ** 2).sum(-1) + ((s.expression - EXPRESSION_TARGET) ** 2).sum(-1)


class Absolute(Term):
    """|translation - TARGET|_1 per frame: a V whose gradient never shrinks, so Adam at a constant rate keeps
    stepping across the minimum."""

    name = "absolute"

    def __call__(self, scene) -> torch.Tensor:
        return (scene.state.translation - TARGET).abs().sum(-1)


class NotANumber(Term):
    name = "broken"

    def __call__(self, scene) -> torch.Tensor:
        return scene.state.translation.sum(-1) * float("nan")


class Cliff(Term):
    """Falls linearly along translation x up to a cliff at x = CLIFF, beyond which it is NaN: L-BFGS's line
    search extrapolates over the edge (as it does on PRDL's flat, non-smooth stretches)."""

    name = "cliff"
    CLIFF = 5.0

    def __call__(self, scene) -> torch.Tensor:
        x = scene.state.translation[:, 0]
        return torch.where(x < self.CLIFF, -x, torch.full_like(x, float("nan")))


@pytest.fixture()
def model():
    return plane_model()  # expression_bounds None


@pytest.fixture()
def bounded(model):
    out = copy.copy(model)
    out.expression_bounds = (0.0, 1.0)
    return out


def fresh_state(model, frames: int = 1) -> FitState:
    return FitState.single(model.num_identity, model.num_expression, (64, 64), 300.0, frames=frames)


def stage(**kw) -> dict:
    out = {"name": "q", "free": ["translation"], "iterations": 30, "rounds": 1, "weights": {"quadratic": 1.0}}
    out.update(kw)
    return out


SETTINGS = load_preset("fast")["optimizer"]


class TestOptimisers:
    """L-BFGS and Adam lower the weighted energy to the quadratic's minimum; only freed tensors move."""

    def test_lbfgs(self, model):
        state = fresh_state(model, frames=2)
        log = run_stage(model, state, stage(), {"quadratic": Quadratic()}, SETTINGS)
        torch.testing.assert_close(state.translation, TARGET.expand(2, 3), atol=1e-4, rtol=0)
        assert torch.equal(state.expression, torch.zeros(2, 1))  # not freed
        assert log.evaluations > 0 and log.energies["quadratic"] == pytest.approx(2 * EXPRESSION_TARGET**2)

    def test_adam(self, model):
        state = fresh_state(model)
        run_stage(model, state, stage(optimizer="adam", lr=0.5, iterations=400), {"quadratic": Quadratic()}, SETTINGS)
        torch.testing.assert_close(state.translation, TARGET[None], atol=2e-2, rtol=0)

    def test_weights_scale_the_logged_energies(self, model):
        state = fresh_state(model)
        log = run_stage(model, state, stage(free=[], weights={"quadratic": 2.5}), {"quadratic": Quadratic()},
                        SETTINGS)
        expected = 2.5 * float(((torch.tensor([0.0, 0.0, 60.0]) - TARGET) ** 2).sum() + EXPRESSION_TARGET**2)
        assert log.energies["quadratic"] == pytest.approx(expected) and log.total == pytest.approx(expected)

    def test_nothing_requires_grad_afterwards(self, model):
        state = fresh_state(model)
        run_stage(model, state, stage(free=["translation", "expression"]), {"quadratic": Quadratic()}, SETTINGS)
        assert not any(t.requires_grad for t in state.tensors().values())

    def test_unknown_optimizer(self, model):
        with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
            run_stage(model, fresh_state(model), stage(optimizer="sgd"), {"quadratic": Quadratic()}, SETTINGS)


class TestRounds:
    """update() runs before every round, on the state the previous round left."""

    def test_update_before_each_round(self, model):
        term = Quadratic()
        state = fresh_state(model)
        run_stage(model, state, stage(rounds=3, iterations=2), {"quadratic": term}, SETTINGS)
        assert len(term.updates) == 3
        torch.testing.assert_close(term.updates[0], torch.tensor([[0.0, 0.0, 60.0]]))  # before any step
        assert not torch.equal(term.updates[1], term.updates[0])  # after round 1's steps


class TestSkippedTerms:
    """Weighed terms that were not built are listed in skipped_terms; zero weights are neither run nor listed."""

    def test_skipped(self, model):
        state = fresh_state(model)
        log = run_stage(model, state, stage(weights={"quadratic": 1.0, "photometric": 1.0, "prdl": 0.0}),
                        {"quadratic": Quadratic()}, SETTINGS)
        assert log.skipped_terms == ["photometric"] and set(log.energies) == {"quadratic"}

    def test_all_skipped_leaves_the_state(self, model):
        state = fresh_state(model)
        log = run_stage(model, state, stage(weights={"photometric": 1.0}), {}, SETTINGS)
        assert log.skipped_terms == ["photometric"] and log.evaluations == 0
        assert torch.equal(state.translation, torch.tensor([[0.0, 0.0, 60.0]]))


class TestNonFinite:
    """A non-finite energy or parameter fails the stage, naming the stage and the term or parameter."""

    def test_nan_term(self, model):
        with pytest.raises(NonFiniteFit, match=r"stage 'q': energy term 'broken' is nan"):
            run_stage(model, fresh_state(model), stage(weights={"broken": 1.0}), {"broken": NotANumber()}, SETTINGS)

    def test_nan_term_beside_a_finite_one(self, model):
        with pytest.raises(NonFiniteFit, match=r"energy term 'broken'"):
            run_stage(model, fresh_state(model), stage(weights={"quadratic": 1.0, "broken": 1.0}),
                      {"quadratic": Quadratic(), "broken": NotANumber()}, SETTINGS)

    def test_line_search_over_the_edge_keeps_the_best_point(self, model):
        state = fresh_state(model)
        log = run_stage(model, state, stage(free=["translation"], weights={"cliff": 1.0}, iterations=20),
                        {"cliff": Cliff()}, SETTINGS)
        x = float(state.translation[0, 0])
        assert log.line_search_failures == 1
        assert 0.0 < x < Cliff.CLIFF and torch.isfinite(state.translation).all()  # moved, stayed finite
        assert log.energies["cliff"] == pytest.approx(-x)

    def test_nan_parameter(self, model):
        state = fresh_state(model)
        state.identity = torch.tensor([float("inf")])
        with pytest.raises(NonFiniteFit, match=r"stage 'late': parameter 'identity'"):
            check_finite("late", {"quadratic": 1.0}, state)
        check_finite("late", {"quadratic": 1.0}, fresh_state(model))  # finite: no error


class TestExpressionBounds:
    """After a stage, expressions are clamped to the model's expression_bounds; models without bounds are not."""

    def test_clamped(self, bounded):
        state = fresh_state(bounded)
        run_stage(bounded, state, stage(free=["expression"]), {"quadratic": Quadratic()}, SETTINGS)
        assert float(state.expression.max()) == 1.0

    def test_unbounded(self, model):
        state = fresh_state(model)
        run_stage(model, state, stage(free=["expression"]), {"quadratic": Quadratic()}, SETTINGS)
        assert float(state.expression.max()) == pytest.approx(EXPRESSION_TARGET, abs=1e-4)


class TestAdamLearningRates:
    """Adam takes one rate for all, a table of rates by parameter, or the [optimizer] default."""

    def test_table(self, model):
        state = fresh_state(model)
        lr = {"translation": 0.5, "expression": 1e-4}
        run_stage(model, state, stage(free=["translation", "expression"], optimizer="adam", lr=lr, iterations=50),
                  {"quadratic": Quadratic()}, SETTINGS)
        assert float(state.expression.abs().max()) <= 50 * 1e-4 * 1.01  # Adam steps are at most ~lr each
        assert float((state.translation - TARGET).abs().max()) < 10.0  # moved most of the 10 units

    def test_default_rate(self, model):
        state = fresh_state(model)
        settings = dict(SETTINGS, adam_lr=1e-3)
        run_stage(model, state, stage(free=["translation"], optimizer="adam", iterations=20),
                  {"quadratic": Quadratic()}, settings)
        assert float((state.translation - torch.tensor([0.0, 0.0, 60.0])).abs().max()) <= 20 * 1e-3 * 1.01

    def test_decayed_rate_settles(self, model):
        errors = {}
        for end in (1.0, 0.1):
            state = fresh_state(model)
            run_stage(model, state, stage(optimizer="adam", lr=0.5, iterations=100, lr_end=end,
                                          weights={"absolute": 1.0}), {"absolute": Absolute()}, SETTINGS)
            errors[end] = float((state.translation - TARGET).abs().max())
        assert errors[1.0] > 0.03 and errors[0.1] < 0.02  # constant: left mid-oscillation; decayed: settled

    def test_rate_factor(self):
        assert adam_rate_factor(0, 80, 0.1) == pytest.approx(1.0)
        assert adam_rate_factor(79, 80, 0.1) == pytest.approx(0.1)
        assert adam_rate_factor(40, 81, 0.1) == pytest.approx(0.55)
        factors = [adam_rate_factor(k, 80, 0.1) for k in range(80)]
        assert all(a >= b for a, b in zip(factors, factors[1:]))
        assert adam_rate_factor(50, 80, 1.0) == 1.0 and adam_rate_factor(0, 1, 0.1) == 1.0

    def test_table_missing_a_rate(self, model):
        with pytest.raises(ValueError, match=r"no rate for \['expression'\]"):
            run_stage(model, fresh_state(model), stage(free=["translation", "expression"], optimizer="adam",
                                                       lr={"translation": 0.1}), {"quadratic": Quadratic()}, SETTINGS)


class FocalTarget(Term):
    """(log focal - log 450)^2: wants the focal length 1.5 times the fresh state's 300 px."""

    name = "focal_target"

    def __call__(self, scene) -> torch.Tensor:
        return (scene.state.log_focal[scene.state.frame_view] - torch.log(torch.tensor(450.0))) ** 2


class TestDolly:
    """``dolly = true``: Adam's steps of the focal length keep the face's centroid on its pixel and at its size
    (fitter.optimize.dolly); multi-view subjects are left alone."""

    @pytest.fixture()
    def dome(self):
        from small_models import dome_model
        return dome_model()

    @staticmethod
    def placed(model, multiview: bool = False) -> FitState:
        state = fresh_state(model)
        state.translation = torch.tensor([[3.0, 1.0, 40.0]])  # off the principal point: a scale would move it
        if multiview:
            state.view_rotation, state.view_translation = torch.zeros(1, 3), torch.zeros(1, 3)
        return state

    @staticmethod
    def centroid_and_spread(model, state):
        from fitter.scene import Scene
        with torch.no_grad():
            pixels, _ = Scene(model, state).project(model.mean[None].expand(state.num_frames, -1, 3))
        return pixels.mean(1), pixels.std(1).mean(-1)

    @staticmethod
    def towards_450(model, state, **kw) -> None:
        st = stage(free=["log_focal"], optimizer="adam", iterations=20, lr={"log_focal": 0.02},
                   weights={"focal_target": 1.0}, **kw)
        run_stage(model, state, st, {"focal_target": FocalTarget()}, SETTINGS)

    def test_focal_moves_but_the_face_keeps_its_place_and_size(self, dome):
        state = self.placed(dome)
        where, spread = self.centroid_and_spread(dome, state)
        self.towards_450(dome, state, dolly=True)
        assert float(state.log_focal.exp()[0]) > 400.0  # the focal moved
        after, after_spread = self.centroid_and_spread(dome, state)
        torch.testing.assert_close(after, where, atol=0.05, rtol=0)  # the centroid kept its pixel
        assert float(after_spread / spread) == pytest.approx(1.0, abs=0.02)  # and its size: only perspective

    def test_without_the_dolly_the_face_scales(self, dome):
        state = self.placed(dome)
        _, spread = self.centroid_and_spread(dome, state)
        self.towards_450(dome, state)
        _, after_spread = self.centroid_and_spread(dome, state)
        assert abs(float(after_spread / spread) - 1.0) > 0.2

    def test_multiview_is_left_alone(self, dome):
        from fitter.optimize.dolly import dolly_translation
        state = self.placed(dome, multiview=True)
        before = state.translation.clone()
        dolly_translation(dome, state, state.log_focal - 0.5)
        assert torch.equal(state.translation, before)

    def test_multiview_keeps_its_focal_lengths(self, dome):
        state = self.placed(dome, multiview=True)
        before = state.log_focal.clone()
        st = stage(free=["log_focal", "translation"], optimizer="adam", iterations=5,
                   lr={"log_focal": 0.02, "translation": 0.01}, weights={"focal_target": 1.0, "quadratic": 1.0},
                   dolly=True)
        run_stage(dome, state, st, {"focal_target": FocalTarget(), "quadratic": Quadratic()}, SETTINGS)
        assert torch.equal(state.log_focal, before)
