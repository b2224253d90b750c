"""PNG files through Pillow (8-bit, 16-bit grey) and OpenCV + Pillow's chunk writer (16-bit colour): samples
and text metadata read back by Pillow and OpenCV, the sRGB chunk, and bad input."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fitter.export.png import encode_png, read_png_text, write_png

TEXT = {"facefit:scale": "0.125", "facefit:meaning": "offset along the normals (p' = p + d * n)",
        "Software": "facefit test"}


def _cv2_read(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return img[..., [2, 1, 0, 3][:img.shape[2]]] if img.ndim == 3 else img


@pytest.mark.parametrize("shape,dtype", [((5, 7), np.uint8), ((5, 7, 3), np.uint8), ((5, 7, 4), np.uint8),
                                         ((5, 7), np.uint16), ((5, 7, 3), np.uint16), ((5, 7, 4), np.uint16)])
def test_png_round_trip_samples_and_text(shape, dtype):
    top = np.iinfo(dtype).max
    img = np.random.default_rng(0).integers(0, top + 1, shape).astype(dtype)
    img.flat[0], img.flat[1] = 0, top
    data = encode_png(img, TEXT)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(_cv2_read(data), img)  # OpenCV decodes every layout written
    with Image.open(io.BytesIO(data)) as im:
        assert im.text == TEXT and "srgb" not in im.info
        assert im.size == (7, 5)
        if not (dtype == np.uint16 and len(shape) == 3):  # Pillow holds 16-bit colour only as 8-bit
            assert np.array_equal(np.asarray(im), img)
    assert read_png_text(data) == TEXT


def test_png_srgb_chunk_and_atomic_file(tmp_path):
    img = np.full((4, 4, 3), 200, np.uint8)
    path = write_png(tmp_path / "a.png", img, {"k": "v"}, srgb=True)
    with Image.open(path) as im:
        assert im.info["srgb"] == 0 and im.text == {"k": "v"}  # sRGB chunk, rendering intent 0
    with open(path, "rb") as f:
        assert b"sRGB" in f.read(100)  # before the pixel data, where viewers look for it
    assert read_png_text(path) == {"k": "v"}
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # written through a temporary file, renamed


def test_png_bad_input():
    with pytest.raises(TypeError, match="uint8 or uint16"):
        encode_png(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="must be"):
        encode_png(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="keyword"):
        encode_png(np.zeros((2, 2), np.uint8), {"k" * 80: "too long"})
    with pytest.raises(ValueError, match="keyword"):
        encode_png(np.zeros((2, 2), np.uint8), {"": "empty"})
    gif = io.BytesIO()
    Image.new("L", (2, 2)).save(gif, "GIF")
    with pytest.raises(ValueError, match="not a PNG"):
        read_png_text(gif.getvalue())
