"""On-disk cache of observations: one ``.npz`` per (image content, detector settings, versions).

The key is the SHA-256 of a canonical JSON document (sorted keys, no whitespace) holding
- ``content``: the SHA-256 of the image file's bytes (``LoadedImage.content_hash``), so renaming or moving
  a file keeps its entry and editing it misses;
- ``settings``: every setting the detector ran with, defaults filled in, plus ``detector``, ``largest`` and
  a fingerprint of the backend (package version and model file identity);
- ``facefit``: ``fitter.__version__``.
Entries live at ``<cache_dir>/<key[:2]>/<key>.npz`` and are written atomically (``ImageObservation.save``);
a corrupt entry is deleted and counts as a miss. The default folder is ``$FACEFIT_CACHE`` or
``~/.cache/facefit/observations``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from .types import ImageObservation
from .. import __version__
from ..common.files import CACHE_ENV, cache_folder

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$FACEFIT_CACHE/observations``, else ``~/.cache/facefit/observations``: beside the mask cache and the
    critic's pool under the same root (before 2026-12-03 a set FACEFIT_CACHE held the entries at its top)."""
    return cache_folder("observations")


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"setting value {obj!r} of type {type(obj).__name__} cannot be part of a cache key")


def canonical_json(obj) -> str:
    """JSON with sorted keys and no whitespace; tuples become lists, numpy scalars Python numbers."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)


def cache_key(content_hash: str, settings: dict, version: str | None = None) -> str:
    """Hex key of an observation of the image with ``content_hash`` under ``settings``."""
    if version is None:
        version = __version__
    doc = {"content": content_hash, "settings": settings, "facefit": version}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def entry_path(key: str, cache_dir: Path | str | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / key[:2] / f"{key}.npz"


def get(key: str, cache_dir: Path | str | None = None) -> ImageObservation | None:
    """The cached observation, or None on a miss (a corrupt entry is removed and is a miss)."""
    path = entry_path(key, cache_dir)
    if not path.is_file():
        return None
    try:
        return ImageObservation.load(path)
    except Exception as exc:  # truncated/corrupt entry from a crash or another version: drop it
        log.warning("facefit: ignoring corrupt observation cache entry %s (%s)", path, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def put(key: str, observation: ImageObservation, cache_dir: Path | str | None = None) -> Path | None:
    """Store ``observation`` under ``key``; returns the entry's path, or None if the folder is not writable
    (a warning is logged: caching is an optimisation, never a failure)."""
    path = entry_path(key, cache_dir)
    try:
        observation.save(path)
    except OSError as exc:
        log.warning("facefit: cannot write observation cache entry %s (%s)", path, exc)
        return None
    return path
