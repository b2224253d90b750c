"""A small, dependency-free OpenEXR writer (and reader) for 32-bit float scanline images.

Written from the OpenEXR file-layout document ("The OpenEXR File Layout", openexr.com). What is written:

- magic number 20000630 (bytes ``76 2f 31 01``), version field 2 (single-part scanline file; bit 10, "long
  names", is set only when an attribute name is longer than 31 bytes);
- the header: attributes ``name\\0 type\\0 size(int32) value``, sorted by name as the OpenEXR library does,
  ended by a zero byte. Always written: ``channels`` (chlist), ``compression``, ``dataWindow`` and
  ``displayWindow`` (box2i, (0, 0)-(W-1, H-1)), ``lineOrder`` (INCREASING_Y), ``pixelAspectRatio`` (1),
  ``screenWindowCenter`` (0, 0), ``screenWindowWidth`` (1); plus any custom ``string`` / ``float`` /
  ``int`` / ``double`` attributes;
- the offset table: one uint64 file offset per block of scanlines;
- the blocks: ``y(int32) size(int32) data``; within a block, line after line, within a line, channel after
  channel in alphabetical order (``B G R``, ``A B G R``), each channel's W little-endian float32 samples.

Compression: ``"none"`` (1 line per block), ``"zips"`` (1 line) and ``"zip"`` (16 lines per block): the
block's bytes are split into even and odd bytes (interleave), delta-coded (predictor: ``d[i] = b[i] - b[i-1]
+ 128`` mod 256) and deflated with zlib. A block whose compressed data would not be smaller is stored raw,
as the spec allows (readers compare the size with the uncompressed size).

Channel naming: a 2-D image is one channel ``Y`` (luminance: OpenCV, Blender, Nuke... read it as grey);
(H, W, 3) is ``R G B`` and (H, W, 4) ``R G B A``; other layouts need explicit ``channels`` names.
Row 0 of the array is the top row of the image (y = 0 in the data window), as in every image format.

The reader (:func:`read_exr`) handles what the writer produces plus HALF / UINT channels and RLE-free
single-part scanline files with NO, ZIPS or ZIP compression — enough for tests and for reading back facefit's
own maps; it is not a general OpenEXR reader (no tiles, multipart, deep data, PIZ/PXR24/B44/DWA).
"""
from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = 20000630
VERSION = 2
LONG_NAMES_FLAG = 0x400

COMPRESSION = {"none": 0, "rle": 1, "zips": 2, "zip": 3, "piz": 4, "pxr24": 5, "b44": 6, "b44a": 7,
               "dwaa": 8, "dwab": 9}
_LINES_PER_BLOCK = {"none": 1, "zips": 1, "zip": 16}
_PIXEL_TYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}  # UINT, HALF, FLOAT


# ---------------------------------------------------------------------------------------------- writing


def _attr(name: str, type_name: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + type_name.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _custom_attr(name: str, value) -> tuple[str, bytes]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        kind, value = value
    elif isinstance(value, (bool, np.bool_)):
        raise TypeError(f"EXR attribute {name!r}: booleans are not an EXR attribute type")
    elif isinstance(value, (str, bytes)):
        kind = "string"
    elif isinstance(value, (int, np.integer)):
        kind = "int"
    elif isinstance(value, (float, np.floating)):
        kind = "float"
    else:
        raise TypeError(f"EXR attribute {name!r}: unsupported value {value!r} (str, int, float or (type, value))")
    if kind == "string":
        return kind, value if isinstance(value, bytes) else str(value).encode("utf-8")
    if kind == "float":
        return kind, struct.pack("<f", float(value))
    if kind == "double":
        return kind, struct.pack("<d", float(value))
    if kind == "int":
        return kind, struct.pack("<i", int(value))
    raise ValueError(f"EXR attribute {name!r}: unsupported type {kind!r} (string, float, double, int)")


def _chlist(names: list[str], pixel_type: int = 2) -> bytes:
    out = b""
    for name in names:
        out += name.encode() + b"\0" + struct.pack("<iB3xii", pixel_type, 0, 1, 1)
    return out + b"\0"


def _default_channels(n: int) -> list[str]:
    if n == 1:
        return ["Y"]
    if n == 3:
        return ["R", "G", "B"]
    if n == 4:
        return ["R", "G", "B", "A"]
    raise ValueError(f"{n} channels: pass channel names explicitly")


def zip_compress(raw: bytes, level: int = 6) -> bytes:
    """OpenEXR ZIP/ZIPS block compression: interleave even/odd bytes, delta predictor, zlib."""
    data = np.frombuffer(raw, np.uint8)
    reordered = np.concatenate([data[0::2], data[1::2]])
    if len(reordered) > 1:
        delta = np.empty_like(reordered)
        delta[0] = reordered[0]
        delta[1:] = (reordered[1:].astype(np.int16) - reordered[:-1].astype(np.int16) + 128).astype(np.uint8)
        reordered = delta
    return zlib.compress(reordered.tobytes(), level)


def zip_decompress(data: bytes, raw_size: int) -> bytes:
    """Inverse of :func:`zip_compress`."""
    t = np.frombuffer(zlib.decompress(data), np.uint8)
    if len(t) != raw_size:
        raise ValueError(f"EXR ZIP block: {len(t)} bytes after inflating, expected {raw_size}")
    t = (np.cumsum(t.astype(np.int64) - 128) + 128) % 256 if len(t) else t  # undo the predictor
    t = t.astype(np.uint8)
    half = (raw_size + 1) // 2
    out = np.empty(raw_size, np.uint8)
    out[0::2] = t[:half]
    out[1::2] = t[half:]
    return out.tobytes()


def encode_exr(image: np.ndarray, compression: str = "zip", attributes: dict | None = None,
               channels: list[str] | None = None) -> bytes:
    """The bytes of a single-part scanline OpenEXR file holding ``image`` as 32-bit float channels.

    image: (H, W) -> channel ``Y``; (H, W, 3) -> ``R G B``; (H, W, 4) -> ``R G B A``; (H, W, C) with
    ``channels`` names. Values are converted to float32 (NaN/inf are stored as they are).
    compression: ``"zip"`` (default, 16 lines per block), ``"zips"`` or ``"none"``.
    attributes: extra header attributes, ``name -> str | int | float`` (stored as ``string`` / ``int`` /
    32-bit ``float``) or ``name -> (type, value)`` with type one of string, float, double, int.
    """
    compression = compression.lower()
    if compression not in _LINES_PER_BLOCK:
        raise ValueError(f"compression {compression!r}: choose one of {sorted(_LINES_PER_BLOCK)}")
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must be (H, W) or (H, W, C), got {np.shape(image)}")
    H, W, C = img.shape
    names = list(channels) if channels is not None else _default_channels(C)
    if len(names) != C or len(set(names)) != C:
        raise ValueError(f"{C} channels need {C} distinct names, got {names}")
    order = sorted(range(C), key=lambda k: names[k].encode())  # chlist and pixel data are alphabetical
    names_sorted = [names[k] for k in order]

    header = {
        "channels": ("chlist", _chlist(names_sorted)),
        "compression": ("compression", bytes([COMPRESSION[compression]])),
        "dataWindow": ("box2i", struct.pack("<4i", 0, 0, W - 1, H - 1)),
        "displayWindow": ("box2i", struct.pack("<4i", 0, 0, W - 1, H - 1)),
        "lineOrder": ("lineOrder", b"\0"),
        "pixelAspectRatio": ("float", struct.pack("<f", 1.0)),
        "screenWindowCenter": ("v2f", struct.pack("<2f", 0.0, 0.0)),
        "screenWindowWidth": ("float", struct.pack("<f", 1.0)),
    }
    for name, value in (attributes or {}).items():
        if name in header:
            raise ValueError(f"EXR attribute {name!r} is a required attribute and cannot be overridden")
        if not name or len(name.encode()) > 255 or "\0" in name:
            raise ValueError(f"EXR attribute name {name!r}: 1 to 255 bytes, no NUL")
        header[name] = _custom_attr(name, value)
    long_names = any(len(n.encode()) > 31 for n in list(header) + names)
    out = bytearray(struct.pack("<ii", MAGIC, VERSION | (LONG_NAMES_FLAG if long_names else 0)))
    for name in sorted(header, key=str.encode):
        out += _attr(name, *header[name])
    out += b"\0"

    # Pixel data: per line, per channel (alphabetical), W little-endian float32 -> (H, C, W).
    planar = np.ascontiguousarray(img[:, :, order].transpose(0, 2, 1)).astype("<f4")
    lines = _LINES_PER_BLOCK[compression]
    starts = range(0, H, lines)
    table_at = len(out)
    out += b"\0" * (8 * len(starts))
    offsets = []
    for y in starts:
        raw = planar[y:y + lines].tobytes()
        data = raw
        if compression != "none":
            packed = zip_compress(raw)
            if len(packed) < len(raw):
                data = packed
        offsets.append(len(out))
        out += struct.pack("<ii", y, len(data)) + data
    out[table_at:table_at + 8 * len(offsets)] = struct.pack(f"<{len(offsets)}Q", *offsets)
    return bytes(out)


def _read_umask() -> int:
    mask = os.umask(0o022)  # read once at import: os.umask can only be read by setting it
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary sibling and rename it into place (the file appears complete or not)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_exr(path: Path, image: np.ndarray, compression: str = "zip", attributes: dict | None = None,
              channels: list[str] | None = None) -> Path:
    """Write ``image`` as a 32-bit float OpenEXR file, atomically (see :func:`encode_exr`)."""
    return atomic_write_bytes(path, encode_exr(image, compression, attributes, channels))


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class ExrImage:
    """What :func:`read_exr` returns: channels by name ((H, W) arrays), the parsed header, and the raw
    header bytes of each attribute (name -> (type, bytes))."""

    channels: dict[str, np.ndarray]
    header: dict = field(default_factory=dict)
    raw_attributes: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def array(self) -> np.ndarray:
        """(H, W) for a lone channel, (H, W, 3) for R G B, (H, W, 4) for R G B A, else channels in name order."""
        names = list(self.channels)
        if len(names) == 1:
            return self.channels[names[0]]
        for wanted in (["R", "G", "B", "A"], ["R", "G", "B"]):
            if sorted(names) == sorted(wanted):
                return np.stack([self.channels[n] for n in wanted], -1)
        return np.stack([self.channels[n] for n in sorted(names)], -1)


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode("utf-8", "replace"), end + 1


def _parse_value(kind: str, value: bytes):
    if kind == "chlist":
        out, pos = [], 0
        while value[pos] != 0:
            name, pos = _cstring(value, pos)
            ptype, linear, xs, ys = struct.unpack_from("<iB3xii", value, pos)
            pos += 16
            out.append((name, ptype, linear, xs, ys))
        return out
    if kind in ("compression", "lineOrder"):
        return value[0]
    if kind == "box2i":
        return struct.unpack("<4i", value)
    if kind == "box2f":
        return struct.unpack("<4f", value)
    if kind in ("v2f",):
        return struct.unpack("<2f", value)
    if kind in ("v2i",):
        return struct.unpack("<2i", value)
    if kind == "float":
        return struct.unpack("<f", value)[0]
    if kind == "double":
        return struct.unpack("<d", value)[0]
    if kind == "int":
        return struct.unpack("<i", value)[0]
    if kind == "string":
        return value.decode("utf-8", "replace")
    return value


def parse_header(buf: bytes) -> tuple[dict, dict, int, int]:
    """(parsed attributes, raw attributes, version field, offset of the first byte after the header)."""
    magic, version = struct.unpack_from("<ii", buf, 0)
    if magic != MAGIC:
        raise ValueError("not an OpenEXR file (bad magic number)")
    if version & 0xFF != 2:
        raise ValueError(f"unsupported OpenEXR version {version & 0xFF}")
    if version & 0x200 or version & 0x800 or version & 0x1000:
        raise ValueError("tiled, deep or multi-part OpenEXR files are not supported by this reader")
    pos = 8
    parsed, raw = {}, {}
    while buf[pos] != 0:
        name, pos = _cstring(buf, pos)
        kind, pos = _cstring(buf, pos)
        (size,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        value = buf[pos:pos + size]
        pos += size
        raw[name] = (kind, value)
        parsed[name] = _parse_value(kind, value)
    return parsed, raw, version, pos + 1


def read_exr(path: Path | bytes) -> ExrImage:
    """Read a single-part scanline OpenEXR file (NO, ZIPS or ZIP compression; FLOAT, HALF or UINT channels)."""
    buf = path if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
    header, raw_attrs, _, pos = parse_header(buf)
    comp = header["compression"]
    names = {v: k for k, v in COMPRESSION.items()}
    comp_name = names.get(comp, str(comp))
    if comp_name not in _LINES_PER_BLOCK:
        raise ValueError(f"compression {comp_name!r} is not supported by this reader")
    x0, y0, x1, y1 = header["dataWindow"]
    W, H = x1 - x0 + 1, y1 - y0 + 1
    chans = header["channels"]
    if any(xs != 1 or ys != 1 for _, _, _, xs, ys in chans):
        raise ValueError("subsampled channels are not supported by this reader")
    dtypes = [_PIXEL_TYPES[p] for _, p, _, _, _ in chans]
    line_bytes = sum(W * d.itemsize for d in dtypes)
    lines = _LINES_PER_BLOCK[comp_name]
    n_blocks = -(-H // lines)
    offsets = struct.unpack_from(f"<{n_blocks}Q", buf, pos)
    out = {name: np.empty((H, W), d.newbyteorder("=")) for (name, *_), d in zip(chans, dtypes)}
    for off in offsets:
        y, size = struct.unpack_from("<ii", buf, off)
        data = buf[off + 8:off + 8 + size]
        n = min(lines, y1 - y + 1)
        raw_size = n * line_bytes
        if size < raw_size:
            data = zip_decompress(data, raw_size)
        elif size != raw_size:
            raise ValueError(f"EXR block at line {y}: {size} bytes, expected at most {raw_size}")
        at = 0
        for k in range(n):
            for (name, *_), d in zip(chans, dtypes):
                nb = W * d.itemsize
                out[name][y - y0 + k] = np.frombuffer(data, d, W, at)
                at += nb
    return ExrImage(out, header, raw_attrs)
