"""albedo.png: linear albedo -> 8-bit sRGB with an sRGB chunk, islands dilated, background their mean."""
from __future__ import annotations

import numpy as np
from PIL import Image

from fitter.common.colour import linear_to_srgb, srgb_to_linear
from fitter.export.albedo_map import albedo_map_from_vertices, write_albedo
from fitter.export.maps import export_maps


def test_albedo_srgb_png(tmp_path):
    S = 32
    lin = np.stack([np.full((S, S), x) for x in (0.0, 0.2, 1.0)])
    mask = np.zeros((S, S), bool)
    mask[8:24, 8:24] = True
    path = write_albedo(tmp_path, lin, mask)
    img = np.asarray(Image.open(path))
    assert img.dtype == np.uint8 and img.shape == (S, S, 3)
    assert tuple(img[16, 16]) == (0, round(255 * float(linear_to_srgb(0.2))), 255) == (0, 124, 255)
    assert tuple(img[0, 0]) == (0, 124, 255)  # background: the islands' mean colour
    assert np.allclose(srgb_to_linear(linear_to_srgb(np.linspace(0, 1, 11))), np.linspace(0, 1, 11))
    with open(path, "rb") as f:
        assert b"sRGB" in f.read(100)
    assert Image.open(path).text["facefit:colorspace"].startswith("sRGB (converted")


def test_albedo_already_srgb_and_dilation(tmp_path):
    S = 16
    a = np.zeros((3, S, S))
    a[:, 4:8, 4:8] = 0.25
    a[:, 8:12, 4:8] = 0.75
    mask = a[0] > 0
    img = np.asarray(Image.open(write_albedo(tmp_path, a, mask, linear=False, dilate_px=1)))
    assert np.all(img[4:8, 4:8] == 64) and np.all(img[8:12, 4:8] == 191)  # round(0.25 * 255), no curve
    assert img[4, 3, 0] == 64 and img[12, 4, 0] == 191  # one ring grown from each island
    assert img[0, 0, 0] == 128  # beyond the ring: the islands' mean colour, 0.5


def test_albedo_from_vertex_colours(ict, tmp_path):
    colours = np.tile([0.2, 0.4, 0.6], (ict.num_vertices, 1))
    amap, mask = albedo_map_from_vertices(colours, ict.topology, 64)
    assert amap.shape == (3, 64, 64) and mask.mean() > 0.5
    assert np.allclose(amap[:, mask].T, [0.2, 0.4, 0.6]) and np.all(amap[:, ~mask] == 0)
    export_maps(tmp_path, ict.mean.numpy(), ict.topology, albedo=colours, albedo_size=64)
    img = np.asarray(Image.open(tmp_path / "albedo.png"))
    assert img.shape == (64, 64, 3) and np.all(img == np.round(255 * linear_to_srgb(np.array([0.2, 0.4, 0.6]))))
