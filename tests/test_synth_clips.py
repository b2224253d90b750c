"""Synthetic clips: smooth tracks (bounded second differences that shrink like dt^2, the same motion at any
frame rate), blinks and speech-like jaw motion present, frames rendered; multi-view scenes whose cameras agree
on where a 3D point is (projection and triangulation)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fitter.camera import model_to_camera
from fitter.render import sh_shading
from fitter.synth import clips
from fitter.synth.clips import render_clip, render_multiview, sample_clip, sample_multiview, view_case
from fitter.synth.lighting import key_light, sample_lighting, seen_from
from fitter.synth.scenes import project_points

DURATION = 8.0


@pytest.fixture(scope="module")
def clip25(ict):
    return sample_clip(ict, seed=4, fps=25.0, duration=DURATION)


@pytest.fixture(scope="module")
def clip200(ict):
    return sample_clip(ict, seed=4, fps=200.0, duration=DURATION)


def _second_difference(x: np.ndarray) -> np.ndarray:
    return np.abs(x[2:] - 2 * x[1:-1] + x[:-2])


def test_pose_within_limits_and_smooth(clip25):
    ypr, dt = clip25.yaw_pitch_roll, 1 / clip25.fps
    assert len(clip25) == 200 and clip25.expression.shape == (200, 53) and clip25.rotation.shape == (200, 3)
    assert (np.abs(ypr) <= clips.POSE_LIMITS_DEG).all() and np.abs(ypr).max() <= 30.0
    assert np.ptp(ypr[:, 0]) > 10.0  # the head does move
    # a sum of sinusoids with amplitudes adding to <= limit and frequencies <= POSE_HZ[1]: |x''| <= limit w^2
    bound = clips.POSE_LIMITS_DEG * (2 * np.pi * clips.POSE_HZ[1] * dt) ** 2
    assert (_second_difference(ypr) <= bound * 1.01).all()
    drift = clip25.translation - clip25.base.translation
    assert (_second_difference(drift) <= clips.DRIFT_CM * (2 * np.pi * clips.POSE_HZ[1] * dt) ** 2 * 1.01).all()


def test_tracks_are_one_smooth_motion_at_any_frame_rate(clip25, clip200):
    np.testing.assert_allclose(clip200.expression[::8], clip25.expression, atol=1e-6)
    np.testing.assert_allclose(clip200.rotation[::8], clip25.rotation, atol=1e-9)
    # sampled 8x finer, the second differences of a smooth track shrink ~64x (a jump or kink would not)
    for coarse, fine in ((clip25.expression, clip200.expression), (clip25.yaw_pitch_roll, clip200.yaw_pitch_roll)):
        assert (_second_difference(fine).max(0) * 16 <= _second_difference(coarse).max(0) + 1e-6).all()


def test_blinks(clip25, ict):
    names = ict.expression_names
    blink = clip25.expression[:, [names.index(n) for n in clips.BLINK_NAMES]]
    assert len(clip25.blinks) >= 2
    durations = clip25.blinks[:, 1] - clip25.blinks[:, 0]
    assert ((durations >= 0.1) & (durations <= 0.25)).all()
    inside = np.zeros(len(clip25), bool)
    for start, end in clip25.blinks:
        window = (clip25.times > start) & (clip25.times < end)
        inside |= window
        if end < DURATION:
            assert blink[window].min(1).max() >= 0.85  # the lids close (at 25 fps, even for a 100 ms blink)
    assert (blink[~inside] == 0).all()


def test_speech_like_jaw(clip25, clip200, ict):
    jaw25 = clip25.expression[:, ict.expression_names.index(clips.JAW_NAME)]
    assert 3.0 <= clip25.syllable_hz <= 6.0
    speaking = np.zeros(len(clip25), bool)
    for start, end in clip25.speech:
        speaking |= (clip25.times > start) & (clip25.times < end)
    assert (jaw25[~speaking] == 0).all() and (~speaking).sum() >= 0.3 * clip25.fps  # pauses
    assert jaw25.max() > 0.15
    jaw = clip200.expression[:, ict.expression_names.index(clips.JAW_NAME)]
    spectrum = np.abs(np.fft.rfft(jaw - jaw.mean()))
    freqs = np.fft.rfftfreq(len(jaw), 1 / clip200.fps)
    spectrum[freqs < 1.0] = 0
    assert 3.0 <= freqs[spectrum.argmax()] <= 6.0  # the syllable rate dominates


def test_render_clip_frames(ict):
    clip = sample_clip(ict, seed=2, fps=25.0, duration=0.12, size=64)
    frames = list(render_clip(ict, clip, appearance="wild", supersample=1))  # appearance passed on if supported
    assert len(frames) == 3 and all(f.image.shape == (64, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    for k, frame in enumerate(frames):
        truth = ict.vertices(torch.as_tensor(clip.identity), torch.as_tensor(clip.expression[k])[None])
        cam = model_to_camera(truth, torch.as_tensor(clip.rotation[k], dtype=torch.float32)[None],
                              torch.as_tensor(clip.translation[k], dtype=torch.float32)[None])[0].numpy()
        np.testing.assert_allclose(frame.camera_vertices, cam, atol=1e-4)
        assert (frame.triangle_id >= 0).mean() > 0.05
    assert not np.array_equal(frames[0].image, frames[2].image)


def test_multiview_cameras_agree(ict):
    scene = sample_multiview(ict, seed=1, n_cameras=4, size=96)
    assert sorted(scene.rig.cameras) == ["cam0", "cam1", "cam2", "cam3"]
    head = scene.head
    model = ict.vertices(torch.as_tensor(head.identity), torch.as_tensor(head.expression)[None])
    world = model_to_camera(model, torch.as_tensor(head.rotation, dtype=torch.float32)[None],
                            torch.as_tensor(head.translation, dtype=torch.float32)[None])[0].numpy().astype(np.float64)
    nose = ict.topology.landmarks68[30]
    renders = render_multiview(ict, scene, supersample=1)
    pixels = {}
    for name, cam in scene.rig.cameras.items():
        rendered, case = renders[name], scene.views[name]
        from_rig = cam.project(world)
        from_render = project_points(rendered.camera_vertices, case)
        assert np.abs(from_rig - from_render).max() < 1e-2  # float32 rendering pipeline vs float64 rig
        pixels[name] = from_rig[nose]
        centre = cam.project(np.zeros((1, 3)))[0]
        assert np.abs(centre - 48.0).max() < 1e-6  # every camera looks at the world origin
        row, col = np.floor(pixels[name][::-1]).astype(int)
        assert rendered.triangle_id[row, col] >= 0  # the nose tip is on the rendered face in every view
    yaws = [np.degrees(np.arctan2(-c.centre[0], -c.centre[2])) for c in scene.rig.cameras.values()]
    assert 60.0 * 0.9 <= max(yaws) - min(yaws) <= 120.0 * 1.1
    # triangulating the nose tip from the two outermost views gives back its world position
    a, b = scene.rig.cameras["cam0"], scene.rig.cameras["cam3"]
    P = [c.K @ np.hstack([c.R, c.t[:, None]]) for c in (a, b)]
    X = cv2.triangulatePoints(P[0], P[1], pixels["cam0"].reshape(2, 1), pixels["cam3"].reshape(2, 1))
    assert np.abs(X[:3, 0] / X[3, 0] - world[nose]).max() < 1e-3


def test_view_case_needs_a_centred_principal_point(ict):
    scene = sample_multiview(ict, seed=1, n_cameras=3, size=64)
    cam = scene.rig.cameras["cam1"]
    cam.K = cam.K.copy()
    cam.K[0, 2] += 3
    with pytest.raises(ValueError, match="centred principal point"):
        view_case(scene.head, cam)


def test_views_share_one_world_fixed_light(ict):
    """Each camera sees the head's light from its own side: a world direction is lit alike in every view."""
    scene = sample_multiview(ict, seed=1, n_cameras=4, size=64)
    normals = torch.nn.functional.normalize(torch.randn(1, 200, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    world = sh_shading(normals, torch.as_tensor(scene.head.light))
    for name, cam in scene.rig.cameras.items():
        R = torch.as_tensor(cam.R, dtype=torch.float32)
        seen = sh_shading(normals @ R.T, torch.as_tensor(scene.views[name].light))
        assert torch.allclose(seen, world, atol=1e-4), name
    lighting = sample_lighting(3, 0)[0]  # a wild render's key light turns with the camera as well
    R = scene.rig.cameras["cam0"].R
    assert np.allclose(key_light(seen_from(lighting, R))[0].numpy(), R @ key_light(lighting)[0].numpy(), atol=1e-5)
