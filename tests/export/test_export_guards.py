"""What a library caller hands the fitter and the exporter is checked in one line: a photo of another size or
kind, an impossible image size, landmarks a fit cannot use, a hand-edited preset, a broken EXIF focal length,
and a non-finite fit, which is never written."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from fitter.camera import focal_from_exif
from fitter.evidence import Evidence
from fitter.export.face import export_face
from fitter.io import load_image
from fitter.observe import observe_image
from fitter.optimize.fit import fit_face, fit_subject
from fitter.optimize.presets import PresetError, load_preset
from fitter.optimize.subject import fit_sequence
from fitter.optimize.schedule import NonFiniteFit
from paths import EXAMPLES
from sequences import tiny_preset


@pytest.fixture(scope="module")
def photo():
    image = load_image(EXAMPLES / "Bryan.png")
    return image, observe_image(image, cache=False).faces[0]


def test_photos_and_sizes_a_fit_cannot_use_are_refused(photo):
    image, face = photo
    h, w = image.size
    with pytest.raises(ValueError, match="photo must be float sRGB in \\[0, 1\\]"):
        Evidence.single(face, image.size, image.rgb)  # uint8 0-255: the light took 0-255 as linear radiance
    with pytest.raises(ValueError, match="photo must be an \\(H, W, 3\\) array of the image's size"):
        Evidence.single(face, image.size, np.zeros((h // 2, w // 2, 3), np.float32))
    for size in ((0, 0), (-5, 100), (h, w, 3)):
        with pytest.raises(ValueError, match="image_size must be \\(height, width\\)"):
            Evidence.single(face, size)
    assert Evidence.single(face, [h, w], image.rgb_float).frames[0].image_size == (h, w)


def _edited(face, **changes):
    out = copy.deepcopy(face)
    for name, edit in changes.items():
        setattr(out, name, edit(getattr(out, name)))
    return out


def test_landmarks_a_fit_cannot_use_are_refused(photo):
    """Each of these reached a stage as a NaN energy, an IndexError, a reduction over nothing, or was 'fitted'
    with RMSE 0 (every landmark on one pixel)."""
    image, face = photo

    def nan_one(p):
        p = p.copy()
        p[5] = np.nan
        return p

    cases = {
        "not finite": dict(landmarks=nan_one),
        "span 0 x 0 px": dict(landmarks=lambda p: np.full_like(p, 100.0)),
        "needs 478 landmarks": dict(landmarks=lambda p: p[:100]),
        "every landmark weight is 0": dict(landmark_weights=np.zeros_like),
        "landmark_weights must be 478 finite": dict(landmark_weights=lambda w: np.full_like(w, np.nan)),
    }
    for message, change in cases.items():
        with pytest.raises(ValueError, match=message):
            Evidence.single(_edited(face, **change), image.size)
    hidden = _edited(face, landmarks=nan_one, landmark_weights=lambda w: np.where(np.arange(len(w)) == 5, 0.0, w))
    Evidence.single(hidden, image.size)  # a NaN landmark of weight 0 is no evidence: allowed
    with pytest.raises(ValueError, match="face must be a FaceObservation"):
        Evidence.single(face.landmarks, image.size)


def test_a_hand_edited_preset_is_checked_before_any_stage(ict, photo):
    image, face = photo
    good = load_preset("fast")
    edits = {
        "unknown energy term 'landmark'": lambda p: p["stages"][0]["weights"].update(landmark=1.0),
        "defines no \\[\\[stages\\]\\]": lambda p: p.update(stages=[]),
        "landmarks missing": lambda p: p.pop("landmarks"),
        "photometric.sigma missing": lambda p: p["photometric"].pop("sigma"),
    }
    for message, edit in edits.items():
        preset = copy.deepcopy(good)
        edit(preset)
        with pytest.raises(PresetError, match=message):
            fit_face(ict, face, image.size, preset)
        with pytest.raises(PresetError, match=message):
            fit_subject(ict, Evidence.single(face, image.size), preset)
        with pytest.raises(PresetError, match=message):
            fit_sequence(ict, Evidence.single(face, image.size), preset)


def test_a_broken_exif_focal_is_ignored():
    assert focal_from_exif(math.nan, 640, 480) is None and focal_from_exif(-50.0, 640, 480) is None
    assert focal_from_exif(1.0, 640, 480) is None and focal_from_exif(5000.0, 640, 480) is None
    assert focal_from_exif(35.0, 640, 480) == pytest.approx(35.0 * 800.0 / math.hypot(36.0, 24.0))


def test_a_non_finite_fit_is_not_written(ict, photo, tmp_path):
    image, face = photo
    preset = tiny_preset(iterations=3)
    fit = fit_face(ict, face, image.size, preset, image.exif_focal_35mm)
    fit.state.identity.data[:] = float("nan")
    with pytest.raises(NonFiniteFit, match="is not finite \\(vertices .*identity"):
        export_face(ict, fit, image.rgb, tmp_path / "face", "Bryan.png", 0, preset)
    assert not (tmp_path / "face").exists() or not any((tmp_path / "face").iterdir())
