"""What a library caller hands the fitter and the exporter is checked in one line: a photo of another size or
kind, an impossible image size, a broken EXIF focal length, and a non-finite fit, which is never written."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fitter.camera import focal_from_exif
from fitter.evidence import Evidence
from fitter.export.face import export_face
from fitter.io import load_image
from fitter.observe import observe_image
from fitter.optimize.fit import fit_face
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


def test_a_broken_exif_focal_is_ignored():
    assert focal_from_exif(math.nan, 640, 480) is None and focal_from_exif(-50.0, 640, 480) is None
    assert focal_from_exif(35.0, 640, 480) == pytest.approx(35.0 * 800.0 / math.hypot(36.0, 24.0))


def test_a_non_finite_fit_is_not_written(ict, photo, tmp_path):
    image, face = photo
    preset = tiny_preset(iterations=3)
    fit = fit_face(ict, face, image.size, preset, image.exif_focal_35mm)
    fit.state.identity.data[:] = float("nan")
    with pytest.raises(NonFiniteFit, match="is not finite \\(vertices .*identity"):
        export_face(ict, fit, image.rgb, tmp_path / "face", "Bryan.png", 0, preset)
    assert not (tmp_path / "face").exists() or not any((tmp_path / "face").iterdir())
