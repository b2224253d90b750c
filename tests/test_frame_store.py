"""FrameStore: a clip's frames kept on disk, exact, and gone when closed; the disk-space refusal."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from fitter.io import FrameStore, ImageError, LoadedImage, VideoInfo, require_space
from fitter.io import frame_store
from fitter.io.frame_store import PREFIX, frames_read, remove_abandoned


def frame(h: int, w: int, seed: int) -> LoadedImage:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return LoadedImage.from_array(rgb, path=f"<frame {seed}>")


class TestFrameStore:
    def test_frames_come_back_exact_and_in_order(self, tmp_path):
        frames = [frame(24, 32, 0), frame(40, 20, 1), frame(24, 32, 2)]  # sizes may differ (cameras of a rig)
        with FrameStore(tmp_path) as store:
            for f in frames:
                store.append(f)
            assert len(store) == 3 and store.nbytes == sum(f.rgb.nbytes for f in frames)
            for k, f in enumerate(frames):
                back = store[k]
                assert back.rgb.shape == f.rgb.shape and np.array_equal(back.rgb, f.rgb)
                assert back.content_hash == f.content_hash and back.path == f.path
            assert not isinstance(frames[0].rgb, np.memmap) and isinstance(store[0].rgb, np.memmap)

    def test_a_frame_read_back_cannot_be_changed_in_place(self, tmp_path):
        with FrameStore(tmp_path) as store:
            store.append(frame(8, 8, 3))
            original = store[0].rgb.copy()
            with pytest.raises(ValueError):
                store[0].rgb[:] = 0
            assert np.array_equal(store[0].rgb, original)

    def test_closing_removes_the_file(self, tmp_path):
        store = FrameStore(tmp_path)
        store.append(frame(8, 8, 4))
        assert store[0].rgb.sum() > 0
        folder = store.folder
        assert folder.parent == tmp_path and folder.name.startswith(PREFIX) and any(folder.iterdir())
        store.close()
        assert not folder.exists() and list(tmp_path.iterdir()) == []
        with pytest.raises(ValueError):
            store[0]

    def test_a_killed_runs_folder_is_removed_a_live_ones_kept(self, tmp_path):
        done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        dead_pid = int(done.stdout)  # that process has ended
        host = frame_store._host()
        dead = tmp_path / f"{PREFIX}{host}-{dead_pid}-abc"
        live = tmp_path / f"{PREFIX}{host}-{os.getpid()}-def"
        other_host = tmp_path / f"{PREFIX}elsewhere{host}-{dead_pid}-ghi"
        for d in (dead, live, other_host):
            d.mkdir()
            (d / "frames.rgb").write_bytes(b"x")
        assert remove_abandoned(tmp_path) == [dead]
        assert not dead.exists() and live.exists() and other_host.exists()


class TestRequireSpace:
    INFO = VideoInfo(path=Path("clip.mp4"), fps=25.0, frame_count=250, width=1920, height=1080)

    def test_frames_read_follows_every_start_and_end(self):
        assert frames_read(self.INFO) == 250
        assert frames_read(self.INFO, every=2) == 125
        assert frames_read(self.INFO, start=2.0, end=4.0) == 51  # frames 50-100
        assert frames_read(VideoInfo(Path("x"), 25.0, 0, 10, 10)) == 0  # count unknown: no refusal

    def test_a_clip_the_disk_cannot_hold_is_refused_in_one_line(self, tmp_path, monkeypatch):
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(frame_store.shutil, "disk_usage", lambda p: usage(10**12, 0, 10**9))
        with pytest.raises(ImageError) as err:
            require_space("clip.mp4", [self.INFO], tmp_path)
        message = str(err.value)
        assert message.startswith("clip.mp4: its 250 frames need about 1.6 GB of disk")
        assert "1.0 GB free" in message and "--start/--end" in message and "\n" not in message
        assert require_space("clip.mp4", [self.INFO], tmp_path, every=4) == 63 * 1920 * 1080 * 3
