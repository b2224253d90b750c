"""The subject schedule (fitter.optimize.subject): segments, keyframes, phase presets, and whole fits of a
moving face (one camera) and of a head seen by a calibrated and an uncalibrated rig, from synthetic landmarks."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fitter.evidence import Evidence
from fitter.io.rig import Rig, RigCamera
from fitter.optimize.subject import (RigFreedom, find_segments, fit_sequence, phase_preset, select_keyframes,
                                     shot_cuts, splitting_cuts, time_coordinate)
from sequences import moving_face, rig_evidence, ring_rig, sequence_evidence, tiny_preset

FPS = 10.0


def test_segments_split_at_long_gaps_and_cuts():
    times = np.arange(10) / FPS
    detected = np.ones(10, bool)
    detected[3:8] = False  # 0.6 s without a detection
    centres = np.zeros((10, 2))
    centres[9] = [200.0, 0.0]  # the face jumps two face sizes: a cut
    sizes = np.full(10, 100.0)
    segments = find_segments(times, detected, centres, sizes, max_gap_s=0.5, cut_jump=0.5)
    assert segments.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 2]
    detected[3:8] = True
    assert find_segments(times, detected, np.zeros((10, 2)), sizes, 0.5, 0.5).tolist() == [0] * 10
    assert find_segments(None, detected, centres, sizes, 0.5, 0.5).tolist() == [0] * 10  # photos: no time


def test_segments_split_at_shot_cuts():
    times = np.arange(8) / FPS
    detected = np.ones(8, bool)
    detected[5] = False
    changes = np.full(8, 0.05)
    changes[0] = np.nan  # the first frame has nothing before it
    changes[3] = 0.9  # a cut before instant 3
    changes[5] = 0.9  # a cut onto an undetected instant: the next detection starts the segment
    args = (times, detected, np.zeros((8, 2)), np.full(8, 100.0), 0.5, 0.5)
    assert find_segments(*args, shot_cuts(changes, 0.4)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert find_segments(*args, shot_cuts(changes, 1.0)).tolist() == [0] * 8  # 1 turns it off
    assert shot_cuts(changes, 0.4) == [3, 5] and shot_cuts(None, 0.4) == []


def test_a_cut_into_a_faceless_stretch_and_out_again_splits_once():
    times = np.arange(10) / FPS
    detected = np.ones(10, bool)
    detected[3:7] = False  # the face is gone for 0.4 s, between two shot cuts (to black and back)
    segments = find_segments(times, detected, np.zeros((10, 2)), np.full(10, 100.0), 0.5, 0.5, [3, 7])
    assert segments.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert splitting_cuts(segments, detected, [3, 7]) == [7]  # one cut said, two shots: as the segments
    assert splitting_cuts(segments, detected, []) == []


def test_keyframes_are_good_and_spread():
    quality = np.array([1.0, 0.99, 0.98, 0.8, 0.9, 0.1])
    angles = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [30.0, 0.0], [-30.0, 5.0], [0.0, 40.0]])
    # the best first; then poses far from it beat near-copies of it, unless they are poor
    assert select_keyframes(quality, angles, 3, spread_deg=15.0) == [0, 3, 4]
    assert select_keyframes(quality, angles, 10, spread_deg=15.0) == list(range(6))


def test_keyframes_spread_over_a_clips_time():
    """One pose all along a clip whose later frames score higher: without time the keyframes all come from its end,
    with the time coordinate they spread over most of it (quality still weighs: the first frames score lowest)."""
    times = np.arange(40) / 25.0
    quality = np.linspace(0.5, 1.0, 40)
    pose = np.zeros((40, 2))
    assert select_keyframes(quality, pose, 4, spread_deg=15.0) == [36, 37, 38, 39]
    coordinate = time_coordinate(times, 4, 15.0)
    assert coordinate[0] == 0.0 and coordinate[-1] == pytest.approx(45.0)  # 4 evenly spaced picks: 15 deg apart
    picked = select_keyframes(quality, np.concatenate([pose, coordinate[:, None]], 1), 4, spread_deg=15.0)
    assert picked[-1] == 39 and picked[-1] - picked[0] >= 20 and min(np.diff(picked)) >= 6
    np.testing.assert_array_equal(time_coordinate(np.full(3, 2.0), 4, 15.0), 0.0)  # no time span: no spread


def test_phase_presets_average_and_free():
    preset = tiny_preset()
    stage = {"name": "s", "free": ["rotation", "translation", "identity", "log_focal", "expression"], "iterations": 5,
             "weights": {"landmarks": 1.0, "identity_prior": 10.0, "focal_prior": 1.0}}
    out = phase_preset(preset, [stage], 4, RigFreedom(focal=False, extrinsics=True, scale=False), identity=False,
                       rig_moves=True)
    s = out["stages"][0]
    assert s["weights"] == {"landmarks": 0.25, "identity_prior": 10.0, "focal_prior": 1.0}  # priors not averaged
    assert s["free"] == ["rotation", "translation", "expression", "view_rotation", "view_translation"]
    out = phase_preset(preset, [stage], 1, RigFreedom(focal=True), identity=True, rig_moves=False)
    assert out["stages"][0]["free"] == stage["free"]
    root = dict(preset, video=dict(preset["video"], averaged_power=0.5))  # 4 instants weigh like 2 photos
    out = phase_preset(root, [stage], 4, RigFreedom(focal=False), identity=True, rig_moves=False)
    assert out["stages"][0]["weights"] == {"landmarks": 0.5, "identity_prior": 10.0, "focal_prior": 1.0}


def test_photo_only_stages_are_left_out():
    """``subjects = false`` (default's 256-px photometric stage): a subject's phases skip the stage."""
    base = {"free": ["rotation"], "iterations": 5, "weights": {"landmarks": 1.0}}
    stages = [dict(base, name="both"), dict(base, name="photos", subjects=False), dict(base, name="also", subjects=True)]
    out = phase_preset(tiny_preset(), stages, 2, RigFreedom(focal=False), identity=True, rig_moves=False)
    assert [s["name"] for s in out["stages"]] == ["both", "also"]


def test_adam_rates_for_the_rig(ict_random_embedding):
    """A stage with a learning-rate table (Adam, as default's photometric stages) gets rates for the rig parameters
    the phase adds, and an uncalibrated rig fits through it (it used to stop: no rate for view_rotation)."""
    lr = {"rotation": 0.002, "translation": 0.03, "identity": 0.01, "expression": 0.005}
    stage = {"name": "adam", "free": ["rotation", "translation", "identity", "expression"], "iterations": 5,
             "optimizer": "adam", "lr": lr, "weights": {"landmarks": 1.0, "identity_prior": 10.0}}
    out = phase_preset(tiny_preset(), [stage], 2, RigFreedom(focal=False, extrinsics=True, scale=True), identity=True,
                       rig_moves=True)["stages"][0]
    assert out["lr"] == {**lr, "view_rotation": 0.002, "view_translation": 0.03, "rig_log_scale": 0.002}
    assert stage["lr"] == lr  # the preset's own table is not changed
    model = ict_random_embedding
    rig = ring_rig(3)
    identity = torch.randn(model.num_identity, generator=torch.Generator().manual_seed(3))
    evidence = rig_evidence(model, rig, heads(), identity)
    bare = Rig({n: RigCamera(n, c.image_size, c.K) for n, c in rig.cameras.items()}, False, 1.0, {"format": "none"})
    preset = dict(tiny_preset(), stages=tiny_preset()["stages"] + [stage])
    fit = fit_sequence(model, evidence, preset, bare, list(rig.cameras))
    assert fit.rig["extrinsics_fitted"] and "adam" in [log.name for log in fit.phases["keyframes"]]


def test_clip_one_identity_gaps_interpolated(ict_random_embedding):
    model = ict_random_embedding
    truth = moving_face(model, 8, FPS)
    evidence = sequence_evidence(model, truth, FPS, noise_px=0.3, missing=(3,))
    fit = fit_sequence(model, evidence, tiny_preset())
    s = fit.state
    assert s.identity.shape == (model.num_identity,) and s.num_instants == 8 and fit.ordered
    assert 3 <= len(fit.keyframes) <= 4 and 3 not in fit.keyframes
    assert fit.detected.tolist() == [k != 3 for k in range(8)] and np.isnan(fit.rmse_px[3])
    assert np.nanmax(fit.rmse_px) < 2.0
    err = np.degrees(np.linalg.norm(s.rotation.numpy() - truth.rotation.numpy(), axis=1))
    assert err.max() < 2.0, err
    # the frame without a detection sits half-way between its neighbours (linear in time)
    for name in ("rotation", "translation", "expression"):
        v = getattr(s, name).numpy()
        np.testing.assert_allclose(v[3], (v[2] + v[4]) / 2, atol=1e-5)
    jaw = model.expression_names.index("jawOpen")
    assert np.corrcoef(s.expression[:, jaw].numpy(), truth.expression[:, jaw].numpy())[0, 1] > 0.9
    assert set(fit.phases) == {"keyframes", "track", "window", "polish"}


def heads() -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.array([0.05, 0.2, 0.0]), np.array([0.5, -1.0, 0.0])),
            (np.array([-0.1, -0.3, 0.05]), np.array([-0.5, 0.0, 1.0]))]


def angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))


def test_rig_stages_run_for_a_rig_only(ict_random_embedding):
    """[[rig_stages]] refine a multi-view subject's keyframes (the views compared with each other); a clip of one
    camera has no views to compare and skips them."""
    model = ict_random_embedding
    stage = {"name": "views", "free": ["rotation", "translation", "identity", "expression"], "iterations": 3,
             "rounds": 1, "weights": {"landmarks": 1.0, "identity_prior": 10.0}}
    preset = dict(tiny_preset(), rig_stages=[stage])
    rig = ring_rig(3)
    identity = torch.randn(model.num_identity, generator=torch.Generator().manual_seed(3))
    fit = fit_sequence(model, rig_evidence(model, rig, heads(), identity), preset, rig, list(rig.cameras))
    assert [log.name for log in fit.phases["rig"]] == ["views"]
    clip = fit_sequence(model, sequence_evidence(model, moving_face(model, 6, FPS), FPS), preset)
    assert "rig" not in clip.phases


def test_each_photos_own_identity_is_read_for_photo_folders_only(ict_random_embedding):
    """The check for a photo of someone else (SubjectFitter.photo_identities) runs on unordered photos, not on a
    clip and not on a rig, even one of a single camera (whose images are instants of one view, not photos)."""
    model = ict_random_embedding
    identity = torch.randn(model.num_identity, generator=torch.Generator().manual_seed(3))
    rig = ring_rig(1)
    on_rig = fit_sequence(model, rig_evidence(model, rig, heads(), identity), tiny_preset(), rig, list(rig.cameras))
    assert on_rig.photos == [] and "photos" not in on_rig.phases
    photos = Evidence([dataclasses.replace(f, instant=None, view=k)
                       for k, f in enumerate(rig_evidence(model, ring_rig(3), heads(), identity).frames)])
    loose = fit_sequence(model, photos, tiny_preset())
    assert [row["image"] for row in loose.photos] == list(range(6)) and len(loose.phases["photos"]) > 0


def test_calibrated_rig_recovers_the_head_in_the_world(ict_random_embedding):
    model = ict_random_embedding
    rig = ring_rig(3)
    identity = torch.randn(model.num_identity, generator=torch.Generator().manual_seed(3))
    evidence = rig_evidence(model, rig, heads(), identity)
    fit = fit_sequence(model, evidence, tiny_preset(), rig, list(rig.cameras))
    s = fit.state
    assert s.num_instants == 2 and s.num_frames == 6 and fit.rig["calibrated"] and not fit.rig["extrinsics_fitted"]
    for i, (rot, trans) in enumerate(heads()):
        assert angle(Rotation.from_rotvec(s.rotation[i].numpy()).as_matrix(), Rotation.from_rotvec(rot).as_matrix()) < 1.0
        assert np.linalg.norm(s.translation[i].numpy() - trans) < 1.0
    np.testing.assert_allclose(s.view_translation.numpy(), np.stack([c.t for c in rig.cameras.values()]), atol=1e-4)
    assert np.nanmax(fit.rmse_px) < 1.5  # exact landmarks, 512 px images, short stages


def test_uncalibrated_rig_recovers_relative_cameras(ict_random_embedding):
    model = ict_random_embedding
    rig = ring_rig(3)
    identity = torch.randn(model.num_identity, generator=torch.Generator().manual_seed(3))
    evidence = rig_evidence(model, rig, heads(), identity)
    bare = Rig({n: RigCamera(n, c.image_size, c.K) for n, c in rig.cameras.items()}, False, 1.0, {"format": "none"})
    fit = fit_sequence(model, evidence, tiny_preset(), bare, list(rig.cameras))
    assert fit.rig["extrinsics_fitted"]
    R, t = (m.numpy().astype(np.float64) for m in fit.state.view_extrinsics())
    cams = list(rig.cameras.values())
    np.testing.assert_allclose(R[0], np.eye(3), atol=1e-6)  # the first camera is the world
    for v in (1, 2):
        assert angle(R[v], cams[v].R @ cams[0].R.T) < 1.0
        baseline = np.linalg.norm(-R[v].T @ t[v])
        assert baseline / np.linalg.norm(cams[v].centre - cams[0].centre) == pytest.approx(1.0, abs=0.05)
