"""Shot-cut signals of a clip (fitter.io.shots): colour signatures and the distance between them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fitter.io.shots import colour_change, colour_signature


def scene(seed: int, tint: tuple[float, float, float] = (1.0, 1.0, 1.0), size: tuple[int, int] = (120, 160)
          ) -> np.ndarray:
    """A smooth random colour field (like a defocused photo) under a colour ``tint`` (RGB gains)."""
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.uniform(0, 1, (*size, 3)).astype(np.float32), (0, 0), 12)
    field = (field - field.min()) / (field.max() - field.min())
    return np.clip(field * np.asarray(tint, np.float32) * 255, 0, 255).astype(np.uint8)


class TestColourSignature:
    def test_is_a_distribution(self):
        sig = colour_signature(scene(0))
        assert sig.shape == (16, 16) and sig.dtype == np.float32
        assert sig.sum() == pytest.approx(1.0) and (sig >= 0).all()

    def test_does_not_depend_on_the_frame_size(self):
        small = scene(0)
        big = np.kron(small, np.ones((2, 2, 1), np.uint8))
        assert colour_change(colour_signature(small), colour_signature(big)) < 0.05


class TestColourChange:
    def test_same_frame_is_zero(self):
        sig = colour_signature(scene(1))
        assert colour_change(sig, sig) == pytest.approx(0.0, abs=1e-6)

    def test_noise_and_small_motion_stay_small(self):
        frame = scene(2)
        rng = np.random.default_rng(0)
        moved = np.roll(frame, 3, axis=1).astype(np.int16) + rng.integers(-6, 7, frame.shape)
        change = colour_change(colour_signature(frame), colour_signature(np.clip(moved, 0, 255).astype(np.uint8)))
        assert change < 0.2

    def test_another_scene_is_a_cut(self):
        blue_studio, warm_room = scene(3, (0.3, 0.5, 1.0)), scene(4, (1.0, 0.6, 0.3))
        assert colour_change(colour_signature(blue_studio), colour_signature(warm_room)) > 0.6
