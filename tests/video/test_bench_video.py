"""`facefit bench video` (fitter.bench.video): its measures on known signals, and tiny real runs of the clip,
multi-view and starting-pose benchmarks (rendered frames, the real detector, short stages)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fitter.bench.video import (aggregate_clips, blink_recall, jitter, lag_frames, off_axis_deg, run_multiview_bench,
                                run_pose_start, run_video_bench)
from sequences import tiny_preset


def test_jitter_is_rms_acceleration_in_mm():
    t = np.arange(6) / 10.0
    a = 3.0  # cm/s^2
    tracks = np.zeros((6, 2, 3))
    tracks[:, :, 0] = 0.5 * a * t[:, None] ** 2
    assert jitter(tracks, t) == pytest.approx(a * 10.0)
    valid = np.ones(6, bool)
    valid[2] = False
    tracks[2] += 100.0  # a frame left out does not count
    assert jitter(tracks, t, valid) == pytest.approx(a * 10.0)


def test_lag_and_blinks():
    t = np.arange(60) / 25.0
    truth = np.sin(2 * np.pi * 2 * t) ** 2
    assert lag_frames(truth, truth) == 0
    assert lag_frames(np.roll(truth, 2), truth) == 2  # the fit two frames late
    blink = np.zeros(60)
    blink[10:13] = [0.6, 1.0, 0.6]
    windows = np.array([[0.38, 0.54], [1.5, 1.6]])  # the second is not visible in the truth: not counted
    assert blink_recall(blink * 0.8, blink, windows, t) == (1, 1)
    assert blink_recall(blink * 0.2, blink, windows, t) == (0, 1)


def test_off_axis_angle_of_a_view():
    for yaw, pitch in ((0.0, 0.0), (35.0, 0.0), (-50.0, 0.0), (0.0, 20.0)):
        rotation = Rotation.from_euler("YX", [yaw, pitch], degrees=True).as_rotvec()
        case = SimpleNamespace(rotation=rotation, translation=np.array([0.0, 0.0, 60.0]))
        assert off_axis_deg(case) == pytest.approx(abs(yaw) + abs(pitch), abs=1e-6)
    # off the optical axis the ray to the camera turns too: a frontal face 60 cm ahead, 60 cm to the side
    side = SimpleNamespace(rotation=np.zeros(3), translation=np.array([60.0, 0.0, 60.0]))
    assert off_axis_deg(side) == pytest.approx(45.0)


def clip_row(identity: float, frames: list[float]) -> dict:
    return {"fitted": True, "identity_error_mm": identity, "frame_error_mm_median": identity,
            "jitter_mm_s2": {"fit": 1.0, "truth": 1.0}, "jitter_ratio": 5.0, "jaw_lag_frames": 0,
            "blinks_found": 0, "blinks_counted": 0, "nme_ratio": 1.0, "seconds_per_frame": 0.1,
            "seconds_per_frame_after_keyframes": 0.1, "keyframe_seconds": 1.0,
            "independent": {"identity_error_mm": frames, "identity_error_mm_median": float(np.median(frames)),
                            "jitter_mm_s2": 5.0, "blinks_found": 0}}


def test_clip_identity_is_paired_with_its_own_frames():
    # each clip's identity is below its own frames' median, yet the pooled median of both clips' frames falls
    # below the median of the two clip errors: the paired count says 2 of 2, the pooled target says no
    hard, easy = clip_row(3.10, [3.0, 3.0, 3.2, 3.2, 3.2]), clip_row(2.45, [2.4, 2.4, 2.5, 2.5, 2.5])
    out = aggregate_clips([hard, easy])
    assert out["single_image_identity_error_mm_median"] == pytest.approx(2.75)  # clips: 2.775
    assert out["targets"]["identity_below_single_image_median"] is False
    assert out["clips_identity_below_own_frames"] == 2
    assert out["single_image_identity_error_mm_median_of_clips"] == pytest.approx(2.85)
    assert out["targets"]["identity_below_own_frames_every_clip"] is True
    worse = aggregate_clips([hard, clip_row(2.60, [2.4, 2.4, 2.5, 2.5, 2.5])])
    assert worse["clips_identity_below_own_frames"] == 1
    assert worse["targets"]["identity_below_own_frames_every_clip"] is False


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tiny_runs(tmp_path):
    preset = tiny_preset(iterations=5)
    result = run_video_bench(tmp_path, preset, count=1, seconds=0.4, fps=10.0, size=256)
    clip = result["clips"][0]
    assert clip["fitted"] and clip["frames"] == 4 and len(clip["frame_error_mm"]) == 4
    assert clip["identity_error_mm"] < 10 and clip["independent"]["identity_error_mm_median"] < 10
    assert {"fit", "truth"} <= set(clip["jitter_mm_s2"]) and clip["jitter_ratio"] > 0
    saved = json.loads((tmp_path / "video.json").read_text())
    assert set(saved["aggregate"]["targets"]) == {"identity_below_single_image_median", "jitter_at_most_1.5x_truth",
                                                  "jitter_3x_below_independent", "no_jaw_lag",
                                                  "identity_below_own_frames_every_clip"}
    multi = run_multiview_bench(tmp_path, preset, count=1, cameras=2, instants=1, size=256)
    scene = multi["scenes"][0]
    assert scene["fitted"] and len(scene["single_view_identity_error_mm"]) == 2
    assert len(scene["uncalibrated"]["relative_rotation_error_deg"]) == 1 and scene["uncalibrated"]["scale_error_pct"] >= 0
    turns = scene["single_view_off_axis_deg"]
    assert len(turns) == 2 and scene["frontal_single_view_mm"] == scene["single_view_identity_error_mm"][
        int(np.argmin(turns))]
    unc = scene["uncalibrated"]
    assert 0.7 < unc["head_size_ratio"] < 1.3
    assert unc["scale_error_vs_head_pct"] == pytest.approx(abs(unc["baseline_ratio"][0] / unc["head_size_ratio"] - 1)
                                                           * 100)
    pose = run_pose_start(tmp_path, preset, count=2, size=256)
    assert pose["aggregate"]["start_landmarks3d_deg"]["median"] < 20
    assert (tmp_path / "multiview.json").exists() and (tmp_path / "pose_start.json").exists()
