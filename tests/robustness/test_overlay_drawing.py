"""The overlay draws on any array layout (a strided or reordered photo once failed every transparent PNG)."""
from __future__ import annotations

import numpy as np

from fitter.export.overlay import draw_landmarks, shaded_overlay


def test_dots_land_on_a_non_contiguous_canvas():
    base = np.zeros((40, 50, 4), np.uint8)
    canvas = base[:, :, [2, 1, 0]][:, :, :]  # reordered copy: not C-ordered like OpenCV wants
    canvas = np.asfortranarray(canvas)
    assert not canvas.flags["C_CONTIGUOUS"]
    drawn = draw_landmarks(canvas, np.array([[10.5, 20.5], [np.nan, 3.0]]), (255, 0, 0), 1.0, radius=2)
    assert drawn[20, 10].tolist() == [255, 0, 0] and canvas[20, 10].tolist() == [255, 0, 0]
    strided = np.zeros((40, 100, 3), np.uint8)[:, ::2]  # a view: drawn through to the parent
    draw_landmarks(strided, np.array([[5.5, 5.5]]), (0, 255, 0), 1.0)
    assert strided[5, 5].tolist() == [0, 255, 0]


def test_shaded_overlay_accepts_any_layout():
    h, w = 30, 40
    photo = np.asfortranarray(np.full((h, w, 3), 100, np.uint8))
    render = np.full((h, w, 3), 0.5, np.float32)[:, :, ::-1]
    mask = np.zeros((h, w), bool)
    mask[10:20, 10:20] = True
    out = shaded_overlay(photo, render, mask, np.array([[5.5, 5.5]]), np.array([[30.5, 25.5]]))
    assert out.flags["C_CONTIGUOUS"] and out.dtype == np.uint8 and out.shape == (h, w, 3)
    assert out[5, 5, 1] > out[5, 5, 0] and out[25, 30, 0] > out[25, 30, 1]  # green observed, red fitted
    assert out[0, 0].tolist() == [100, 100, 100] and out[15, 15, 0] != 100  # render blended inside the mask
