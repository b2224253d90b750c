"""fitter.energy.photo_target: the photo's background is read at one working size (``BACKGROUND_SIZE``), so a
larger fitting crop (vfx's 512 px) sees the same outline as default's 256 px."""
from __future__ import annotations

import cv2
import numpy as np

from fitter.crop import FitCrop
from fitter.energy import photo_target
from fitter.energy.photo_target import BACKGROUND_SIZE, PhotoTarget
from fitter.observe.segmentation import PART_NAMES, PartMasks

PHOTO = 400  # photo side, px; the face is an ellipse of 90 x 120 px in its middle


def ellipse(axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((PHOTO, PHOTO), np.uint8)
    cv2.ellipse(mask, (PHOTO // 2, PHOTO // 2), axes, 0, 0, 360, 1, -1)
    return mask > 0


def drawn_face() -> tuple[np.ndarray, PartMasks, np.ndarray]:
    """(sRGB float photo, part masks 10 px inside the true outline, the true face): skin on a noisy background."""
    rng = np.random.default_rng(3)
    photo = np.empty((PHOTO, PHOTO, 3), np.float32)
    photo[:] = (0.25, 0.45, 0.42)
    photo += rng.normal(0, 0.05, photo.shape).astype(np.float32)
    truth = ellipse((90, 120))
    shade = np.linspace(0.75, 1.1, PHOTO, dtype=np.float32)[None, :, None]
    skin = np.array([0.8, 0.6, 0.5], np.float32) * shade + rng.normal(0, 0.02, photo.shape).astype(np.float32)
    photo[truth] = skin[truth]
    labels = np.where(ellipse((80, 110)), PART_NAMES.index("skin") + 1, 0).astype(np.uint8)
    masks = PartMasks(labels, np.zeros_like(labels, bool), (0, 0, PHOTO, PHOTO), "landmarks", True)
    return np.clip(photo, 0, 1), masks, truth


def target(size: int) -> PhotoTarget:
    photo, masks, _ = drawn_face()
    return PhotoTarget.from_photo(photo, FitCrop(50.0, 50.0, 300.0, size), masks)


def at(mask: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.5


class TestBackgroundSize:
    def test_a_larger_crop_reads_the_same_background(self):
        small, large = target(BACKGROUND_SIZE).background, target(2 * BACKGROUND_SIZE).background
        assert large.shape == (2 * BACKGROUND_SIZE,) * 2
        assert small.mean() > 0.2
        assert (at(large, BACKGROUND_SIZE) != small).mean() < 0.01

    def test_background_follows_the_true_outline_and_spares_the_parts(self):
        _, _, truth = drawn_face()
        large = target(2 * BACKGROUND_SIZE)
        true_in_crop = large.crop.mask(truth, (0.0, 0.0))
        assert large.background[~true_in_crop].mean() > 0.9
        assert large.background[true_in_crop].mean() < 0.05
        assert not large.background[large.face].any()

    def test_read_at_the_working_size(self, monkeypatch):
        """The larger crop's background is GrabCut's at BACKGROUND_SIZE, scaled up."""
        sizes = []
        real = photo_target.face_background

        def spy(image, face, skin):
            sizes.append(image.shape[0])
            return real(image, face, skin)

        monkeypatch.setattr(photo_target, "face_background", spy)
        target(2 * BACKGROUND_SIZE).background
        target(BACKGROUND_SIZE // 2).background
        assert sizes == [BACKGROUND_SIZE, BACKGROUND_SIZE // 2]
