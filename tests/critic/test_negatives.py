"""The critic's negatives: each kind changes what it says, keeps the faces as typical as the truth, and carries
a label in millimetres."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.camera import project
from fitter.critic.negatives import KINDS, NegativeSampler, parameters
from fitter.critic.pool import camera_vertices, intrinsics_of
from fitter.metrics import procrustes_error
from critic_photos import clean_photos

DRAWS = 12


@pytest.fixture(scope="module")
def photos(ict):
    return clean_photos(ict, 4)


@pytest.fixture(scope="module")
def sampler(ict):
    return NegativeSampler(ict)


def landmarks68(model, g, photo):
    cam = camera_vertices(model, [g])[:, torch.as_tensor(model.topology.landmarks68)]
    return project(cam, intrinsics_of([g], [photo.image_size]))[0].numpy()


def draws(sampler, photos, kind, seed=0):
    rng = np.random.default_rng(seed)
    return [(photos[k % len(photos)], *sampler.sample(photos[k % len(photos)], kind, rng, photos))
            for k in range(DRAWS)]


def test_landmark_preserving_moves_the_shape_not_the_landmarks(ict, sampler, photos):
    for photo, g, error in draws(sampler, photos, "landmark_preserving"):
        moved = np.linalg.norm(landmarks68(ict, g, photo) - landmarks68(ict, photo.truth, photo), axis=1).mean()
        side = float(np.ptp(photo.landmarks, 0).max())
        assert moved < 0.02 * side  # within a detector's noise (MediaPipe: about 2.5 % of the face)
        assert error > 0.3  # yet the face is measurably different (mm)


def test_random_changes_move_the_landmarks(ict, sampler, photos):
    moved = [np.linalg.norm(landmarks68(ict, g, p) - landmarks68(ict, p.truth, p), axis=1).mean()
             for p, g, _ in draws(sampler, photos, "random")]
    assert np.median(moved) > 1.0


@pytest.mark.parametrize("kind", ["landmark_preserving", "random", "depth", "swap"])
def test_faces_stay_typical(sampler, photos, kind):
    """A negative is not told apart by how unusual its face is: on average its identity is as far from the
    mean (prior energy) as the truth's."""
    change = [float((g.identity**2).sum() - (p.truth.identity**2).sum()) for p, g, _ in draws(sampler, photos, kind)]
    assert abs(np.mean(change)) < 0.5 * len(photos[0].truth.identity)


def test_labels_are_procrustes_millimetres(ict, sampler, photos):
    region = ict.topology.region("face")
    for photo, g, error in draws(sampler, photos, "depth")[:4]:
        est = camera_vertices(ict, [g])[0].numpy()[region]
        truth = camera_vertices(ict, [photo.truth])[0].numpy()[region]
        assert error == pytest.approx(procrustes_error(est, truth) * 10.0, rel=1e-3, abs=1e-3)


def test_pose_keeps_the_shape(sampler, photos):
    for photo, g, error in draws(sampler, photos, "pose"):
        assert np.allclose(g.identity, photo.truth.identity) and np.allclose(g.expression, photo.truth.expression)
        assert sampler.shape_error_mm(g, photo.truth) < 0.01 and error >= 0.3  # surface distance, mm


def test_swap_uses_another_photos_identity(sampler, photos):
    others = {tuple(p.truth.identity[:3]) for p in photos}
    for photo, g, _ in draws(sampler, photos, "swap"):
        assert tuple(g.identity[:3]) in others and not np.allclose(g.identity, photo.truth.identity)


def test_every_kind_and_expression_range(ict, sampler, photos):
    for kind in KINDS:
        for _, g, error in draws(sampler, photos, kind)[:3]:
            assert np.isfinite(error) and error >= 0
            assert g.expression.min() >= 0 and g.expression.max() <= 1
            assert parameters(g).shape == (ict.num_identity + ict.num_expression + 6,)
    with pytest.raises(ValueError, match="unknown negative kind"):
        sampler.sample(photos[0], "nonsense", np.random.default_rng(0))


def test_depth_directions_are_orthonormal(sampler):
    D = sampler.depth_directions
    assert np.allclose(D.T @ D, np.eye(D.shape[1]), atol=1e-8)
