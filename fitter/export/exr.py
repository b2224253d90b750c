"""OpenEXR files of 32-bit float images with custom header attributes, through the OpenEXR package.

Channel naming: a 2-D image is one channel ``Y`` (luminance: OpenCV, Blender, Nuke, Houdini and Maya read it
as grey); (H, W, 3) is ``R G B`` and (H, W, 4) ``R G B A``; other layouts need explicit ``channels`` names.
Row 0 of the array is the top row of the image (y = 0 in the data window), as in every image format.
Custom attributes: ``str`` -> ``string``, ``int`` -> ``int``, ``float`` -> 32-bit ``float``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import OpenEXR

from ..common.files import write_bytes

COMPRESSION = {"none": OpenEXR.NO_COMPRESSION, "rle": OpenEXR.RLE_COMPRESSION, "zips": OpenEXR.ZIPS_COMPRESSION,
               "zip": OpenEXR.ZIP_COMPRESSION, "piz": OpenEXR.PIZ_COMPRESSION, "pxr24": OpenEXR.PXR24_COMPRESSION,
               "b44": OpenEXR.B44_COMPRESSION, "b44a": OpenEXR.B44A_COMPRESSION, "dwaa": OpenEXR.DWAA_COMPRESSION,
               "dwab": OpenEXR.DWAB_COMPRESSION}
# Header attributes the library writes itself; a custom attribute of the same name would corrupt the file.
REQUIRED_ATTRIBUTES = ("channels", "compression", "dataWindow", "displayWindow", "lineOrder", "pixelAspectRatio",
                       "screenWindowCenter", "screenWindowWidth", "type")
DEFAULT_CHANNELS = {1: ["Y"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}


def _attribute(name: str, value):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"EXR attribute {name!r}: booleans are not an EXR attribute type")
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    raise TypeError(f"EXR attribute {name!r}: unsupported value {value!r} (str, int or float)")


def encode_exr(image: np.ndarray, compression: str = "zip", attributes: dict | None = None,
               channels: list[str] | None = None) -> bytes:
    """The bytes of a single-part scanline OpenEXR file holding ``image`` as 32-bit float channels.

    image: (H, W) -> channel ``Y``; (H, W, 3) -> ``R G B``; (H, W, 4) -> ``R G B A``; (H, W, C) with
    ``channels`` names. Values are converted to float32 (NaN / inf are stored as they are).
    compression: one of :data:`COMPRESSION` (default ``"zip"``, lossless). attributes: extra header
    attributes, ``name -> str | int | float``.
    """
    key = compression.lower()
    if key not in COMPRESSION:
        raise ValueError(f"EXR compression {compression!r}: choose one of {sorted(COMPRESSION)}")
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"EXR image must be (H, W) or (H, W, C), got {np.shape(image)}")
    C = img.shape[2]
    names = list(channels) if channels is not None else DEFAULT_CHANNELS.get(C)
    if names is None or len(names) != C or len(set(names)) != C:
        raise ValueError(f"{C} channels need {C} distinct names, got {names} (pass channels=[...])")
    header = {"compression": COMPRESSION[key], "type": OpenEXR.scanlineimage}
    for name, value in (attributes or {}).items():
        if name in REQUIRED_ATTRIBUTES:
            raise ValueError(f"EXR attribute {name!r} is a required attribute and cannot be overridden")
        if not name or len(name.encode()) > 255 or "\0" in name:
            raise ValueError(f"EXR attribute name {name!r}: 1 to 255 bytes, no NUL")
        header[name] = _attribute(name, value)
    pixels = {n: np.ascontiguousarray(img[..., k]) for k, n in enumerate(names)}
    out = io.BytesIO()
    with OpenEXR.File(header, pixels) as f:
        f.write(out)
    return out.getvalue()


def write_exr(path: Path, image: np.ndarray, compression: str = "zip", attributes: dict | None = None,
              channels: list[str] | None = None) -> Path:
    """Write ``image`` as a 32-bit float OpenEXR file, atomically (see :func:`encode_exr`)."""
    return write_bytes(path, encode_exr(image, compression, attributes, channels))


@dataclass
class ExrImage:
    """What :func:`read_exr` returns: channels by name ((H, W) arrays) and the header (name -> value, as the
    OpenEXR package gives it; ``compression`` is its name, e.g. ``"zip"``)."""

    channels: dict[str, np.ndarray]
    header: dict = field(default_factory=dict)

    def array(self) -> np.ndarray:
        """(H, W) for a lone channel, (H, W, 3) for R G B, (H, W, 4) for R G B A, else channels in name order."""
        names = list(self.channels)
        if len(names) == 1:
            return self.channels[names[0]]
        for wanted in (["R", "G", "B", "A"], ["R", "G", "B"]):
            if sorted(names) == sorted(wanted):
                return np.stack([self.channels[n] for n in wanted], -1)
        return np.stack([self.channels[n] for n in sorted(names)], -1)


def read_exr(path: Path | bytes) -> ExrImage:
    """Read an OpenEXR file (path or bytes): every channel of its first part, and its header."""
    source = io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else str(path)
    names = {v: k for k, v in COMPRESSION.items()}
    with OpenEXR.File(source, separate_channels=True) as f:
        header = dict(f.header())
        channels = {name: np.array(ch.pixels) for name, ch in f.channels().items()}
    header["compression"] = names.get(header.get("compression"), str(header.get("compression")))
    return ExrImage(channels, header)
