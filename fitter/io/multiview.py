"""Finding the cameras and frames of a multi-view capture folder.

Two layouts (docs/rig.md):
- ``DIR/<camera>/<frame>.png`` (any image type): one folder per camera; frames are matched across cameras by
  the number in their file name (``0001.png``, ``frame_1.jpg`` and ``img001.png`` are all frame 1), or by
  the whole file stem when some name has no number;
- ``DIR/<camera>.mp4`` (any video type): one synchronised video per camera; frames are matched by index.
Frames that some cameras lack are left out (with a warning naming how many); a ``rig.json`` in DIR, if any,
must name every camera found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImageError
from .images import upright_size
from .inputs import _natural_key, is_image_path, is_video_path
from .rig import RIG_FORMAT, Rig, load_rig
from .video import video_info

RIG_FILE = "rig.json"
LAYOUT_HINT = "a multi-view capture is DIR/<camera>/<frame>.png or DIR/<camera>.mp4"
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass
class MultiViewInput:
    """The cameras of a capture folder and the frames every camera has."""

    root: Path
    kind: str  # "images" or "videos"
    cameras: list[str]
    frames: list[str | int]  # matched frame keys in order (frame numbers, or stems); videos: frame indices
    images: dict[str, dict[str | int, Path]] = field(default_factory=dict)  # camera -> frame key -> file
    videos: dict[str, Path] = field(default_factory=dict)  # camera -> video file
    warnings: list[str] = field(default_factory=list)

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """(h, w) of each camera, from its first frame's header, upright as loaded (images), or the container
        (videos)."""
        sizes = {}
        for cam in self.cameras:
            if self.kind == "videos":
                info = video_info(self.videos[cam])
                sizes[cam] = (info.height, info.width)
            else:
                sizes[cam] = upright_size(self.images[cam][self.frames[0]])
        return sizes


def frame_key(path: Path, by_number: bool) -> str | int:
    """A frame's key: the last number in its stem (``by_number``) or the stem itself."""
    if by_number:
        return int(_LAST_NUMBER.search(path.stem).group(1))
    return path.stem


def _visible(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=_natural_key)


def discover_multiview(root: str | Path, rig: Rig | None = None) -> MultiViewInput:
    """Cameras and matched frames of a capture folder; one :class:`ImageError` line when it is unusable.

    With ``rig``, every camera found must be in it (extra rig cameras are fine: unused views).
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageError(root, "is not a folder", LAYOUT_HINT)
    entries = _visible(root)
    folders = [p for p in entries if p.is_dir() and any(is_image_path(f) for f in _visible(p))]
    empty = [p.name for p in entries if p.is_dir() and p not in folders]  # a camera whose images went missing?
    videos = [p for p in entries if p.is_file() and is_video_path(p)]
    if folders and videos:
        raise ImageError(root, f"mixes camera folders ({folders[0].name}/) and camera videos ({videos[0].name})",
                         "keep one layout: DIR/<camera>/<frame>.png or DIR/<camera>.mp4")
    if videos:
        found = _from_videos(root, videos)
    elif folders:
        found = _from_folders(root, folders)
    else:
        raise ImageError(root, "holds no camera folders with images and no camera videos", LAYOUT_HINT)
    if folders and empty:
        found.warnings.append(f"folder(s) {', '.join(sorted(empty))} hold no images: not used as cameras")
    if len(found.cameras) < 2:
        found.warnings.append(f"only one camera ({found.cameras[0]}) found: this is a single-view capture")
    if rig is None and (root / RIG_FILE).exists():
        rig = load_rig(root / RIG_FILE)
    if rig is not None:
        missing = [c for c in found.cameras if c not in rig.cameras]
        if missing:
            raise ImageError(root, f"camera(s) {', '.join(missing)} are not in the rig ({', '.join(rig.names)})",
                             f"rename the folders/videos or the cameras of the {RIG_FORMAT} file")
    return found


def _from_folders(root: Path, folders: list[Path]) -> MultiViewInput:
    files = {f.name: [p for p in _visible(f) if p.is_file() and is_image_path(p)] for f in folders}
    by_number = all(_LAST_NUMBER.search(p.stem) for paths in files.values() for p in paths)
    images: dict[str, dict[str | int, Path]] = {}
    for cam, paths in files.items():
        keyed: dict[str | int, Path] = {}
        for p in paths:
            key = frame_key(p, by_number)
            if key in keyed:
                raise ImageError(p, f"is frame {key!r} of camera {cam}, like {keyed[key].name}",
                                 "give each frame of a camera one file")
            keyed[key] = p
        images[cam] = keyed
    common = set.intersection(*(set(k) for k in images.values()))
    if not common:
        raise ImageError(root, "its camera folders share no frame (frames are matched by the number in their "
                               "file names, or by file name)", "name each instant's images alike in every folder")
    order = sorted(common) if by_number else sorted(common, key=_natural_key)
    warnings = []
    for cam, keyed in images.items():
        extra = len(keyed) - len(common)
        if extra:
            warnings.append(f"camera {cam}: {extra} frame(s) that other cameras lack are left out")
    return MultiViewInput(root, "images", list(images), order, images=images, warnings=warnings)


def _from_videos(root: Path, videos: list[Path]) -> MultiViewInput:

    names = [v.stem for v in videos]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ImageError(root, f"has several videos for camera {dupes[0]}", "keep one video per camera")
    infos = {v.stem: video_info(v) for v in videos}
    counts = {cam: info.frame_count for cam, info in infos.items()}
    n = min(counts.values())
    warnings = []
    if len(set(counts.values())) > 1:
        warnings.append(f"camera videos differ in length ({counts}); using the first {n} frames of each, "
                        "assuming they start together")
    rates = {cam: info.fps for cam, info in infos.items()}
    if len(set(rates.values())) > 1:
        warnings.append(f"camera videos differ in frame rate ({rates}); frames are matched by index")
    return MultiViewInput(root, "videos", names, list(range(n)), videos=dict(zip(names, videos)), warnings=warnings)
