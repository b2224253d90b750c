"""Reading one image file into the pixels the rest of facefit works on.

Rules (see docs/observations.md):
- pixels are decoded with OpenCV at their full bit depth, alpha kept; Pillow only reads the EXIF block (and
  decodes the rare file OpenCV cannot);
- the EXIF orientation tag is applied, so every array, landmark and size refers to the upright image;
- grayscale becomes three equal channels;
- transparency is composited over mid grey (0.5) and the alpha kept in ``LoadedImage.alpha``;
- 16-bit and float sources keep a float32 version with their full precision (``rgb_float``); ``rgb`` is
  always 8-bit, for detectors and display;
- anything that cannot be used raises :class:`fitter.io.ImageError`.
"""
from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import ImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ALPHA_BACKGROUND = 0.5  # grey that transparent pixels are composited over (fraction of full scale)

_EXIF_ORIENTATION = 0x0112
# 35 mm-equivalent focal lengths a camera writes: fisheye and phone ultra-wide lenses ~8-13 mm, superzooms up to
# ~1200 mm; outside that a tag is broken (an editor's 1 mm gave a 179-deg field of view, a fit 3e6 px off)
PLAUSIBLE_FOCAL_35MM = (8.0, 1200.0)
_EXIF_IFD = 0x8769
_EXIF_FOCAL_LENGTH = 0x920A
_EXIF_FOCAL_35MM = 0xA405
_EXIF_PIXEL_X = 0xA002  # the width and height of the image the camera wrote (the frame its focal length is for)
_EXIF_PIXEL_Y = 0xA003
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
_PIL_LOCK = threading.Lock()


@dataclass(eq=False)
class LoadedImage:
    """One decoded, EXIF-oriented image (or video frame).

    ``rgb`` is ``(H, W, 3)`` uint8; ``rgb_float`` is ``(H, W, 3)`` float32 in [0, 1] at the source's full bit
    depth (computed on first access). Pixel coordinates everywhere refer to this upright, full-resolution
    image, with the origin at the top-left pixel's corner.
    """

    path: Path
    rgb: np.ndarray
    content_hash: str  # sha256 hex of the file bytes (of the pixels for frames and arrays)
    exif_focal_35mm: float | None = None  # EXIF FocalLengthIn35mmFilm (mm), None when absent or 0
    exif_focal_mm: float | None = None  # EXIF FocalLength (mm, real lens), None when absent
    bit_depth: int = 8  # bits per channel of the source: 8, 16 or 32 (float)
    alpha: np.ndarray | None = None  # (H, W) float32 in [0, 1] when the source had transparency
    orientation: int = 1  # the EXIF orientation (1-8) that was applied to the stored pixels
    frame_index: int | None = None  # for video frames: the frame's index in the video
    warnings: list[str] = field(default_factory=list)
    _high: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) source pixels (>8-bit or alpha)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def source(self) -> str:
        """The file path, with ``#frame=N`` appended for video frames."""
        return str(self.path) if self.frame_index is None else f"{self.path}#frame={self.frame_index}"

    @cached_property
    def rgb_float(self) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1], alpha-composited like ``rgb`` but at the source's full precision."""
        if self._high is None:
            return self.rgb.astype(np.float32) * np.float32(1.0 / 255.0)
        pixels = self._high
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
        out = pixels.astype(np.float32) * np.float32(1.0 / scale)
        np.clip(out, 0.0, 1.0, out=out)
        if self.alpha is not None:
            a = self.alpha[..., None]
            out = out * a + np.float32(ALPHA_BACKGROUND) * (1.0 - a)
        return out.astype(np.float32, copy=False)

    @classmethod
    def from_array(
        cls,
        pixels: np.ndarray,
        path: str | Path = "<array>",
        frame_index: int | None = None,
        exif_focal_35mm: float | None = None,
    ) -> "LoadedImage":
        """Wrap an in-memory RGB(A)/gray array (uint8, uint16 or float in [0, 1]), e.g. a video frame."""
        pixels = np.asarray(pixels)
        digest = hashlib.sha256()
        digest.update(f"{pixels.dtype.str}{pixels.shape}".encode())
        digest.update(np.ascontiguousarray(pixels).tobytes())
        img = _from_pixels(pixels, Path(path), digest.hexdigest())
        img.frame_index = frame_index
        img.exif_focal_35mm = exif_focal_35mm
        return img


# -- public entry point --------------------------------------------------------------------------------
def load_image(path: str | Path) -> LoadedImage:
    """Read an image file: EXIF-oriented, RGB, full bit depth kept, content-hashed.

    Raises :class:`ImageError` (never another exception type) when the file is missing, unreadable,
    truncated, corrupt or not an image.
    """
    path = Path(path)
    data = _read_bytes(path)
    content_hash = hashlib.sha256(data).hexdigest()
    warns: list[str] = []
    _check_truncation(path, data)

    pixels = _decode_opencv(data)
    decoded_by = "opencv"
    if pixels is None:
        pixels = _decode_pillow(path, data)
        decoded_by = "pillow"

    header = _read_metadata(data)
    orientation, focal35, focal = _exif_values(header.exif, warns)
    turned_by_decoder = decoded_by == "opencv" and data[:4] in _TIFF_MAGIC
    rows, cols = pixels.shape[:2]
    stored = (rows, cols) if turned_by_decoder and orientation > 4 else (cols, rows)  # (width, height) as stored
    focal35 = _focal_of_crop(focal35, _exif_frame(header.exif), stored, warns)
    _warn_extra_frames(header.frames, warns)
    if pixels.ndim == 3 and decoded_by == "opencv":
        # OpenCV hands back BGR(A); reorder to RGB(A)
        # (a fancy-indexed copy is not C-ordered: made contiguous so OpenCV can draw on what comes of it)
        if pixels.shape[2] == 3:
            pixels = np.ascontiguousarray(pixels[:, :, ::-1])
        elif pixels.shape[2] == 4:
            pixels = np.ascontiguousarray(pixels[:, :, [2, 1, 0, 3]])
    # OpenCV's TIFF decoder applies the TIFF Orientation tag itself (even with IMREAD_UNCHANGED); the other
    # decoders hand back the stored pixels
    if orientation != 1 and not turned_by_decoder:
        pixels = apply_exif_orientation(pixels, orientation)

    _warn_colour_profile(header.icc, warns)
    img = _from_pixels(pixels, path, content_hash)
    img.orientation = orientation
    img.exif_focal_35mm = focal35
    img.exif_focal_mm = focal
    img.warnings = warns + img.warnings
    return img


def file_content_hash(path: str | Path) -> str:
    """SHA-256 hex of a file's bytes, as ``LoadedImage.content_hash`` (without decoding the pixels)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_header(path: str | Path) -> tuple[int, int, int]:
    """(height, width) as stored and the EXIF orientation (1 when none or unreadable), from the file's header only
    (no decoding); raises whatever Pillow raises for a file it cannot read."""
    from PIL import Image

    with _PIL_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # a header says nothing dangerous
        try:
            with Image.open(path) as im:
                try:
                    orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                except Exception:  # a broken EXIF block: the pixels are stored upright, as load_image reads them
                    orientation = 1
                return int(im.height), int(im.width), orientation
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def image_header_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) as stored, read from the file's header only (no decoding); None when unknown."""
    try:
        return _read_header(path)[:2]
    except Exception:  # unreadable or not an image: load_image will say why, in its place in the batch
        return None


def upright_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image as :func:`load_image` returns it (EXIF orientation applied), read from its
    header only: the size a camera's intrinsics must be given for."""
    try:
        h, w, orientation = _read_header(path)
    except Exception as exc:  # Pillow raises many types for what it cannot read
        raise ImageError(path, f"cannot be read as an image ({_clean(exc)})", "check the file") from None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def apply_exif_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels ``(H, W[, C])`` into the upright image the EXIF orientation tag (1-8) describes.

    Matches ``PIL.ImageOps.exif_transpose``: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
    clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
    """
    a = pixels
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1, :]
    elif orientation == 5:
        a = np.swapaxes(a, 0, 1)
    elif orientation == 6:
        a = np.rot90(a, k=-1)
    elif orientation == 7:
        a = np.swapaxes(a[::-1, ::-1], 0, 1)
    elif orientation == 8:
        a = np.rot90(a, k=1)
    return np.ascontiguousarray(a)


# -- helpers -------------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ImageError(path, "file does not exist", "check the path")
    if path.is_dir():
        raise ImageError(path, "is a folder, not an image file", "pass the folder as an input to list its images")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(path, f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from exc
    if not data:
        raise ImageError(path, "is empty (0 bytes)", "re-export or re-copy the image")
    return data


def _check_truncation(path: Path, data: bytes) -> None:
    if data[:2] == b"\xff\xd8":  # JPEG: the last marker must be an end-of-image after the last scan
        eoi, sos = data.rfind(b"\xff\xd9"), data.rfind(b"\xff\xda")
        if sos < 0 or eoi < sos:
            raise ImageError(path, "JPEG data is truncated (no end-of-image marker after the image data)",
                             "the file was cut short while copying or downloading; copy it again")


_SRGB_PRIMARIES = ((0.6484, 0.3309), (0.3212, 0.5979), (0.1559, 0.0661))  # D50-adapted xy, as ICC colorants
_PRIMARIES_TOLERANCE = 0.005


def _warn_colour_profile(icc: bytes | None, warns: list[str]) -> None:
    """Say when an embedded colour profile is not sRGB (Adobe RGB from cameras, Display P3 from phones): its pixel
    values are read as sRGB, a little desaturated for the photometric stages. Not converted: converting
    `shared/data/images/group.jpeg` (Adobe RGB) moved the real-photo agreement of `default` from part IoU 0.681 to
    0.656 and NME 0.0223 to 0.0231 (docs/observations.md), which needs understanding first. Profiles with sRGB's
    primaries (sRGB IEC61966-2.1, compact copies such as "c2") are sRGB."""
    if icc is None:
        return
    from PIL import ImageCms

    try:
        with _PIL_LOCK:
            raw = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
            if raw.xcolor_space.strip() != "RGB":
                return
            primaries = [c[1][:2] for c in (raw.red_colorant, raw.green_colorant, raw.blue_colorant)]
            name = (raw.profile_description or "unnamed").strip()
    except Exception:  # a broken profile: the pixels are used as they are
        warns.append("its colour profile cannot be read: colours are read as sRGB")
        return
    if not all(abs(a - b) <= _PRIMARIES_TOLERANCE for p, q in zip(primaries, _SRGB_PRIMARIES) for a, b in zip(p, q)):
        warns.append(f"its colour profile '{name}' is not sRGB: colours are read as if they were sRGB (somewhat "
                     "desaturated); convert the photo to sRGB to fit its true colours")


def _warn_extra_frames(count: int, warns: list[str]) -> None:
    """Say when a file holds more than one image (animated WebP or PNG, multi-page TIFF): only the first is
    decoded, and a user whose face is on another page was told "no face found" without a word about pages."""
    if count > 1:
        warns.append(f"holds {count} images (frames or pages): only the first is fitted; save the one to fit as "
                     "an image of its own")


def _may_hold_frames(data: bytes) -> bool:
    """TIFF, WebP and animated PNG can hold several images (counting them may read the whole file: only those)."""
    return (data[:4] in _TIFF_MAGIC or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
            or (data[:8] == b"\x89PNG\r\n\x1a\n" and b"acTL" in data[:4096]))


def _decode_opencv(data: bytes) -> np.ndarray | None:
    import cv2

    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def _decode_pillow(path: Path, data: bytes) -> np.ndarray:
    from PIL import Image

    try:
        with _PIL_LOCK, Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.uint16)
            if mode == "F":
                return np.asarray(im, dtype=np.float32)
            if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La") or "transparency" in im.info:
                return np.asarray(im.convert("RGBA"))
            if mode == "L":
                return np.asarray(im)
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # Pillow raises many types for bad data
        raise _decode_error(path, data, exc) from exc


# magic bytes -> (kind, whether facefit reads it); the kind a file really is, whatever its name says
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG", True), (b"\x89PNG\r\n\x1a\n", "PNG", True), (b"BM", "BMP", True),
    (b"II*\x00", "TIFF", True), (b"MM\x00*", "TIFF", True), (b"GIF8", "GIF", False), (b"%PDF", "PDF", False),
    (b"PK\x03\x04", "ZIP archive", False), (b"8BPS", "Photoshop (PSD)", False),
)
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF",
               b"avif": "AVIF", b"crx ": "Canon RAW (CR3)"}
_CONVERT = "convert it to JPEG or PNG (any photo app or image editor can export these)"


def sniff_kind(data: bytes) -> tuple[str | None, bool]:
    """(what the bytes are, whether facefit can read that kind); (None, False) when unknown."""
    head = data[:64]
    for magic, kind, readable in _SIGNATURES:
        if head.startswith(magic):
            return kind, readable
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP", True
    if head[4:8] == b"ftyp":
        return _ISO_BRANDS.get(head[8:12], "video or HEIF container"), False
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")):
        return ("SVG" if b"svg" in data[:512].lower() else "HTML/XML text"), False
    if head and all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        return "plain text", False
    return None, False


def _decode_error(path: Path, data: bytes, exc: Exception) -> ImageError:
    """One line for bytes no decoder took: what the file really is and what to do about it."""
    kind, readable = sniff_kind(data)
    named = path.suffix.lower() or "no type"
    if kind is None:
        return ImageError(path, "is not an image file (its contents match no known image format)",
                          "check that this is the file you meant; if an image viewer opens it, save it from there "
                          "as PNG or JPEG")
    if not readable:
        hint = _CONVERT
        if kind.startswith("HTML"):
            hint = "it is probably a web page saved instead of the image; download the image itself again"
        elif kind in ("plain text", "PDF", "ZIP archive"):
            hint = "it is not a photo; remove it from the inputs or replace it with the image it should be"
        return ImageError(path, f"holds {kind} data, not an image facefit reads (its name says {named})", hint)
    return ImageError(path, f"{kind} data is corrupt or cut short ({_clean(exc)})",
                      "the file was damaged while saving or copying; copy it again from the original, or if an "
                      "image viewer still opens it, re-save it from there as PNG")


def _clean(exc: Exception) -> str:
    """The decoder's message without the in-memory buffer's repr (``<_io.BytesIO object at 0x...>``)."""
    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc)).strip(" :")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _Metadata:
    """What Pillow reads from a file's header: the raw EXIF values (orientation, focal length in 35 mm film,
    focal length; None without a readable EXIF block), how many images it holds, its ICC profile."""

    exif: tuple | None = None
    frames: int = 1
    icc: bytes | None = None


def _read_metadata(data: bytes) -> _Metadata:
    """The file's metadata from one Pillow open (each part on its own: a broken EXIF block loses only the EXIF)."""
    from PIL import Image

    def read() -> _Metadata:
        with Image.open(io.BytesIO(data)) as im:
            out = _Metadata(icc=im.info.get("icc_profile") or None)
            try:
                exif = im.getexif()
                sub = exif.get_ifd(_EXIF_IFD)
                out.exif = (exif.get(_EXIF_ORIENTATION, 1), sub.get(_EXIF_FOCAL_35MM), sub.get(_EXIF_FOCAL_LENGTH),
                            sub.get(_EXIF_PIXEL_X), sub.get(_EXIF_PIXEL_Y))
            except Exception:  # a broken EXIF block: the pixels are still fine
                pass
            if _may_hold_frames(data):
                try:
                    out.frames = int(getattr(im, "n_frames", 1))
                except Exception:  # the pixels were decoded: a count Pillow cannot make changes nothing
                    pass
            return out

    try:
        with _PIL_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return read()
            except Image.DecompressionBombError:  # huge but legitimate photo: only the header is read
                limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    return read()
                finally:
                    Image.MAX_IMAGE_PIXELS = limit
    except Exception:  # no reader for this format's header: pixels are still fine
        return _Metadata()


def _exif_values(exif: tuple | None, warns: list[str]) -> tuple[int, float | None, float | None]:
    """(orientation, focal length in 35 mm film, focal length) from the raw EXIF values; (1, None, None) if none."""
    if exif is None:
        return 1, None, None
    try:
        orientation = int(exif[0] or 1)
    except (TypeError, ValueError):  # a broken EXIF block
        return 1, None, None
    if orientation not in range(1, 9):
        warns.append(f"ignored invalid EXIF orientation {orientation}")
        orientation = 1

    def positive(v):
        try:
            v = float(v)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return v if np.isfinite(v) and v > 0 else None

    f35 = positive(exif[1])
    low, high = PLAUSIBLE_FOCAL_35MM
    if f35 is not None and not low <= f35 <= high:
        warns.append(f"ignored EXIF 35 mm-equivalent focal length {f35:g} mm (a camera's lies within {low:g}-"
                     f"{high:g} mm): the focal length is guessed from the default field of view instead")
        f35 = None
    return orientation, f35, positive(exif[2])


def _exif_frame(exif: tuple | None) -> tuple[int, int] | None:
    """The (width, height) EXIF says the camera wrote, None when absent or not two positive integers."""
    try:
        w, h = int(exif[3]), int(exif[4])
    except (TypeError, ValueError, IndexError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def _focal_of_crop(f35: float | None, frame: tuple[int, int] | None, size: tuple[int, int],
                   warns: list[str]) -> float | None:
    """The 35 mm-equivalent focal length of these stored pixels, when EXIF's was written for another frame.

    A resize keeps the field of view, so the 35 mm-equivalent focal length holds as it is; a crop keeps the pixel
    scale but narrows the frame, so the same lens is a longer lens for the crop (an uncorrected face crop of a
    phone photo read its focal length 2-4x too short, a far too strong perspective). A crop of another aspect is
    told apart from a resize; a crop that kept the aspect cannot be, and is read as a resize.
    """
    if f35 is None or frame is None:
        return f35
    (fw, fh), (w, h) = frame, size
    turns = ((fw, fh), (fh, fw))  # some cameras write the upright size of an image stored on its side
    if any(abs(np.log((w / h) / (a / b))) < 0.01 for a, b in turns):  # the whole frame, maybe resized
        return f35
    if any(w <= a and h <= b for a, b in turns):
        crop = f35 * float(np.hypot(fw, fh) / np.hypot(w, h))
        warns.append(f"EXIF says the camera wrote {fw}x{fh} pixels: this {w}x{h} image is read as a crop of it, "
                     f"with a 35 mm-equivalent focal length of {crop:.0f} mm instead of {f35:g} (if it was also "
                     f"resized, give the focal length in pixels: [camera] focal_px)")
        return crop
    warns.append(f"ignored EXIF 35 mm-equivalent focal length {f35:g} mm: it was written for {fw}x{fh} pixels and "
                 f"this {w}x{h} image is neither a resize nor a crop of that; the focal length is guessed instead")
    return None


def _from_pixels(pixels: np.ndarray, path: Path, content_hash: str) -> LoadedImage:
    """Normalise decoded RGB(A)/gray pixels of any supported depth into a LoadedImage."""
    warns: list[str] = []
    if pixels.dtype == np.uint8:
        depth, full = 8, 255.0
    elif pixels.dtype == np.uint16:
        depth, full = 16, 65535.0
    elif pixels.dtype in (np.float32, np.float64, np.float16):
        depth, full = 32, 1.0
        pixels = pixels.astype(np.float32)
        if not np.isfinite(pixels).all():
            warns.append("non-finite pixel values replaced by 0")
            pixels = np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)
        if pixels.size and (pixels.min() < 0 or pixels.max() > 1):
            warns.append("float pixels outside [0, 1] were clipped (HDR sources are not tone-mapped)")
    else:
        raise ImageError(path, f"has an unsupported sample format ({pixels.dtype})",
                         "save it as 8-bit or 16-bit unsigned integers")

    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        rgb_src, alpha_src = np.repeat(pixels[:, :, None], 3, axis=2), None
    elif pixels.ndim == 3 and pixels.shape[2] == 2:  # gray + alpha
        rgb_src, alpha_src = np.repeat(pixels[:, :, :1], 3, axis=2), pixels[:, :, 1]
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb_src = pixels[:, :, :3]
        alpha_src = pixels[:, :, 3] if pixels.shape[2] == 4 else None
    else:
        raise ImageError(path, f"has an unsupported pixel layout {pixels.shape}",
                         "save it as RGB, RGBA or grayscale")
    if rgb_src.shape[0] < 1 or rgb_src.shape[1] < 1:
        raise ImageError(path, "has no pixels", "re-export the image")

    alpha = None
    if alpha_src is not None:
        a = alpha_src.astype(np.float32) * np.float32(1.0 / full)
        np.clip(a, 0.0, 1.0, out=a)
        if float(a.min()) < 1.0:
            alpha = a

    if depth == 8 and alpha is None:
        rgb, high = np.ascontiguousarray(rgb_src), None
    else:
        f = rgb_src.astype(np.float32) * np.float32(1.0 / full)
        np.clip(f, 0.0, 1.0, out=f)
        if alpha is not None:
            f = f * alpha[..., None] + np.float32(ALPHA_BACKGROUND) * (1.0 - alpha[..., None])
        rgb = np.ascontiguousarray(np.clip(np.rint(f * 255.0), 0, 255), dtype=np.uint8)
        high = np.ascontiguousarray(rgb_src)  # exact source values for rgb_float
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha)
    # every array handed out is C-contiguous: OpenCV (drawing, resizing) rejects other layouts
    return LoadedImage(path=path, rgb=rgb, content_hash=content_hash, bit_depth=depth, alpha=alpha,
                       warnings=warns, _high=high)
