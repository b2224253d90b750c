"""Unit tests of the landmark term (fitter.energy.landmarks): targets, embeddings, value, gradient, frames,
visibility, the sliding contour and the RMSE report."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.energy.landmarks import LandmarkTargets, LandmarkTerm, landmark_embedding, vertex_embedding
from fitter.model.contour import contour_candidates
from fitter.scene import Scene
from frames import one_frame, posed_frames, with_dtype
from numeric import pseudo_huber

SIGMA, DELTA = 0.01, 3.0
OFFSET_PX = 3.0  # every target sits this far right of its model landmark in the value tests


def projected(model, state, landmark_format: str = "mediapipe478") -> torch.Tensor:
    """Model landmarks projected into the image (F, N, 2), computed through the Scene, not the term."""
    scene = Scene(model, state)
    with torch.no_grad():
        if landmark_format == "mediapipe478":
            return scene.project(scene.embedded("mediapipe478"))[0]
        index = torch.as_tensor(model.topology.landmarks68)
        return scene.project(scene.vertices_at(index))[0]


def box_size(points: np.ndarray) -> float:
    span = points.max(0) - points.min(0)
    return float(np.sqrt(span[0] * span[1]))


class TestLandmarkTargets:
    """face_size is the square root of the area of the box of the confidently detected landmarks, per frame."""

    def test_box_of_weighted_points(self):
        points = torch.tensor([[[0.0, 0.0], [40.0, 10.0], [1000.0, 1000.0]],
                               [[5.0, 5.0], [15.0, 45.0], [7.0, 7.0]]])
        weights = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # frame 0's far point is not detected
        size = LandmarkTargets(points, weights, "ibug68").face_size()
        assert size.shape == (2,)
        torch.testing.assert_close(size, torch.tensor([20.0, 20.0]))


class TestLandmarkEmbedding:
    """Each landmark format maps to surface points of the model; vertex landmarks are exact vertices."""

    def test_vertex_embedding_puts_all_weight_on_the_vertex(self):
        triangles = np.array([[0, 1, 2], [2, 1, 3]])
        emb = vertex_embedding(triangles, np.array([3, 0, 2]))
        corners = triangles[emb.triangles]
        chosen = corners[np.arange(3), emb.barycentrics.argmax(1)]
        assert list(chosen) == [3, 0, 2]
        np.testing.assert_array_equal(emb.barycentrics.sum(1), 1.0)
        with pytest.raises(ValueError, match="vertex 7"):
            vertex_embedding(triangles, np.array([7]))

    def test_formats_of_ict(self, ict):
        assert len(landmark_embedding(ict, "mediapipe478")) == 478
        ibug = landmark_embedding(ict, "ibug68")
        corners = ict.topology.triangles[ibug.triangles]
        np.testing.assert_array_equal(corners[np.arange(68), ibug.barycentrics.argmax(1)], ict.topology.landmarks68)
        with pytest.raises(ValueError, match="unknown landmark format"):
            landmark_embedding(ict, "dlib5")


class TestLandmarkTermValue:
    """sum_i w_i rho(|residual_i| / (sigma * face size)) on targets shifted by a known offset."""

    @pytest.fixture()
    def case(self, ict):
        state = posed_frames(ict, 1)
        targets = projected(ict, state) + torch.tensor([OFFSET_PX, 0.0])
        return state, targets

    def term(self, model, targets, weights=None, **kw) -> LandmarkTerm:
        weights = torch.ones(targets.shape[:2]) if weights is None else weights
        options = dict(sigma=SIGMA, robust_delta=DELTA, visibility=False, reliability=False)
        options.update(kw)
        return LandmarkTerm(model, LandmarkTargets(targets, weights, "mediapipe478"), **options)

    def test_shifted_targets(self, ict, case):
        state, targets = case
        scale = SIGMA * box_size(targets[0].numpy())
        value = self.term(ict, targets)(Scene(ict, state))
        assert value.shape == (1,)
        assert float(value[0]) == pytest.approx(478 * pseudo_huber(OFFSET_PX / scale, DELTA), rel=1e-4)

    def test_zero_at_the_model_landmarks(self, ict, case):
        state, targets = case
        exact = targets - torch.tensor([OFFSET_PX, 0.0])
        assert float(self.term(ict, exact)(Scene(ict, state))[0]) < 1e-6

    def test_weights_and_reliability_scale_each_landmark(self, ict, case):
        state, targets = case
        scale = SIGMA * box_size(targets[0].numpy())
        weights = torch.ones(1, 478)
        weights[0, ::2] = 0.0  # every other landmark undetected
        half = self.term(ict, targets, weights)(Scene(ict, state))
        # face size is measured on detected landmarks only
        scale_half = SIGMA * box_size(targets[0, 1::2].numpy())
        assert float(half[0]) == pytest.approx(239 * pseudo_huber(OFFSET_PX / scale_half, DELTA), rel=1e-4)
        reliable = self.term(ict, targets, reliability=True)(Scene(ict, state))
        rel = float(landmark_embedding(ict, "mediapipe478").reliability.sum())
        assert float(reliable[0]) == pytest.approx(rel * pseudo_huber(OFFSET_PX / scale, DELTA), rel=1e-4)


class TestLandmarkTermGradient:
    """The analytic gradient matches finite differences (float64 model, visibility off: its weights are held
    constant by design and would differ from a finite difference where they ramp)."""

    def test_gradcheck_all_parameters(self, ict64):
        state = with_dtype(posed_frames(ict64, 2), torch.float64)
        noise = torch.randn(2, 478, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        targets = projected(ict64, state) + 4.0 * noise
        term = LandmarkTerm(ict64, LandmarkTargets(targets, torch.ones(2, 478, dtype=torch.float64),
                                                   "mediapipe478"), sigma=SIGMA, robust_delta=DELTA,
                            visibility=False)

        def energy(identity, expression, rotation, translation, log_focal):
            s = state.detached()
            s.identity, s.expression, s.rotation, s.translation, s.log_focal = (identity, expression, rotation,
                                                                                translation, log_focal)
            return term(Scene(ict64, s))

        inputs = tuple(getattr(state, n).detach().clone().requires_grad_(True)
                       for n in ("identity", "expression", "rotation", "translation", "log_focal"))
        assert torch.autograd.gradcheck(energy, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


class TestLandmarkTermFrames:
    """Per-frame values (F,): each frame's value is that frame's own landmark energy."""

    @pytest.mark.parametrize("frames", [1, 3])
    def test_each_frame_alone(self, ict, frames):
        state = posed_frames(ict, frames)
        noise = torch.randn(frames, 478, 2, generator=torch.Generator().manual_seed(2))
        targets = projected(ict, state) + 3.0 * noise
        weights = torch.ones(frames, 478)

        def term(t, w):
            return LandmarkTerm(ict, LandmarkTargets(t, w, "mediapipe478"), sigma=SIGMA)

        values = term(targets, weights)(Scene(ict, state))
        assert values.shape == (frames,)
        for f in range(frames):
            alone = term(targets[f : f + 1], weights[f : f + 1])(Scene(ict, one_frame(state, f)))
            torch.testing.assert_close(values[f : f + 1], alone, rtol=1e-5, atol=1e-5)
        if frames > 1:
            assert len(set(values.tolist())) == frames  # distinct frames, distinct values


class TestVisibilityWeights:
    """Landmarks on surfaces facing the camera weigh 1, those facing away 0, and the term uses them."""

    def weights_at(self, ict, yaw: float) -> tuple[torch.Tensor, LandmarkTerm, Scene]:
        state = posed_frames(ict, 1)
        state.rotation = torch.tensor([[0.0, yaw, 0.0]])
        targets = projected(ict, state) + OFFSET_PX
        term = LandmarkTerm(ict, LandmarkTargets(targets, torch.ones(1, 478), "mediapipe478"), sigma=SIGMA)
        scene = Scene(ict, state)
        points, normals = term.surface_points(scene)
        return term.visibility_weights(scene, points, normals), term, scene

    def test_frontal_and_turned_away(self, ict):
        frontal, _, _ = self.weights_at(ict, 0.0)
        assert float(frontal[0, 1]) == 1.0  # MediaPipe 1: the nose tip faces the camera
        assert float((frontal == 1).float().mean()) > 0.9
        away, term, scene = self.weights_at(ict, math.pi)
        assert float((away == 0).float().mean()) > 0.95
        assert float(away.min()) >= 0.0 and float(frontal.max()) <= 1.0
        # the term counts only what is seen: facing away, almost nothing is left
        blind = LandmarkTerm(ict, term.targets, sigma=SIGMA, visibility=False, reliability=False)
        assert float(term(scene)[0]) < 0.05 * float(blind(scene)[0])


class TestSlidingContour:
    """update() picks, per frame, the contour candidate projecting nearest its landmark; the term then uses
    that vertex, at full visibility."""

    def test_choice_per_frame(self, ict):
        state = posed_frames(ict, 2)
        candidates = contour_candidates(ict, "ibug68")
        k = 3  # a jawline landmark
        cand = torch.as_tensor(candidates[k])
        scene = Scene(ict, state)
        cand_pix = scene.project(scene.vertices_at(cand))[0]  # (2, C, 2)
        targets = projected(ict, state, "ibug68").clone()
        targets[0, k], targets[1, k] = cand_pix[0, 1], cand_pix[1, 2]  # frame 0 sees candidate 1, frame 1 sees 2
        term = LandmarkTerm(ict, LandmarkTargets(targets, torch.ones(2, 68), "ibug68"), sigma=SIGMA,
                            contour_candidates=candidates)
        points, _ = term.surface_points(scene)
        torch.testing.assert_close(points[:, k], scene.vertices_at(cand[:1])[:, 0])  # before: own vertex
        term.update(scene)
        assert term.chosen[k].tolist() == [int(cand[1]), int(cand[2])]
        points, _ = term.surface_points(scene)
        torch.testing.assert_close(points[0, k], scene.vertices()[0, cand[1]])
        torch.testing.assert_close(points[1, k], scene.vertices()[1, cand[2]])
        res, weights = term.residuals(scene)
        assert float(res[:, k].abs().max()) < 1e-3  # each frame's choice lands on its target
        rel = landmark_embedding(ict, "ibug68").reliability
        expected = 1.0 if rel is None else torch.as_tensor(rel)[k]
        torch.testing.assert_close(weights[:, k], torch.full((2,), float(expected)))


class TestRmsePx:
    """rmse_px: per-frame root mean square pixel residual over detected landmarks only."""

    def test_known_offsets(self, ict):
        state = posed_frames(ict, 2)
        targets = projected(ict, state) + torch.tensor([OFFSET_PX, 0.0])
        weights = torch.ones(2, 478)
        targets[1, :10] += 50.0  # undetected outliers of frame 1 do not count
        weights[1, :10] = 0.0
        term = LandmarkTerm(ict, LandmarkTargets(targets, weights, "mediapipe478"), sigma=SIGMA)
        torch.testing.assert_close(term.rmse_px(Scene(ict, state)), torch.full((2,), OFFSET_PX), rtol=1e-4,
                                   atol=1e-4)
