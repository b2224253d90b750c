"""fitter.io input discovery (files, folders, globs) and video frame reading."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fitter.io import ImageError, InputError, discover_inputs, find_images, read_video_frames, video_info


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")  # discovery looks at names only; decoding is load_image's job
    return path


@pytest.fixture
def tree(tmp_path):
    for name in ["b.JPG", "a.png", "frame10.jpeg", "frame2.jpeg", "c.TIFF", "d.webp", "e.bmp", "f.tif",
                 "notes.txt", ".hidden.jpg", "._a.jpg", "clip.MP4", "sub/deep.png", "sub/deeper/x.jpg",
                 "empty/readme.md"]:
        _touch(tmp_path / name)
    return tmp_path


def test_folder_non_recursive_sorted_case_insensitive(tree):
    found = discover_inputs([tree])
    names = [p.name for p in found.images]
    assert names == ["a.png", "b.JPG", "c.TIFF", "d.webp", "e.bmp", "f.tif", "frame2.jpeg", "frame10.jpeg"]
    assert [p.name for p in found.videos] == ["clip.MP4"]
    assert find_images([tree]) == found.images


def test_unsupported_files_in_folders_are_listed_with_their_type(tree):
    _touch(tree / "IMG_0001.HEIC")
    found = discover_inputs([tree])
    skipped = {p.name: why for p, why in found.skipped}
    assert set(skipped) == {"IMG_0001.HEIC", "notes.txt"}  # hidden files stay silent
    assert "HEIC" in skipped["IMG_0001.HEIC"] and "convert it to JPEG or PNG" in skipped["IMG_0001.HEIC"]
    assert "'.txt'" in skipped["notes.txt"]
    deep = discover_inputs([tree], recursive=True).skipped
    assert "readme.md" in {p.name for p, _ in deep}
    only_heic = tree / "phone"
    _touch(only_heic / "a.heic")
    with pytest.raises(InputError, match="a.heic: '.heic' .HEIC/HEIF photo"):
        discover_inputs([only_heic])


def test_folder_recursive(tree):
    names = {p.relative_to(tree).as_posix() for p in discover_inputs([tree], recursive=True).images}
    assert {"sub/deep.png", "sub/deeper/x.jpg", "a.png"} <= names
    assert not any(n.startswith(".") or "/." in n for n in names)


def test_files_and_globs_deduplicated(tree):
    found = discover_inputs([tree / "a.png", str(tree / "*.png"), str(tree / "frame*.jpeg"), tree / "a.png"])
    assert [p.name for p in found.images] == ["a.png", "frame2.jpeg", "frame10.jpeg"]
    deep = discover_inputs([str(tree / "**" / "*.png")], recursive=True).images
    assert {p.name for p in deep} == {"a.png", "deep.png"}


def test_all_problems_listed_in_one_error(tree):
    with pytest.raises(InputError) as err:
        discover_inputs([tree / "missing.jpg", tree / "empty", str(tree / "*.gif"), tree / "notes.txt",
                         tree / "a.png"])
    e = err.value
    assert isinstance(e, ImageError)
    assert len(e.problems) == 4
    msg = str(e)
    assert "missing.jpg: does not exist" in msg
    assert "no images or videos" in msg and "recursive" in msg
    assert "matches nothing" in msg
    assert "'.txt' is not a supported image or video type" in msg
    with pytest.raises(InputError, match="no inputs given"):
        discover_inputs([])


def test_lenient_discovery_returns_problems_beside_the_usable_inputs(tree):
    found = discover_inputs([tree / "missing.jpg", tree / "a.png"], strict=False)
    assert [p.name for p in found.images] == ["a.png"]
    assert found.problems == [(str(tree / "missing.jpg"), "does not exist (check the path)")]
    assert found.hint == ""  # nothing about types went wrong: no list of supported types
    with pytest.raises(InputError, match="missing.jpg: does not exist"):
        raise found.error()
    typed = discover_inputs([tree / "notes.txt", tree / "empty"], strict=False)
    assert len(typed.problems) == 2 and typed.hint.startswith("Supported: jpg")


def test_videos_can_be_excluded(tree):
    with pytest.raises(InputError, match="is a video"):
        discover_inputs([tree / "clip.MP4"], videos=False)


def _write_video(path: Path, n: int = 10, size=(64, 48)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((size[1], size[0], 3), 20 * i, np.uint8)
        frame[:, :, 2] = 200  # red in BGR: checks the RGB conversion
        writer.write(frame)
    writer.release()


def test_read_video_frames(tmp_path):
    path = tmp_path / "v.avi"
    _write_video(path)
    info = video_info(path)
    assert (info.width, info.height, info.frame_count) == (64, 48, 10) and info.fps == pytest.approx(25.0)
    frames = list(read_video_frames(path, every=3))
    assert [f.frame_index for f in frames] == [0, 3, 6, 9]
    for f in frames:
        assert f.size == (48, 64) and f.rgb.dtype == np.uint8
        assert abs(int(f.rgb[..., 1].mean()) - 20 * f.frame_index) <= 3  # the frame we asked for
        assert f.rgb[..., 0].mean() > 190  # red channel first
        assert f.source.endswith(f"#frame={f.frame_index}")
    assert len({f.content_hash for f in frames}) == 4
    assert [f.frame_index for f in read_video_frames(path, every=2, max_frames=2)] == [0, 2]
    assert len(list(read_video_frames(path))) == 10


def test_bad_videos_raise_image_error(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        read_video_frames(tmp_path / "none.mp4")
    (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ImageError, match="bad.mp4"):
        read_video_frames(tmp_path / "bad.mp4")
    with pytest.raises(ValueError):
        read_video_frames(tmp_path / "bad.mp4", every=0)


def test_a_broken_link_in_a_folder_is_listed_as_skipped(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    found = discover_inputs([tmp_path], strict=False)
    assert [p.name for p in found.images] == ["a.jpg"]
    assert [(p.name, why) for p, why in found.skipped] == [
        ("gone.jpg", f"is a broken link (it points to {tmp_path / 'nowhere.jpg'}, which does not exist)")]
