"""Messages that name the right file: cache hits made under another name, and entries of older versions."""
from __future__ import annotations

import cv2
import numpy as np

from fitter.io import load_image
from fitter.observe import cache, observe_image, resolve_settings
from fitter.observe.api import NO_FACE


def test_cached_warnings_are_relabelled_for_the_current_file(tmp_path):
    noise = np.random.default_rng(3).integers(0, 255, (90, 120, 3), np.uint8)
    first, second = tmp_path / "landscape.png", tmp_path / "bad_noface.png"
    cv2.imwrite(str(first), noise)
    second.write_bytes(first.read_bytes())
    root = tmp_path / "cache"
    obs = observe_image(first, cache_dir=root)
    assert obs.faces == [] and obs.warnings == [NO_FACE]

    # an entry as an older facefit wrote it: its warnings name the file it was first observed under
    key = cache.cache_key(load_image(first).content_hash, resolve_settings())
    old = cache.get(key, root)
    old.warnings = [f"no face found in {first}", f"a face near {first} was odd"]
    cache.put(key, old, root)

    hit = observe_image(second, cache_dir=root)
    assert hit.source == str(second)
    assert hit.warnings == [f"no face found in {second}", f"a face near {second} was odd"]
