"""displacement.exr + displacement.png: values in cm, dilation beyond the islands, the 16-bit quantisation
(scale / offset in the PNG's text and in the returned dict), read back with OpenCV, Pillow and OpenEXR."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from export_meshes import texel_uv
from fitter.export.displacement import (decode_png16, encode_png16, png16_scale_offset, read_displacement_png,
                                        write_displacement)
from fitter.export.exr import read_exr
from fitter.export.png import read_png_text, write_png


def test_displacement_exr_png16_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    S = 64
    u, v = texel_uv(S)
    disp = (0.05 * np.sin(6 * u) + 0.02 * rng.normal(size=(S, S)) - 0.01).astype(np.float32)
    mask = (u - 0.5) ** 2 + (v - 0.5) ** 2 < 0.16
    info = write_displacement(tmp_path, disp, mask)
    assert info["units"] == "cm" and sorted(info["files"]) == ["displacement.exr", "displacement.png"]
    exr = read_exr(tmp_path / "displacement.exr")
    d = exr.array()
    assert exr.header["units"] == "cm" and "vertex normals of mesh.obj" in exr.header["meaning"]
    assert exr.header["scale"] == 1.0 and exr.header["offset"] == 0.0 and "M_Face" in exr.header["uvLayout"]
    assert np.array_equal(d[mask], disp[mask])  # exact inside the islands
    ring = ~mask & (np.abs(d) > 0)  # dilated values just outside, zero far away
    assert ring.sum() > 0 and d[0, 0] == 0.0

    # PNG: 16-bit, decoded by OpenCV (independent of our writer), scale/offset from PIL's tEXt reader.
    codes = cv2.imread(str(tmp_path / "displacement.png"), cv2.IMREAD_UNCHANGED)
    assert codes.dtype == np.uint16 and codes.shape == (S, S)
    text = Image.open(tmp_path / "displacement.png").text
    assert text["facefit:units"] == "cm"
    scale, offset = float(text["facefit:scale"]), float(text["facefit:offset"])
    assert (scale, offset) == (info["scale"], info["offset"])
    assert offset <= min(d.min(), 0) and offset + scale >= max(d.max(), 0)
    values = codes / 65535.0 * scale + offset
    assert np.abs(values - d).max() <= 0.5 * scale / 65535 + 1e-9
    values2, text2 = read_displacement_png(tmp_path / "displacement.png")
    assert np.allclose(values2, values) and text2 == read_png_text(tmp_path / "displacement.png")
    assert info["quantisation_cm"] == scale / 65535 and info["size"] == [S, S]


def test_zero_displacement_png_is_well_defined(tmp_path):
    info = write_displacement(tmp_path, np.zeros((8, 8)), None)
    assert info["scale"] > 0 and info["offset"] == 0.0
    values, _ = read_displacement_png(tmp_path / "displacement.png")
    assert np.all(values == 0)


def test_png16_quantisation():
    values = np.array([-0.3, -0.1, 0.0, 0.2, 0.45])
    scale, offset = png16_scale_offset(values)
    assert (scale, offset) == (0.75, -0.3)
    codes = encode_png16(values, scale, offset)
    assert codes.dtype == np.uint16 and codes[0] == 0 and codes[-1] == 65535
    assert np.abs(decode_png16(codes, scale, offset) - values).max() <= 0.5 * scale / 65535
    assert png16_scale_offset(np.array([0.1, 0.2])) == (0.2, 0.0)  # 0 is always in range
    assert png16_scale_offset(np.array([np.nan, -0.5])) == (0.5, -0.5)  # non-finite values are ignored
    assert np.array_equal(encode_png16(np.array([-9.0, 9.0]), 1.0, 0.0), [0, 65535])  # clipped


def test_displacement_png_needs_its_text(tmp_path):
    path = write_png(tmp_path / "plain.png", np.zeros((2, 2), np.uint16))
    with pytest.raises(ValueError, match="facefit:scale"):
        read_displacement_png(path)
