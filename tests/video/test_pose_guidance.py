"""Pose guidance (fitter.energy.pose_guidance): the head rotation read off 3D landmarks (MediaPipe's depth
convention), corrected for the ray through an off-centre face; the term pulling the rotation towards it."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fitter.camera import MODEL_TO_OPENCV
from fitter.energy.base import TermContext
from fitter.energy.pose_guidance import PoseGuidanceTerm, build, embedded_mean, guide_from_landmarks3d, similarity_rotation
from fitter.evidence import Evidence, FrameEvidence
from fitter.observe.types import FaceObservation
from fitter.optimize.presets import load_preset
from fitter.scene import Scene
from fitter.state import FitState

FLIP = MODEL_TO_OPENCV.numpy().astype(np.float64)
K = np.array([[800.0, 0, 320.0], [0, 800.0, 240.0], [0, 0, 1.0]])


def landmarks3d(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> FaceObservation:
    """MediaPipe-like observation: pixels by perspective projection, z the depth relative to the face centre in
    pixel units (scaled like x), growing away from the camera."""
    cam = points @ (Rotation.from_rotvec(rotation).as_matrix() @ FLIP).T + translation
    uv = cam[:, :2] / cam[:, 2:] * K[0, 0] + K[:2, 2]
    centre = cam[:, 2].mean()
    z = (cam[:, 2] - centre) * K[0, 0] / centre
    return FaceObservation(uv, "mediapipe478", np.r_[uv.min(0), uv.max(0)], landmarks_z=z)


def angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))


def test_guide_recovers_the_rotation_of_an_off_centre_face(ict):
    points = embedded_mean(ict, "mediapipe478")
    truth = np.array([0.15, -0.5, 0.1])
    face = landmarks3d(points, truth, np.array([22.0, -10.0, 60.0]))  # ~20 deg off the camera's axis
    guide = guide_from_landmarks3d(face, points, K)
    expected = Rotation.from_rotvec(truth).as_matrix() @ FLIP
    assert angle(guide, expected) < 1.0
    # without the ray's rotation the off-centre face looks turned by about the ray's angle
    seen = similarity_rotation(points @ FLIP.T, np.c_[face.landmarks, face.landmarks_z], np.ones(len(points)))
    assert angle(seen @ FLIP, expected) > 10.0


def test_no_guide_without_depths(ict):
    points = embedded_mean(ict, "mediapipe478")
    face = landmarks3d(points, np.zeros(3), np.array([0.0, 0.0, 60.0]))
    face.landmarks_z = None
    assert guide_from_landmarks3d(face, points, K) is None


def test_term_value_and_gradient():
    guide = torch.as_tensor(Rotation.from_rotvec([0.1, 0.3, 0.0]).as_matrix() @ FLIP, dtype=torch.float64)
    term = PoseGuidanceTerm(guide[None].repeat(2, 1, 1), torch.tensor([1.0, 0.0], dtype=torch.float64),
                            math.radians(5.0))
    state = FitState.single(3, 2, (64, 64), 100.0, frames=2)
    state.rotation = torch.tensor([[0.1, 0.3, 0.0], [0.1, 0.3, 0.0]], dtype=torch.float64)
    state.translation = state.translation.double()
    torch.testing.assert_close(term(Scene(None, state)), torch.zeros(2, dtype=torch.float64))
    small = 0.01  # a small rotation off the guide costs about (angle / sigma)^2
    state.rotation = torch.tensor([[0.1 + small, 0.3, 0.0], [0.5, 0.3, 0.0]], dtype=torch.float64)
    value = term(Scene(None, state))
    assert abs(float(value[0]) / (small / math.radians(5.0)) ** 2 - 1) < 0.05 and float(value[1]) == 0.0
    # the angle between the two rotations (a step along an axis-angle coordinate is nearly that angle)
    assert term.diagnostics(Scene(None, state))["guide_angle_deg"][0] == pytest.approx(math.degrees(small), abs=0.01)

    def energy(rot):
        state.rotation = rot
        return term(Scene(None, state))

    assert torch.autograd.gradcheck(energy, [state.rotation.clone().requires_grad_()])


def test_build_from_evidence(ict):
    points = embedded_mean(ict, "mediapipe478")
    face = landmarks3d(points, np.array([0.0, 0.4, 0.0]), np.array([0.0, 0.0, 60.0]))
    missing = landmarks3d(points, np.zeros(3), np.array([0.0, 0.0, 60.0]))
    missing.landmarks_z = None
    evidence = Evidence([FrameEvidence(face, (480, 640)), FrameEvidence(missing, (480, 640))])
    term = build(TermContext(ict, evidence, load_preset("fast"), [800.0]))
    assert term.weights.tolist() == [1.0, 0.0]
    expected = Rotation.from_rotvec([0.0, 0.4, 0.0]).as_matrix() @ FLIP
    assert angle(term.guides[0].double().numpy(), expected) < 1.0
