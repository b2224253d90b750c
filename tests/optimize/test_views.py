"""Per-image trust (fitter.optimize.views) and the schedule's use of it: a view turned further from the face than
its instant's most frontal view counts less (one view per instant changes nothing), and a turned face's evidence
counts less against the priors (an instant by its most frontal view)."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from fitter.energy.identity_prior import IdentityPrior
from fitter.energy.landmarks import LandmarkTargets, LandmarkTerm
from fitter.optimize.fit import with_turn_weights
from fitter.optimize.schedule import evaluate, run_stage
from fitter.optimize.subject import RigFreedom, phase_preset
from fitter.optimize.views import off_axis_deg, turn_weights, view_weights
from fitter.scene import Scene
from fitter.state import FitState
from frames import posed_frames
from sequences import tiny_preset

SIGMA = 0.01
SHIFT_CM = 0.2


def rig_state(model, yaw_deg: float) -> FitState:
    """Two instants of a frontal head, three images: instant 0 seen by a front camera (view 0) and by a camera
    turned ``yaw_deg`` about the head (view 1), instant 1 by the front camera only."""
    state = FitState.single(model.num_identity, model.num_expression, (512, 512), 1100.0, frames=2)
    state.translation = torch.tensor([[0.0, 0.0, 60.0], [0.0, 0.0, 60.0]])
    state.frame_instant = torch.tensor([0, 0, 1])
    state.frame_view = torch.tensor([0, 1, 0])
    state.log_focal = state.log_focal[:1].expand(2).clone()
    state.principal = state.principal[:1].expand(2, 2).clone()
    state.image_size = state.image_size[:1].expand(2, 2).clone()
    turn = Rotation.from_euler("y", yaw_deg, degrees=True)
    head = state.translation[0]
    matrix = torch.tensor(turn.as_matrix(), dtype=torch.float32)
    state.view_rotation = torch.stack([torch.zeros(3), torch.tensor(turn.as_rotvec(), dtype=torch.float32)])
    state.view_translation = torch.stack([torch.zeros(3), head - matrix @ head])  # the head on both optical axes
    state.view_fixed = torch.tensor([True, True])
    return state


def turned_heads(model) -> FitState:
    state = posed_frames(model, 3)
    state.rotation = torch.tensor([[0.0, math.radians(a), 0.0] for a in (0.0, 30.0, -60.0)])
    state.translation = torch.tensor([[0.0, 0.0, 60.0]]).expand(3, 3).clone()
    return state


class TestOffAxis:
    def test_the_head_turn_in_one_camera(self, ict):
        torch.testing.assert_close(off_axis_deg(turned_heads(ict)), torch.tensor([0.0, 30.0, 60.0]), atol=1e-3, rtol=0)

    def test_a_rig_views_turn(self, ict):
        torch.testing.assert_close(off_axis_deg(rig_state(ict, 40.0)), torch.tensor([0.0, 40.0, 0.0]), atol=1e-3,
                                   rtol=0)


class TestViewWeights:
    def test_relative_to_the_instants_most_frontal_view(self, ict):
        noise = 1.0 + (40 / 30) ** 4
        torch.testing.assert_close(view_weights(rig_state(ict, 40.0), 30.0, 4.0),
                                   torch.tensor([1.0, 1.0 / noise ** 2, 1.0]), rtol=1e-4, atol=0)

    def test_one_view_per_instant_is_unchanged(self, ict):
        torch.testing.assert_close(view_weights(turned_heads(ict), 30.0, 4.0), torch.ones(3))


class TestTurnWeights:
    def test_a_turned_face_counts_less(self, ict):
        noise = 1.0 + (torch.tensor([0.0, 30.0, 60.0]) / 32.0) ** 2.5
        torch.testing.assert_close(turn_weights(turned_heads(ict), 32.0, 2.5), noise ** -2, rtol=1e-4, atol=0)

    def test_a_rig_instant_by_its_most_frontal_view(self, ict):
        state = rig_state(ict, 40.0)
        state.rotation = torch.tensor([[0.0, math.radians(10.0), 0.0], [0.0, 0.0, 0.0]])  # instant 0 turned 10 deg
        front = (1.0 + (10.0 / 32.0) ** 2.5) ** -2  # its front view; the other view is turned 30 or 50 deg
        torch.testing.assert_close(turn_weights(state, 32.0, 2.5), torch.tensor([front, front, 1.0]), rtol=1e-4,
                                   atol=0)

    def test_the_driver_adds_the_presets_setting(self):
        stage = tiny_preset()["stages"][0]
        preset = dict(tiny_preset(), turn_noise={"degrees": 32.0, "power": 2.5, "terms": ["landmarks"]})
        assert with_turn_weights(stage, preset)["turn_weights"] == {"degrees": 32.0, "power": 2.5,
                                                                   "terms": ["landmarks"]}
        off = dict(preset, turn_noise={"degrees": 0.0, "power": 2.5, "terms": ["landmarks"]})
        assert "turn_weights" not in with_turn_weights(stage, off)

    def test_a_turned_face_leans_on_the_identity_prior(self, ict):
        """Landmarks of a face turned 50 deg that the mean shape cannot explain (the detector's error): with the
        turn weights the identity moves less far from the prior's mean to fit them."""
        state = turned_heads(ict)
        state.rotation = torch.tensor([[0.0, math.radians(50.0), 0.0]]).expand(3, 3).clone()
        scene = Scene(ict, state)
        with torch.no_grad():
            targets = scene.project(scene.embedded("mediapipe478"))[0]
            targets = targets + 2.0 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(0))
        term = LandmarkTerm(ict, LandmarkTargets(targets, torch.ones(3, 478), "mediapipe478"), sigma=SIGMA,
                            visibility=False, reliability=False)
        prior = IdentityPrior()
        stage = {"name": "s", "free": ["identity"], "iterations": 30, "rounds": 1,
                 "weights": {"landmarks": 1.0, "identity_prior": 1.0}}

        def identity_norm(extra: dict) -> float:
            fitted = state.detached()
            run_stage(ict, fitted, dict(stage, **extra), {"landmarks": term, "identity_prior": prior},
                      tiny_preset()["optimizer"])
            return float(fitted.identity.norm())

        plain = identity_norm({})
        turned = identity_norm({"turn_weights": {"degrees": 32.0, "power": 2.5, "terms": ["landmarks"]}})
        assert turned < 0.6 * plain


class TestScheduleUsesViewWeights:
    """Multi-view phases put the view weighting into their stages; the stage energy weighs each image by it."""

    def landmark_term(self, model, state: FitState) -> LandmarkTerm:
        scene = Scene(model, state)
        with torch.no_grad():
            targets = scene.project(scene.embedded("mediapipe478"))[0] + torch.tensor([3.0, 0.0])
        return LandmarkTerm(model, LandmarkTargets(targets, torch.ones(3, 478), "mediapipe478"), sigma=SIGMA,
                            visibility=False, reliability=False)

    def test_phase_stages_carry_it_only_for_multi_view(self):
        preset = tiny_preset()
        stage = preset["stages"][0]
        multi = phase_preset(preset, [stage], 2, RigFreedom(), identity=True, rig_moves=False, views=True)
        assert multi["stages"][0]["view_weights"] == {"degrees": 30.0, "power": 4.0,
                                                      "terms": ["landmarks", "prdl", "photometric", "critic"]}
        single = phase_preset(preset, [stage], 2, RigFreedom(), identity=True, rig_moves=False)
        assert "view_weights" not in single["stages"][0]
        off = dict(preset, video=dict(preset["video"], view_weighted_terms=[]))
        assert "view_weights" not in phase_preset(off, [stage], 2, RigFreedom(), True, False, views=True)["stages"][0]

    def test_stage_energy_weighs_each_image(self, ict):
        state = rig_state(ict, 40.0)
        term = self.landmark_term(ict, state)
        per_image = term(Scene(ict, state)).detach()
        stage = {"name": "s", "free": ["translation"], "iterations": 1, "weights": {"landmarks": 1.0},
                 "view_weights": {"degrees": 30.0, "power": 4.0, "terms": ["landmarks"]}}
        log = run_stage(ict, state.detached(), dict(stage, iterations=1, free=[]), {"landmarks": term},
                        tiny_preset()["optimizer"])
        w = view_weights(state, 30.0, 4.0)
        assert log.energies["landmarks"] == pytest.approx(float((per_image * w).sum()), rel=1e-5)
        assert log.energies["landmarks"] < 0.8 * float(per_image.sum())
        plain = evaluate(ict, state, {"landmarks": term}, {"landmarks": 1.0})
        assert plain["landmarks"] == pytest.approx(float(per_image.sum()), rel=1e-5)

    def test_the_front_view_decides_where_the_views_disagree(self, ict):
        """The turned view's targets say the head is 2 mm lower (within the robust loss's quadratic part; both views
        see vertical motion in full), the front view's that it has not moved: equally weighted the head goes half
        way, with the view weights it stays where the front view sees it."""
        truth = rig_state(ict, 50.0)
        shifted = truth.detached()
        shifted.translation = shifted.translation + torch.tensor([0.0, SHIFT_CM, 0.0])
        scene_t, scene_s = Scene(ict, truth), Scene(ict, shifted)
        with torch.no_grad():
            points = scene_t.project(scene_t.embedded("mediapipe478"))[0]
            points[1] = scene_s.project(scene_s.embedded("mediapipe478"))[0][1]
        term = LandmarkTerm(ict, LandmarkTargets(points, torch.ones(3, 478), "mediapipe478"), sigma=SIGMA,
                            visibility=False, reliability=False)
        stage = {"name": "s", "free": ["translation"], "iterations": 30, "rounds": 1, "weights": {"landmarks": 1.0}}

        def fitted_shift(extra: dict) -> float:
            state = truth.detached()
            run_stage(ict, state, dict(stage, **extra), {"landmarks": term}, tiny_preset()["optimizer"])
            return float(state.translation[0, 1] - truth.translation[0, 1])

        equal = fitted_shift({})
        weighted = fitted_shift({"view_weights": {"degrees": 30.0, "power": 4.0, "terms": ["landmarks"]}})
        assert 0.3 * SHIFT_CM < equal < 0.7 * SHIFT_CM
        assert abs(weighted) < 0.1 * equal
