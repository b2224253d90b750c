"""overlay.mp4 writing: frames stream into an mp4v video that reads back with the same count, rate, colours and
(odd sizes padded, never cropped) pixel positions; failures leave no file and no temporary behind."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fitter.export.video_overlay import VideoOutput, write_video

FPS = 25.0
H, W = 49, 65  # odd on purpose


def frames(n: int = 12):
    """Smooth frames (what MPEG-4 keeps well) with a red square that moves one pixel per frame."""
    y, x = np.mgrid[0:H, 0:W]
    for i in range(n):
        rgb = np.stack([x * 2, y * 3, np.full_like(x, 60 + 5 * i)], -1).astype(np.uint8)
        rgb[10:26, 10 + i:26 + i] = (230, 20, 20)
        yield rgb


def test_written_video_reads_back(tmp_path):
    path = tmp_path / "overlay.mp4"
    summary = write_video(path, frames(), FPS)
    assert summary == {"file": "overlay.mp4", "frames": 12, "fps": FPS, "codec": "mp4v", "size": [H, W]}
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == FPS and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 12
    read = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        read.append(bgr[:, :, ::-1])
    assert len(read) == 12
    for i, (got, want) in enumerate(zip(read, frames())):
        assert got.shape == (H + 1, W + 1, 3)  # padded to even, not cropped
        diff = np.abs(got[:H, :W].astype(int) - want.astype(int))
        assert diff.mean() < 4.0, i
        square = got[12:24, 12 + i:24 + i].reshape(-1, 3).mean(0)
        assert square[0] > 180 and square[1] < 70 and square[2] < 70  # red stays red (RGB order), in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.mp4"]


def test_failures_leave_nothing(tmp_path):
    def broken():
        yield from frames(3)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(tmp_path / "a.mp4", broken(), FPS)
    with pytest.raises(ValueError, match="frame 1 is \\(10, 10\\), the video is \\(49, 65\\)"):
        write_video(tmp_path / "b.mp4", [next(frames()), np.zeros((10, 10, 3), np.uint8)], FPS)
    with pytest.raises(ValueError, match="no frames to write"):
        write_video(tmp_path / "c.mp4", [], FPS)
    with pytest.raises(ValueError, match="must be uint8"):
        write_video(tmp_path / "d.mp4", [np.zeros((8, 8, 3), np.float32)], FPS)
    with pytest.raises(OSError, match="cannot encode 'avc1'") as err:  # H.264 is not in opencv-python's FFmpeg
        write_video(tmp_path / "e.mp4", frames(1), FPS, fourcc="avc1")
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_video_survives_a_failed_rewrite(tmp_path):
    path = tmp_path / "overlay.mp4"
    write_video(path, frames(2), FPS)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        with VideoOutput(path, FPS) as out:
            out.write(next(frames()))
            out.write(np.zeros((4, 4), np.uint8))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["overlay.mp4"]
