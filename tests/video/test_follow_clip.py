"""A clip showing two people whose face sizes cross: the real detector, the clip loader; one person followed."""
from __future__ import annotations

import numpy as np
import pytest

from fitter.app.subject import Observer, SubjectSettings, SubjectUnit, load_video
from fitter.export.video_overlay import write_video
from face_crops import face_square
from fitter.observe import observe_image

CELL = 240
SCALES = [1.2, 0.8, 1.2, 0.8, 1.2, 0.8]  # the right face's size against the left one's, frame by frame


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    d = tmp_path_factory.mktemp("two")
    cache = d / "cache"
    left = face_square("Luciano.png", 180, cache)
    frames = []
    for s in SCALES:
        right = face_square("grace_hopper.jpg", int(180 * s), cache)
        cell = np.full((CELL, CELL, 3), 128, np.uint8)
        o = (CELL - right.shape[0]) // 2
        cell[o:o + right.shape[0], o:o + right.shape[1]] = right
        frame = np.full((CELL, 2 * CELL, 3), 128, np.uint8)
        frame[30:210, 30:210] = left
        frame[:, CELL:] = cell
        frames.append(frame)
    write_video(d / "two.mp4", frames, 10.0)
    return d / "two.mp4", cache


def test_one_person_is_followed_through_a_clip_of_two(two_people):
    path, cache = two_people
    settings = SubjectSettings(preset={}, settings={}, cache_dir=str(cache))
    loaded = load_video(SubjectUnit("video", path), Observer(settings))
    # the premise: each frame's largest face is not always the same person's
    largest = [observe_image(loaded.image(k), largest=True, cache_dir=cache).faces[0].bbox for k in range(6)]
    assert len({bool((b[0] + b[2]) / 2 < CELL) for b in largest}) == 2
    sides = {bool(f.face.landmarks[:, 0].mean() < CELL) for f in loaded.evidence.frames}
    assert len(sides) == 1 and all(f.detected for f in loaded.evidence.frames)
    said = [w for w in loaded.warnings if "show someone besides the person fitted" in w]
    assert len(said) == 1 and said[0].startswith("6 of 6 frames show someone besides"), loaded.warnings
