"""Unit tests of the detector's error modes (fitter.energy.landmark_modes) and their use by the landmark term:
the face frame, modes turned into image axes, the whitening, and the term's value and gradient with them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fitter.energy.landmark_modes import EYE_CORNERS, face_rotation, image_modes, suppression, whiten
from fitter.energy.landmarks import LandmarkTargets, LandmarkTerm, landmark_embedding
from fitter.scene import Scene
from frames import posed_frames, with_dtype
from numeric import pseudo_huber

SIGMA, DELTA = 0.01, 3.0


def random_basis(points: int, modes: int, seed: int = 0) -> torch.Tensor:
    """Orthonormal columns (2 * points, modes) in float64."""
    a = torch.randn(2 * points, modes, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.linalg.qr(a)[0]


def eye_points(angle: float, frames: int = 1) -> torch.Tensor:
    """478 points, all zero but the two outer eye corners, on an axis at ``angle`` radians."""
    pts = torch.zeros(frames, 478, 2, dtype=torch.float64)
    pts[:, EYE_CORNERS[1]] = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64) * 50
    return pts


class TestFaceRotation:
    """The face frame's x axis runs from the right-hand outer eye corner (33) to the other (263)."""

    def test_eye_axis_becomes_x(self):
        for angle in (0.0, 0.4, -2.5):
            pts = eye_points(angle)
            rot = face_rotation(pts)[0]
            axis = pts[0, EYE_CORNERS[1]] - pts[0, EYE_CORNERS[0]]
            torch.testing.assert_close(rot @ axis, torch.tensor([axis.norm(), 0.0], dtype=torch.float64))
            torch.testing.assert_close(rot @ rot.T, torch.eye(2, dtype=torch.float64))


class TestImageModes:
    """Modes turned into a frame's image axes stay orthonormal and rotate each point's vector."""

    def test_each_point_rotated(self):
        basis = random_basis(478, 3)
        rot = face_rotation(eye_points(0.7))
        img = image_modes(basis, rot)
        assert img.shape == (1, 956, 3)
        torch.testing.assert_close(img[0].T @ img[0], torch.eye(3, dtype=torch.float64))
        # a residual in image axes projects on the turned modes as its face-frame version on the modes
        r = torch.randn(478, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        face = r @ rot[0].T
        torch.testing.assert_close(img[0].T @ r.reshape(-1), basis.T @ face.reshape(-1))


class TestSuppression:
    """c = 1 - sqrt(s^2 / (s^2 + lam)): none for a mode at the floor's level, most for the largest."""

    def test_values(self):
        c = suppression(torch.tensor([0.0, 3.0, 99.0], dtype=torch.float64), 1.0)
        torch.testing.assert_close(c, torch.tensor([0.0, 0.5, 0.9], dtype=torch.float64))


class TestWhiten:
    """A residual along a mode keeps 1 - c of itself; one orthogonal to every mode is unchanged."""

    def test_along_and_across(self):
        basis = random_basis(478, 4)
        modes = image_modes(basis, face_rotation(eye_points(0.3)))
        strength = torch.tensor([0.8, 0.5, 0.2, 0.0], dtype=torch.float64)
        along = modes[0, :, 1].reshape(1, 478, 2) * 7.0
        torch.testing.assert_close(whiten(along, modes, strength), along * 0.5)
        across = torch.randn(1, 956, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        across = across - (modes[0] @ (modes[0].T @ across[0]))[None]
        torch.testing.assert_close(whiten(across.reshape(1, 478, 2), modes, strength), across.reshape(1, 478, 2))

    def test_frames_apart(self):
        basis = random_basis(478, 2)
        pts = torch.cat([eye_points(0.0), eye_points(1.2)])
        modes = image_modes(basis, face_rotation(pts))
        strength = torch.tensor([0.6, 0.3], dtype=torch.float64)
        r = torch.randn(2, 478, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        both = whiten(r, modes, strength)
        for f in range(2):
            torch.testing.assert_close(both[f:f + 1], whiten(r[f:f + 1], modes[f:f + 1], strength))


def projected(model, state) -> torch.Tensor:
    scene = Scene(model, state)
    with torch.no_grad():
        return scene.project(scene.embedded("mediapipe478"))[0]


class TestLandmarkTermWithModes:
    """The term whitens its residual against the shipped asset's modes (ICT + MediaPipe) when asked to."""

    def term(self, model, targets, modes: int, fmt: str = "mediapipe478", **kw) -> LandmarkTerm:
        weights = torch.ones(targets.shape[:2], dtype=targets.dtype)
        return LandmarkTerm(model, LandmarkTargets(targets, weights, fmt), sigma=SIGMA, robust_delta=DELTA,
                            visibility=False, reliability=False, error_modes=modes, **kw)

    def test_asset_is_attached(self, ict):
        measured = landmark_embedding(ict, "mediapipe478").error_modes
        assert measured is not None and measured.basis.shape == (956, 64)
        np.testing.assert_allclose(measured.basis.T @ measured.basis, np.eye(64), atol=1e-4)
        assert np.all(np.diff(measured.variances) <= 0)

    def test_a_mode_costs_less_than_its_own_size_elsewhere(self, ict):
        state = posed_frames(ict, 1)
        exact = projected(ict, state)
        first = self.term(ict, exact, 5).modes[0, :, 0].reshape(1, 478, 2)
        shift = first / first.norm() * 40.0  # a 40-px detector error along the first mode
        term = self.term(ict, exact + shift, 5)
        assert 0.3 < float(term.strength[0]) < 1.0
        # written out: shift - sum_k c_k (m_k . shift) m_k, the modes in the shifted targets' own frame
        m, c, r = term.modes[0].double().numpy(), term.strength.double().numpy(), shift[0].double().numpy().ravel()
        left = (r - m @ (c * (m.T @ r))).reshape(478, 2)
        scale = SIGMA * float(term.targets.face_size()[0])
        expect = sum(pseudo_huber(float(d) / scale, DELTA) for d in np.linalg.norm(left, axis=1))
        whitened = term(Scene(ict, state))
        assert float(whitened[0]) == pytest.approx(expect, rel=1e-3)
        assert float(whitened[0]) < 0.8 * float(self.term(ict, exact + shift, 0)(Scene(ict, state))[0])

    def test_undetected_points_take_no_part(self, ict):
        state = posed_frames(ict, 1)
        targets = projected(ict, state) + 3.0
        weights = torch.ones(1, 478)
        weights[0, 100] = 0.0
        far = targets.clone()
        far[0, 100] += torch.tensor([500.0, -300.0])  # an undetected point's position is no evidence
        value = [LandmarkTerm(ict, LandmarkTargets(t, weights, "mediapipe478"), sigma=SIGMA, robust_delta=DELTA,
                              visibility=False, reliability=False, error_modes=5)(Scene(ict, state))
                 for t in (targets, far)]
        torch.testing.assert_close(value[0], value[1])

    def test_other_formats_unwhitened(self, ict):
        state = posed_frames(ict, 1)
        scene = Scene(ict, state)
        with torch.no_grad():
            targets = scene.project(scene.vertices_at(torch.as_tensor(ict.topology.landmarks68)))[0] + 2.0
        assert self.term(ict, targets, 5, "ibug68").modes is None
        torch.testing.assert_close(self.term(ict, targets, 5, "ibug68")(scene),
                                   self.term(ict, targets, 0, "ibug68")(scene))

    def test_more_modes_than_measured(self, ict):
        state = posed_frames(ict, 1)
        with pytest.raises(ValueError, match="error_modes = 64"):
            self.term(ict, projected(ict, state), 64)

    def test_gradcheck_and_finite_at_zero(self, ict64):
        state = with_dtype(posed_frames(ict64, 2), torch.float64)
        exact = projected(ict64, state)
        names = ("identity", "expression", "rotation", "translation", "log_focal")

        def energy_of(targets):
            term = self.term(ict64, targets, 5)

            def energy(*values):
                s = state.detached()
                for n, v in zip(names, values):
                    setattr(s, n, v)
                return term(Scene(ict64, s))
            return energy

        inputs = tuple(getattr(state, n).detach().clone().requires_grad_(True) for n in names)
        energy_of(exact)(*inputs).sum().backward()  # every residual 0: the root's gradient must stay finite
        assert all(torch.isfinite(i.grad).all() for i in inputs)
        noisy = exact + 4.0 * torch.randn(exact.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        assert torch.autograd.gradcheck(energy_of(noisy), inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)
