"""The cross-view colour term (fitter.energy.crossview) on a synthetic rig of known geometry: least at the true
camera placement, its gradient turns a misplaced camera back, per-image values, and nothing to compare for
a photo."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fitter.energy.crossview import CrossViewTerm, image_pairs
from fitter.energy.photo_target import PhotoTargets
from fitter.evidence import Evidence, FrameEvidence
from fitter.observe.types import FaceObservation
from fitter.scene import Scene
from fitter.state import FitState
from fitter.synth.clips import render_multiview, sample_multiview

SIZE = 128


@pytest.fixture(scope="module")
def rig(ict):
    """One instant of a 3-camera rig (clean renders) and the true state, one image per view."""
    scene = sample_multiview(ict, seed=0, n_cameras=3, size=SIZE)
    renders = render_multiview(ict, scene, appearance="clean", supersample=1)
    names = list(scene.rig.cameras)
    cams = [scene.rig.cameras[n] for n in names]
    state = FitState.single(ict.num_identity, ict.num_expression, (SIZE, SIZE), float(cams[0].K[0, 0]))
    state.identity = torch.as_tensor(scene.head.identity, dtype=torch.float32)
    state.expression = torch.as_tensor(scene.head.expression, dtype=torch.float32)[None]
    state.rotation = torch.as_tensor(scene.head.rotation, dtype=torch.float32)[None]
    state.translation = torch.as_tensor(scene.head.translation, dtype=torch.float32)[None]
    state.log_focal = torch.log(torch.tensor([float(c.K[0, 0]) for c in cams]))
    state.principal = torch.tensor([[c.K[0, 2], c.K[1, 2]] for c in cams], dtype=torch.float32)
    state.image_size = torch.tensor([[SIZE, SIZE]] * 3)
    state.frame_view = torch.arange(3)
    state.frame_instant = torch.zeros(3, dtype=torch.int64)
    state.view_rotation = torch.tensor(np.stack([Rotation.from_matrix(c.R).as_rotvec() for c in cams]),
                                       dtype=torch.float32)
    state.view_translation = torch.tensor(np.stack([c.t for c in cams]), dtype=torch.float32)
    state.view_fixed = torch.tensor([True, False, False])
    with torch.no_grad():
        points = Scene(ict, state).project(Scene(ict, state).embedded("mediapipe478"))[0].numpy()
    frames = []
    for v, name in enumerate(names):
        face = FaceObservation(points[v].astype(np.float32), "mediapipe478",
                               np.r_[points[v].min(0), points[v].max(0)].astype(np.float32))
        frames.append(FrameEvidence(face, (SIZE, SIZE), renders[name].image.astype(np.float32) / 255.0, view=v,
                                    instant=0))
    evidence = Evidence(frames)
    targets = PhotoTargets.from_evidence(evidence, SIZE, 0.25, ("skin", "nose"))
    pairs = image_pairs(np.zeros(3), np.arange(3), np.ones(3, bool))
    return state, CrossViewTerm(ict, targets, pairs, resolution=64)


def yawed(state: FitState, view: int, degrees: float) -> FitState:
    """``state`` with one camera turned about its own vertical axis."""
    out = state.detached()
    turn = Rotation.from_euler("y", degrees, degrees=True)
    rotations = out.view_rotation.clone()
    rotations[view] = torch.as_tensor((turn * Rotation.from_rotvec(rotations[view].numpy())).as_rotvec())
    out.view_rotation = rotations
    return out


class TestCrossView:
    def test_pairs_are_images_of_one_instant_from_different_views(self):
        pairs = image_pairs(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 1, 1]), np.array([1, 1, 1, 1, 0], bool))
        assert pairs.tolist() == [[0, 1], [2, 3]]

    def test_least_at_the_true_cameras(self, ict, rig):
        state, term = rig
        truth = term(Scene(ict, state))
        assert truth.shape == (3,) and torch.isfinite(truth).all()
        for degrees in (-4.0, 4.0):
            moved = term(Scene(ict, yawed(state, 2, degrees)))
            assert float(moved.sum()) > 1.5 * float(truth.sum()), (degrees, moved, truth)

    def test_gradient_turns_a_misplaced_camera_back(self, ict, rig):
        state, term = rig
        for degrees in (-3.0, 3.0):
            moved = yawed(state, 2, degrees)
            rotation = moved.view_rotation.clone().requires_grad_(True)
            moved.view_rotation = rotation
            term(Scene(ict, moved)).sum().backward()
            with torch.no_grad():
                stepped = moved.detached()
                stepped.view_rotation = rotation - 1e-4 * rotation.grad / rotation.grad.norm()
                before = Rotation.from_rotvec(rotation[2].numpy()) * Rotation.from_rotvec(state.view_rotation[2].numpy()).inv()
                after = Rotation.from_rotvec(stepped.view_rotation[2].numpy()) * Rotation.from_rotvec(
                    state.view_rotation[2].numpy()).inv()
            assert after.magnitude() < before.magnitude(), degrees

    def test_a_photo_has_nothing_to_compare(self, ict, rig):
        _, term = rig
        photo = FitState.single(ict.num_identity, ict.num_expression, (SIZE, SIZE), 300.0)
        photo.translation = torch.tensor([[0.0, 0.0, 60.0]])
        alone = CrossViewTerm(ict, term.targets, image_pairs(np.zeros(1), np.zeros(1), np.ones(1, bool)))
        assert alone(Scene(ict, photo)).tolist() == [0.0]
