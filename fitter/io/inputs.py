"""Turning command-line INPUTS (files, folders, glob patterns) into sorted image and video paths."""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import InputError
from .images import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class Inputs:
    """What a list of INPUTS resolved to: images and videos, each sorted and without duplicates."""

    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    # files found inside folders or by patterns that facefit cannot read: (path, one-line reason), sorted
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # INPUTS given that cannot be used at all (missing, unsupported, empty folder): (input, problem); only
    # filled by ``discover_inputs(..., strict=False)``, which returns them instead of raising
    problems: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""  # what the problems have in common to do (the supported types), "" when nothing

    def error(self) -> InputError:
        """The problems as one :class:`InputError` (what a strict discovery raises)."""
        return InputError(self.problems, self.hint)

    def __len__(self) -> int:
        return len(self.images) + len(self.videos)


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


# extensions users meet in photo folders -> what they are and what to do with them
_KNOWN_OTHER = {
    **{e: ("HEIC/HEIF photo", "convert it to JPEG or PNG (any photo app can export it)")
       for e in (".heic", ".heif", ".avif")},
    **{e: ("camera RAW file", "develop it to JPEG, PNG or 16-bit TIFF in a RAW converter")
       for e in (".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw")},
    ".gif": ("GIF image", "convert it to PNG"),
    ".psd": ("Photoshop document", "export it as PNG or JPEG"),
    ".svg": ("vector drawing", "it holds no photo; remove it from the inputs"),
}


def unsupported_reason(path: str | Path, videos: bool = True) -> str:
    """One line saying why ``path`` is not read: its type, and what to do about it."""
    ext = Path(path).suffix
    if ext.lower() in _KNOWN_OTHER:
        kind, todo = _KNOWN_OTHER[ext.lower()]
        return f"'{ext}' ({kind}) is not a supported type; {todo}"
    if not videos and is_video_path(path):
        return f"'{ext}' is a video, which is not read here; extract frames to images"
    what = f"'{ext}'" if ext else "a file without an extension"
    return f"{what} is not a supported image or video type"


def _natural_key(path: Path):
    """Sort 'frame2' before 'frame10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")  # includes macOS '._x.jpg' resource forks, which are not images


def _scan_folder(folder: Path, recursive: bool) -> list[Path]:
    if recursive:
        found = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [Path(root) / f for f in files]
    else:
        found = [p for p in folder.iterdir()]
    return [p for p in found if not _hidden(p) and (p.is_file() or _broken_link(p))]


def _broken_link(p: Path) -> bool:
    """A symbolic link whose target is gone (listed as skipped, not silently dropped)."""
    return p.is_symlink() and not p.exists()


def discover_inputs(inputs: Iterable[str | Path], recursive: bool = False, videos: bool = True,
                    strict: bool = True) -> Inputs:
    """Resolve files, folders (non-recursive unless ``recursive``) and glob patterns into images and videos.

    Supported images: jpg, jpeg, png, bmp, tif, tiff, webp; videos: mp4, mpg, mpeg, avi, mov, mkv
    (case-insensitive). Other files inside folders or matched by patterns are listed in ``Inputs.skipped``
    with the reason (hidden files are ignored). Every input that is missing, matches nothing, is an
    unsupported file or a folder without images/videos is collected, and one :class:`InputError` lists them
    all; with ``strict=False`` they are returned in ``Inputs.problems`` instead, so that a batch can fit the
    usable inputs and report the others. With ``videos=False`` video files count as unsupported.
    """
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    problems: list[tuple[str, str]] = []
    wrong_type = False  # some problem is about file types: the supported ones are worth listing
    skipped: dict[str, tuple[Path, str]] = {}
    images: dict[str, Path] = {}
    vids: dict[str, Path] = {}
    kinds = "images or videos" if videos else "images"

    def add(p: Path, explicit: bool, label: str) -> bool:
        if _broken_link(p):
            skipped.setdefault(str(p), (p, f"is a broken link (it points to {os.readlink(p)}, which does not exist)"))
            return False
        if is_image_path(p):
            images.setdefault(os.path.realpath(p), p)
            return True
        if videos and is_video_path(p):
            vids.setdefault(os.path.realpath(p), p)
            return True
        if explicit:
            nonlocal wrong_type
            wrong_type = True
            problems.append((label, unsupported_reason(p, videos)))
        else:
            skipped.setdefault(os.path.realpath(p), (p, unsupported_reason(p, videos)))
        return False

    if not inputs:
        raise InputError([("(none)", "no inputs given; pass image files, folders or glob patterns")])

    for raw in inputs:
        label = str(raw)
        path = Path(os.path.expanduser(label))
        if path.is_dir():
            entries = _scan_folder(path, recursive)
            n = sum(add(p, False, label) for p in entries)
            if n == 0:
                where = "folder and its subfolders contain" if recursive else "folder contains"
                tip = "" if recursive else "; add --recursive (recursive=True in Python) to look into subfolders"
                wrong_type = True
                problems.append((label, f"{where} no {kinds} ({_supported(videos)}){tip}{_others(entries, videos)}"))
        elif path.is_file():
            add(path, True, label)
        elif path.exists():
            problems.append((label, "is neither a regular file nor a folder"))
        elif _GLOB_CHARS.search(label):
            matches = [Path(m) for m in glob.glob(os.path.expanduser(label), recursive=recursive)]
            files = []
            for m in matches:
                if m.is_dir():
                    files += _scan_folder(m, recursive)
                elif m.is_file() and not _hidden(m):
                    files.append(m)
            n = sum(add(p, False, label) for p in files)
            if n == 0:
                what = "matches nothing" if not matches else f"matches {len(matches)} path(s) but no {kinds}"
                wrong_type = wrong_type or bool(matches)
                problems.append((label, f"pattern {what}"))
        else:
            problems.append((label, "does not exist (check the path)"))

    found = Inputs(images=sorted(images.values(), key=_natural_key), videos=sorted(vids.values(), key=_natural_key),
                   skipped=sorted(skipped.values(), key=lambda s: _natural_key(s[0])), problems=problems,
                   hint="Supported: " + _supported(videos) + "." if wrong_type else "")
    if problems and strict:
        raise found.error()
    return found


def _others(files: list[Path], videos: bool) -> str:
    """'; it holds N other file(s), e.g. x.heic: why' — so an all-HEIC folder says what is wrong with it."""
    if not files:
        return ""
    why = "a broken link" if _broken_link(files[0]) else unsupported_reason(files[0], videos)
    return f"; it holds {len(files)} other file(s), e.g. {files[0].name}: {why}"


def find_images(inputs: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Like :func:`discover_inputs` for images only: the sorted list of image paths."""
    return discover_inputs(inputs, recursive=recursive, videos=False).images


def _supported(videos: bool) -> str:
    exts = IMAGE_EXTENSIONS + (VIDEO_EXTENSIONS if videos else ())
    return ", ".join(e.lstrip(".") for e in exts)
