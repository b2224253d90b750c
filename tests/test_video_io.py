"""fitter.io.video: frame selection (every / start / end in seconds), frame times, streaming, errors;
on a tiny clip written here and on the real GRID clips of ../shared when present."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from fitter.io import ImageError, open_video, video_info
from fitter.io import video as video_module

FPS = 25.0
N_FRAMES = 20
REPO = Path(__file__).resolve().parents[1]


def _shared_videos() -> list[Path]:
    """GRID clips from the project's shared data folder beside the checkout (or $FACEFIT_SHARED)."""
    roots = [Path(os.environ["FACEFIT_SHARED"])] if os.environ.get("FACEFIT_SHARED") else []
    roots += [REPO.parent / "shared", REPO.parent.parent / "shared"]  # a checkout, or a worktree under wt/
    for root in roots:
        found = sorted((root / "data" / "videos").glob("*.mpg"))
        if found:
            return found
    return []


GRID = _shared_videos()


def _level(index: int) -> int:
    return 10 * index + 5  # each frame's grey level tells its index (MJPG keeps it within a few levels)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (32, 24))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        frame = np.full((24, 32, 3), _level(i), np.uint8)
        frame[:, :, 2] = 250  # red in BGR: frames come out RGB
        writer.write(frame)
    writer.release()
    return path


def _decoded_index(frame) -> int:
    return int(round((float(frame.rgb[..., 1].mean()) - 5) / 10))


def test_all_frames_with_index_and_time(tiny):
    clip = open_video(tiny)
    frames = list(clip)
    assert [f.index for f in frames] == list(range(N_FRAMES)) == clip.expected_indices()
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(N_FRAMES)])
    for f in frames:
        assert _decoded_index(f) == f.index == f.image.frame_index  # the frame we were told it is
        assert f.rgb.shape == (24, 32, 3) and f.rgb.dtype == np.uint8 and f.rgb[..., 0].mean() > 240
    assert not clip.warnings and clip.fps == FPS


def test_start_end_in_seconds_and_every(tiny):
    clip = open_video(tiny, every=3, start=0.2, end=0.6)  # frames 5..14 (end exclusive), every 3rd
    frames = list(clip)
    assert [f.index for f in frames] == [5, 8, 11, 14] == clip.expected_indices()
    assert [_decoded_index(f) for f in frames] == [5, 8, 11, 14]
    assert [f.time for f in frames] == pytest.approx([0.2, 0.32, 0.44, 0.56])
    assert [f.index for f in open_video(tiny, start=0.2, end=0.28)] == [5, 6]  # 0.28 s is frame 7: excluded
    assert [f.index for f in open_video(tiny, start=0.61)] == list(range(16, N_FRAMES))
    assert [f.index for f in open_video(tiny, every=4, max_frames=2)] == [0, 4]


def test_streams_in_chunks_and_reiterates(tiny):
    clip = open_video(tiny, every=2)
    chunks = list(clip.chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [f.index for c in chunks for f in c] == list(range(0, N_FRAMES, 2))
    stream = iter(clip)
    assert next(stream).index == 0 and next(stream).index == 2  # lazily decoded, one at a time
    stream.close()
    first = [f.image.content_hash for f in clip]
    assert [f.image.content_hash for f in clip] == first and len(set(first)) == len(first)


def test_missing_frame_rate_falls_back_with_a_warning(tiny, monkeypatch):
    monkeypatch.setattr(video_module, "_container_fps", lambda cap: 0.0)
    with pytest.warns(UserWarning, match="does not state its frame rate"):
        clip = open_video(tiny, start=0.1)
    assert clip.fps == video_module.FALLBACK_FPS and clip.warnings
    first = next(iter(clip))  # the frames' own timestamps still time them: 25 fps
    assert first.index == 3 and first.time == pytest.approx(3 / FPS)
    monkeypatch.setattr(video_module._FrameTimes, "_stamp", lambda self: None)  # no timestamps either
    with pytest.warns(UserWarning, match="does not state its frame rate"):
        first = next(iter(open_video(tiny, start=0.1)))
    assert first.index == 3 and first.time == pytest.approx(3 / video_module.FALLBACK_FPS)
    overridden = open_video(tiny, fps=50.0, start=0.1)  # an explicit rate needs no guess
    assert not overridden.warnings and next(iter(overridden)).index == 5


def test_an_unusual_container_rate_is_said(tiny, monkeypatch):
    monkeypatch.setattr(video_module, "_container_fps", lambda cap: 1000.0)
    with pytest.warns(UserWarning, match="states 1000 fps, an unusual rate; if it is wrong, pass --fps"):
        clip = open_video(tiny)
    assert clip.fps == 1000.0 and len(clip.warnings) == 1
    assert not open_video(tiny, fps=25.0).warnings  # the user's rate is taken as it is


@pytest.mark.parametrize("kwargs, message", [
    ({"start": 5.0}, "past the end of the video"),
    ({"start": 0.5, "end": 0.5}, "end must be a time"),
    ({"start": 0.01, "end": 0.02}, "--start 0.01 s to --end 0.02 s holds no frame"),
    ({"start": -1.0}, "start must be a time"),
    ({"every": 0}, "every must be an integer"),
    ({"fps": 0.0}, "fps must be a positive"),
])
def test_bad_selections(tiny, kwargs, message):
    with pytest.raises((ImageError, ValueError), match=message):
        open_video(tiny, **kwargs)


def test_a_step_longer_than_the_clip_is_said(tiny):
    assert open_video(tiny, every=N_FRAMES).warnings == [
        f"--every {N_FRAMES} is at least the selected part of the clip ({N_FRAMES} frames): only its first frame is "
        "fitted"]
    assert open_video(tiny, every=2).warnings == [] and open_video(tiny, max_frames=1).warnings == []
    assert "(3 frames)" in open_video(tiny, every=5, end=3 / FPS).warnings[0]  # the window, not the whole clip
    assert open_video(tiny, every=2, end=0.5 / FPS).warnings == []  # one frame in the window: nothing to say


def test_unreadable_files_give_one_line(tmp_path):
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("meeting notes, saved with the wrong name\n")
    cases = [(tmp_path / "missing.mp4", "does not exist"), (tmp_path, "is a folder"),
             (bad, "cannot be opened as a video|no decodable frames"),
             (tmp_path / "empty.mp4", r"is empty \(0 bytes\)"),
             (tmp_path / "notes.mp4", "holds plain text data, not a video")]
    for path, problem in cases:
        with pytest.raises(ImageError, match=problem) as err:
            open_video(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not GRID, reason="GRID clips not found in ../shared/data/videos")
def test_grid_clips():
    for path in GRID:
        info = video_info(path)
        assert (info.width, info.height, info.fps, info.frame_count) == (360, 288, 25.0, 75)
        every_frame = list(open_video(path))
        assert len(every_frame) == 75 and every_frame[-1].time == pytest.approx(2.96)
        clip = open_video(path, every=5, start=1.0, end=2.0)
        chunks = list(clip.chunks(2))
        assert [len(c) for c in chunks] == [2, 2, 1]
        picked = [f for c in chunks for f in c]
        assert [f.index for f in picked] == [25, 30, 35, 40, 45]
        assert [f.time for f in picked] == pytest.approx([1.0, 1.2, 1.4, 1.6, 1.8])
        for f in picked:  # frame-exact: the same pixels as a plain sequential read
            assert np.array_equal(f.rgb, every_frame[f.index].rgb)


def _with_frame_durations(mp4: bytes, durations: list[int]) -> bytes:
    """The MP4 with its one track's time-to-sample table ('stts') replaced: one duration (in the track's time
    scale) per frame, as a variable-rate camera writes them. Its parent boxes grow with it; the sample data
    comes before the 'moov' box in OpenCV's files, so no chunk offset moves."""
    def chain(start: int, end: int, parents: list) -> list | None:
        while start < end:
            size, kind = struct.unpack(">I4s", mp4[start:start + 8])
            if kind == b"stts":
                return parents + [(start, size)]
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                found = chain(start + 8, start + size, parents + [(start, size)])
                if found:
                    return found
            start += size
        return None

    *parents, (at, size) = chain(0, len(mp4), [])
    body = struct.pack(">II", 0, len(durations)) + b"".join(struct.pack(">II", 1, d) for d in durations)
    box = struct.pack(">I4s", 8 + len(body), b"stts") + body
    out = bytearray(mp4[:at] + box + mp4[at + size:])
    for start, parent_size in parents:
        out[start:start + 4] = struct.pack(">I", parent_size + len(box) - size)
    return bytes(out)


@pytest.fixture(scope="module")
def variable_rate(tmp_path_factory) -> tuple[Path, list[float]]:
    """A 20-frame MP4 stamped at 60 fps, then 15, then 30 (as a phone slows down in low light); the file states
    one rate (30 fps, its mean). Returns the path and each frame's true time."""
    folder = tmp_path_factory.mktemp("vfr")
    writer = cv2.VideoWriter(str(folder / "cfr.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (32, 24))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MP4 here")
    for i in range(20):
        writer.write(np.full((24, 32, 3), _level(i), np.uint8))
    writer.release()
    durations = [256] * 10 + [1024] * 5 + [512] * 5  # the track's time scale is 15360 a second: 60, 15, 30 fps
    path = folder / "vfr.mp4"
    path.write_bytes(_with_frame_durations((folder / "cfr.mp4").read_bytes(), durations))
    return path, [float(t) for t in np.concatenate([[0], np.cumsum(durations)[:-1]]) / 15360.0]


def test_a_variable_rate_clip_is_timed_by_its_timestamps(variable_rate):
    path, truth = variable_rate
    clip = open_video(path)
    frames = list(clip)
    assert clip.fps == 30.0 and [f.index for f in frames] == list(range(20))
    assert [_decoded_index(f) for f in frames] == list(range(20))
    assert [f.time for f in frames] == pytest.approx(truth, abs=1e-4)  # not index / 30
    assert any(w.startswith("the clip's frame rate varies (15-60 fps") for w in clip.warnings), clip.warnings
    # --start / --end select by those times: 0.2 s is frame 11 (10 frames at 60 fps, then 15 fps), 0.45 s after 14
    assert [f.index for f in open_video(path, start=0.2, end=0.45)] == [11, 12, 13, 14]
    assert [f.index for f in open_video(path, start=0.2, every=2)] == [11, 13, 15, 17, 19]
    # a rate given overrides the file's timing
    forced = open_video(path, fps=30.0)
    assert [f.time for f in forced] == pytest.approx([i / 30 for i in range(20)]) and not forced.warnings
    with pytest.raises(ImageError, match="past the end of the video"):
        open_video(path, start=0.7)


def test_a_constant_rate_clip_is_timed_index_over_fps_exactly(variable_rate, tiny):
    """A constant-rate clip's timestamps are rounded by its time base: such a clip keeps exact index / fps."""
    cfr = variable_rate[0].parent / "cfr.mp4"
    clip = open_video(cfr)
    assert [f.time for f in clip] == [i / 30.0 for i in range(20)] and not clip.warnings
    assert [f.time for f in open_video(tiny)] == [i / FPS for i in range(N_FRAMES)]
