"""PNG files with metadata, through Pillow: 8-bit grey / RGB / RGBA, 16-bit grey, and 16-bit RGB / RGBA.

Text metadata goes into ``tEXt`` chunks (Latin-1 keywords of 1 to 79 bytes, e.g. ``facefit:scale``);
``srgb=True`` adds an ``sRGB`` chunk (colour data; without it, viewers treat the samples as they are).

Pillow cannot hold 16-bit colour images, so those pixels are encoded by OpenCV and the metadata chunks are
added with Pillow's own PNG chunk reader and writer.
"""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

from ..common.files import write_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_KEYWORD_BYTES = 79  # the PNG specification's limit for a tEXt keyword
SRGB_PERCEPTUAL = b"\0"  # the sRGB chunk's one byte: rendering intent 0 (perceptual)


def _metadata_chunks(text: dict[str, str] | None, srgb: bool) -> list[tuple[bytes, bytes]]:
    chunks = [(b"sRGB", SRGB_PERCEPTUAL)] if srgb else []
    for key, value in (text or {}).items():
        keyword = key.encode("latin-1")
        if not 1 <= len(keyword) <= MAX_KEYWORD_BYTES or b"\0" in keyword:
            raise ValueError(f"PNG text keyword {key!r}: 1 to {MAX_KEYWORD_BYTES} Latin-1 bytes, no NUL")
        chunks.append((b"tEXt", keyword + b"\0" + str(value).encode("latin-1", "replace")))
    return chunks


def _with_chunks(png: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """``png`` with ``chunks`` inserted right after its header chunk (before any pixel data)."""
    stream = PngImagePlugin.ChunkStream(io.BytesIO(png[len(PNG_SIGNATURE):]))
    out = io.BytesIO()
    out.write(PNG_SIGNATURE)
    while True:
        kind, _, length = stream.read()
        data = stream.fp.read(length)
        stream.crc(kind, data)
        PngImagePlugin.putchunk(out, kind, data)
        if kind == b"IHDR":
            for extra_kind, extra in chunks:
                PngImagePlugin.putchunk(out, extra_kind, extra)
        if kind == b"IEND":
            return out.getvalue()


def encode_png(image: np.ndarray, text: dict[str, str] | None = None, srgb: bool = False) -> bytes:
    """PNG bytes of a uint8 / uint16 image (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, with ``text`` as
    tEXt chunks and, with ``srgb``, an sRGB chunk."""
    img = np.asarray(image)
    if img.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG needs uint8 or uint16 samples, got {img.dtype}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
        raise ValueError(f"PNG image must be (H, W), (H, W, 3) or (H, W, 4), got {img.shape}")
    chunks = _metadata_chunks(text, srgb)
    if img.dtype == np.uint16 and img.ndim == 3:
        order = [2, 1, 0, 3][:img.shape[2]]  # OpenCV stores BGR(A)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., order]))
        if not ok:
            raise OSError("OpenCV could not encode the 16-bit PNG")
        return _with_chunks(buf.tobytes(), chunks)
    info = PngImagePlugin.PngInfo()
    for kind, data in chunks:
        info.add(kind, data)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def write_png(path: Path, image: np.ndarray, text: dict[str, str] | None = None, srgb: bool = False) -> Path:
    """:func:`encode_png`, written atomically."""
    return write_bytes(path, encode_png(image, text, srgb))


def read_png_text(path: Path | bytes) -> dict[str, str]:
    """The text chunks of a PNG file (path or bytes) as a dict, e.g. ``facefit:scale`` / ``facefit:offset``."""
    source = io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else Path(path)
    with Image.open(source) as im:
        if im.format != "PNG":
            raise ValueError(f"{path if not isinstance(path, (bytes, bytearray)) else 'data'}: not a PNG file")
        return dict(im.text)

