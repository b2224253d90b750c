"""The observation cache: keys, hits, misses, corrupt entries, the default folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fitter.io import load_image
from fitter.observe import ImageObservation, cache, observe_image
from paths import EXAMPLES



def _entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.npz"))


def _assert_identical(a: ImageObservation, b: ImageObservation) -> None:
    assert a.image_size == b.image_size and a.settings == b.settings and a.warnings == b.warnings
    assert len(a.faces) == len(b.faces)
    for fa, fb in zip(a.faces, b.faces):
        for name in ("landmarks", "bbox", "landmark_weights", "landmarks_z", "transform", "roi"):
            x, y = getattr(fa, name), getattr(fb, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        assert fa.blendshapes == fb.blendshapes and fa.score == fb.score and fa.detector == fb.detector
        assert fa.landmark_format == fb.landmark_format


def test_hit_returns_identical_arrays_and_settings_change_misses(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    img = load_image(EXAMPLES / "Luciano.png")
    first = observe_image(img, cache_dir=root)
    assert len(_entries(root)) == 1

    # a hit must not run the detector
    from fitter.observe import mediapipe_backend

    def boom(*a, **k):
        raise AssertionError("detector ran on a cache hit")

    monkeypatch.setattr(mediapipe_backend, "detect", boom)
    second = observe_image(img, cache_dir=root)
    _assert_identical(first, second)
    monkeypatch.undo()

    # any changed setting (or `largest`) is a different entry
    observe_image(img, cache_dir=root, min_detection_confidence=0.6)
    assert len(_entries(root)) == 2
    observe_image(img, cache_dir=root, largest=True)
    assert len(_entries(root)) == 3
    # the same settings spelled differently (order, int vs float) hit
    observe_image(img, cache_dir=root, min_detection_confidence=0.6, max_faces=20.0)
    assert len(_entries(root)) == 3


def test_key_follows_content_not_path(tmp_path):
    root = tmp_path / "cache"
    copy = tmp_path / "renamed.png"
    shutil.copy(EXAMPLES / "Luciano.png", copy)
    a = observe_image(load_image(EXAMPLES / "Luciano.png"), cache_dir=root)
    b = observe_image(load_image(copy), cache_dir=root)
    assert len(_entries(root)) == 1
    assert b.source == str(copy) and a.source == str(EXAMPLES / "Luciano.png")
    copy.write_bytes(copy.read_bytes() + b"\0")  # different bytes: a miss even though pixels are equal
    observe_image(load_image(copy), cache_dir=root)
    assert len(_entries(root)) == 2


def test_key_is_canonical_and_versioned():
    k = cache.cache_key("abc", {"b": 1, "a": [1, 2], "c": (3,)}, version="1")
    assert k == cache.cache_key("abc", {"c": [3], "a": (1, 2), "b": np.int64(1)}, version="1")
    assert k != cache.cache_key("abc", {"b": 1, "a": [1, 2], "c": (3,)}, version="2")
    assert k != cache.cache_key("abd", {"b": 1, "a": [1, 2], "c": (3,)}, version="1")
    with pytest.raises(TypeError):
        cache.cache_key("abc", {"x": object()})


def test_corrupt_entry_is_a_miss_and_rewritten(tmp_path):
    root = tmp_path / "cache"
    img = load_image(EXAMPLES / "Bryan.png")
    first = observe_image(img, cache_dir=root)
    (entry,) = _entries(root)
    entry.write_bytes(b"garbage")
    again = observe_image(img, cache_dir=root)
    _assert_identical(first, again)
    assert ImageObservation.load(entry).faces  # rewritten with a valid entry


def test_get_put_round_trip_and_cache_off(tmp_path):
    img = load_image(EXAMPLES / "Bryan.png")
    obs = observe_image(img, cache=False, cache_dir=tmp_path)
    assert _entries(tmp_path) == []
    key = cache.cache_key(img.content_hash, obs.settings)
    assert cache.get(key, tmp_path) is None
    path = cache.put(key, obs, tmp_path)
    assert path == cache.entry_path(key, tmp_path) and path.is_file()
    assert list(path.parent.iterdir()) == [path]  # atomic write leaves no temporary file, whatever its name
    _assert_identical(obs, cache.get(key, tmp_path))


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEFIT_CACHE", str(tmp_path / "env"))
    assert cache.default_cache_dir() == tmp_path / "env" / "observations"  # beside masks/ and critic_pool/
    observe_image(load_image(EXAMPLES / "Bryan.png"))  # cache_dir=None: the default folder
    assert len(_entries(tmp_path / "env")) == 1
    monkeypatch.delenv("FACEFIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache_dir() == tmp_path / "home" / ".cache" / "facefit" / "observations"


def test_no_face_result_is_cached_too(tmp_path):
    from fitter.io import LoadedImage

    noise = LoadedImage.from_array(np.random.default_rng(5).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    a = observe_image(noise, cache_dir=tmp_path)
    b = observe_image(noise, cache_dir=tmp_path)
    assert a.faces == b.faces == [] and b.warnings == a.warnings and a.warnings
