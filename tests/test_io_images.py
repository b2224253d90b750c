"""fitter.io image loading: orientation, bit depth, alpha, grayscale, hashing and the error type.

Only files in the repository (examples/images) or images generated here are used.
"""
from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from fitter.io import ALPHA_BACKGROUND, ImageError, LoadedImage, apply_exif_orientation, load_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"
EXAMPLE_FILES = ["grace_hopper.jpg", "astronaut.png", "Bryan.png", "Luciano.png", "Chris.jpeg"]

# stored pixels for each orientation: the inverse of what the tag asks a viewer to do
_INVERSE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, k=1),  # the viewer rotates 90 degrees clockwise
    7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    8: lambda a: np.rot90(a, k=-1),
}


def _save_with_exif(pixels: np.ndarray, path: Path, orientation: int | None = None, **tags) -> Path:
    im = Image.fromarray(np.ascontiguousarray(pixels))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if tags:
        ifd = exif.get_ifd(0x8769)
        for tag, value in tags.items():
            ifd[{"focal35": 0xA405, "focal": 0x920A, "width": 0xA002, "height": 0xA003}[tag]] = value
    kwargs = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    im.save(path, exif=exif.tobytes(), **kwargs)
    return path


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_examples_load(name):
    path = EXAMPLES / name
    img = load_image(path)
    h, w = img.size
    assert img.rgb.shape == (h, w, 3) and img.rgb.dtype == np.uint8
    assert img.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert img.bit_depth == 8 and img.orientation == 1
    f = img.rgb_float
    assert f.shape == (h, w, 3) and f.dtype == np.float32
    assert np.allclose(f * 255.0, img.rgb, atol=1e-3)
    assert img.source == str(path)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.arange(256, dtype=np.uint8), (20, 1))
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    img = load_image(tmp_path / "g.png")
    assert img.size == (20, 256)
    assert (img.rgb[..., 0] == gray).all() and (img.rgb[..., 1] == gray).all() and (img.rgb[..., 2] == gray).all()


def test_rgba_is_composited_over_grey_and_alpha_kept(tmp_path):
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200  # red
    rgba[:, :4, 3] = 255  # opaque
    rgba[:, 4:8, 3] = 0  # transparent
    rgba[:, 8:, 3] = 128  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.alpha is not None and img.alpha.shape == (10, 12)
    assert (img.rgb[:, :4] == [200, 0, 0]).all()
    grey = round(ALPHA_BACKGROUND * 255)
    assert (img.rgb[:, 4:8] == [grey, grey, grey]).all()
    a = 128 / 255
    expected = np.array([200 / 255 * a + 0.5 * (1 - a), 0.5 * (1 - a), 0.5 * (1 - a)], np.float32)
    assert np.allclose(img.rgb_float[:, 8:], expected, atol=1e-6)
    # an alpha channel that is fully opaque is dropped
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png").alpha is None


@pytest.mark.parametrize("depth", [np.uint8, np.uint16])
def test_loaded_arrays_are_contiguous_so_opencv_can_draw_on_them(tmp_path, depth):
    """BGRA -> RGBA reordering once left a strided array that cv2.circle rejected after every fit."""
    full = np.iinfo(depth).max
    bgra = np.full((16, 20, 4), full // 2, depth)
    bgra[:, :5, 3] = 0  # real transparency
    cv2.imwrite(str(tmp_path / "t.png"), bgra)
    img = load_image(tmp_path / "t.png")
    assert img.alpha is not None
    for name, arr in (("rgb", img.rgb), ("alpha", img.alpha), ("rgb_float", img.rgb_float)):
        assert arr.flags["C_CONTIGUOUS"], name
    cv2.circle(img.rgb, (3, 3), 2, (255, 0, 0), -1)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_keeps_full_precision(tmp_path, ext):
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, size=(31, 47, 3), dtype=np.uint16)
    rgb16[0, 0] = [1000, 1001, 1002]  # neighbours one 16-bit step apart: identical in 8 bits
    cv2.imwrite(str(tmp_path / f"x{ext}"), rgb16[:, :, ::-1])
    img = load_image(tmp_path / f"x{ext}")
    assert img.bit_depth == 16
    assert np.array_equal(np.rint(img.rgb_float.astype(np.float64) * 65535).astype(np.uint16), rgb16)
    f00 = img.rgb_float[0, 0]
    assert f00[0] < f00[1] < f00[2]
    assert np.abs(img.rgb.astype(int) - np.rint(rgb16 / 257.0)).max() == 0


def test_16bit_grayscale(tmp_path):
    g = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g)
    img = load_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.rgb.shape == (64, 64, 3)
    assert np.allclose(img.rgb_float[..., 1], g / 65535.0, atol=1e-7)


def test_apply_exif_orientation_matches_pillow():
    a = np.arange(4 * 7 * 3, dtype=np.uint8).reshape(4, 7, 3)
    for o in range(1, 9):
        im = Image.fromarray(a)
        exif = im.getexif()
        exif[0x0112] = o
        buf = io.BytesIO()
        im.save(buf, format="PNG", exif=exif.tobytes())
        ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
        assert np.array_equal(apply_exif_orientation(a, o), ref), o
        # and our inverse table (used below to write rotated files) really inverts it
        assert np.array_equal(apply_exif_orientation(_INVERSE[o](a), o), a), o


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png_is_exact(tmp_path, orientation):
    upright = load_image(EXAMPLES / "Bryan.png").rgb
    path = _save_with_exif(_INVERSE[orientation](upright), tmp_path / "r.png", orientation)
    img = load_image(path)
    assert img.orientation == orientation
    assert img.size == upright.shape[:2]
    assert np.array_equal(img.rgb, upright)


@pytest.mark.parametrize("ext", [".tif", ".webp"])
@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_orientation_tiff_and_webp(tmp_path, ext, orientation):
    """OpenCV applies a TIFF's orientation itself, not a WebP's: either way the result is upright, once."""
    upright = load_image(EXAMPLES / "Bryan.png").rgb
    im = Image.fromarray(np.ascontiguousarray(_INVERSE[orientation](upright)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(tmp_path / f"o{ext}", exif=exif.tobytes(), **({"lossless": True} if ext == ".webp" else {}))
    img = load_image(tmp_path / f"o{ext}")
    assert img.orientation == orientation and np.array_equal(img.rgb, upright)


def test_orientation_16bit_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    upright = (load_image(EXAMPLES / "Bryan.png").rgb.astype(np.uint16) * 257 + 3).astype(np.uint16)
    tifffile.imwrite(tmp_path / "o.tif", np.ascontiguousarray(_INVERSE[6](upright)), photometric="rgb",
                     extratags=[(0x0112, "H", 1, 6, True)])
    img = load_image(tmp_path / "o.tif")
    assert img.bit_depth == 16 and img.orientation == 6
    assert np.array_equal(np.rint(img.rgb_float.astype(np.float64) * 65535).astype(np.uint16), upright)


def test_exif_orientation_jpeg(tmp_path):
    upright = load_image(EXAMPLES / "grace_hopper.jpg").rgb
    path = _save_with_exif(_INVERSE[6](upright), tmp_path / "r6.jpg", 6)
    img = load_image(path)
    assert img.size == upright.shape[:2] and img.orientation == 6
    assert np.abs(img.rgb.astype(int) - upright).mean() < 3.0


def test_exif_focal_lengths(tmp_path):
    px = np.zeros((8, 8, 3), np.uint8)
    img = load_image(_save_with_exif(px, tmp_path / "f.jpg", 1, focal35=28, focal=4.2))
    assert img.exif_focal_35mm == 28.0 and img.exif_focal_mm == pytest.approx(4.2)
    img = load_image(_save_with_exif(px, tmp_path / "n.jpg", None))
    assert img.exif_focal_35mm is None and img.exif_focal_mm is None
    img = load_image(_save_with_exif(px, tmp_path / "z.jpg", 1, focal35=0))  # 0 means unknown
    assert img.exif_focal_35mm is None
    for absurd in (1, 5000):  # an editor's broken tag: a 179-deg or a 0.4-deg field of view, trusted before
        img = load_image(_save_with_exif(px, tmp_path / f"a{absurd}.jpg", 1, focal35=absurd))
        assert img.exif_focal_35mm is None
        assert any(w.startswith(f"ignored EXIF 35 mm-equivalent focal length {absurd} mm") for w in img.warnings)


def test_a_crop_of_a_photo_reads_its_focal_length_for_the_crop(tmp_path):
    """EXIF's width and height say which frame the 35 mm-equivalent focal length was written for: a crop of
    another aspect has a narrower field of view (a longer equivalent lens), a resize the same one."""
    def load(w, h, **tags):
        return load_image(_save_with_exif(np.zeros((h, w, 3), np.uint8), tmp_path / f"{w}x{h}.jpg", 1,
                                          focal35=26, **tags))

    assert load(400, 300, width=400, height=300).exif_focal_35mm == 26.0  # the camera's own file
    assert load(200, 150, width=4000, height=3000).exif_focal_35mm == 26.0  # resized: the same field of view
    assert load(300, 400, width=400, height=300).exif_focal_35mm == 26.0  # the upright size written for a turned file
    crop = load(100, 100, width=400, height=300)  # a square face crop of a 4:3 photo, pixels unscaled
    assert crop.exif_focal_35mm == pytest.approx(26.0 * 500 / np.hypot(100, 100))
    assert any("read as a crop of it" in w for w in crop.warnings)
    portrait = load(150, 250, width=400, height=300)  # a portrait crop of a landscape photo
    assert portrait.exif_focal_35mm == pytest.approx(26.0 * 500 / np.hypot(150, 250))
    other = load(500, 100, width=400, height=300)  # wider than the frame: neither a crop nor a resize
    assert other.exif_focal_35mm is None
    assert any(w.startswith("ignored EXIF 35 mm-equivalent focal length 26 mm") for w in other.warnings)
    assert load(100, 100).exif_focal_35mm == 26.0  # no size written: taken as it is


@pytest.mark.parametrize("name", ["anim.webp", "pages.tif", "anim.png"])
def test_a_file_of_several_images_says_only_the_first_is_fitted(tmp_path, name):
    from PIL import Image

    first, second = (Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (90, 200))
    first.save(tmp_path / name, save_all=True, append_images=[second], **({"lossless": True} if "webp" in name else {}))
    img = load_image(tmp_path / name)
    assert int(img.rgb[0, 0, 0]) in range(85, 96)  # the first frame
    assert any(w.startswith("holds 2 images (frames or pages): only the first is fitted") for w in img.warnings)
    first.save(tmp_path / f"one_{name}")
    assert not load_image(tmp_path / f"one_{name}").warnings


def test_huge_image_loads(tmp_path):
    big = cv2.resize(load_image(EXAMPLES / "Luciano.png").rgb, (6000, 4000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(tmp_path / "big.jpg"), big[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    img = load_image(tmp_path / "big.jpg")
    assert img.size == (4000, 6000)


def test_from_array_hashes_pixels():
    a = np.zeros((5, 6, 3), np.uint8)
    b = a.copy()
    b[2, 3, 1] = 1
    ia, ib = LoadedImage.from_array(a, "x", frame_index=3), LoadedImage.from_array(b, "x")
    assert ia.content_hash != ib.content_hash
    assert ia.content_hash == LoadedImage.from_array(a.copy()).content_hash
    assert ia.source == "x#frame=3"
    assert LoadedImage.from_array(np.zeros((5, 6), np.uint16)).bit_depth == 16


# -- errors: one exception type, a message naming the file and the problem -------------------------------
def _corrupt_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good_jpg = (EXAMPLES / "grace_hopper.jpg").read_bytes()
    good_png = (EXAMPLES / "Bryan.png").read_bytes()
    files = {
        "random.jpg": (np.random.default_rng(1).bytes(5000), "is not an image file"),
        "truncated.jpg": (good_jpg[: len(good_jpg) // 2], "truncated"),
        "truncated.png": (good_png[: len(good_png) // 2], "PNG data is corrupt or cut short"),
        "text.png": (b"this is not an image\n" * 20, "holds plain text data"),
        "empty.png": (b"", "empty"),
        "notes.gif": (b"GIF89a garbage", "holds GIF data"),
        "page.jpg": (b"<!DOCTYPE html><html><body>404</body></html>", "web page"),
        "iphone.jpg": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), "HEIC"),
    }
    out = {}
    for name, (data, expect) in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = (tmp_path / name, expect)
    return out


def test_corrupt_and_unreadable_files_raise_image_error(tmp_path):
    for name, (path, expect) in _corrupt_files(tmp_path).items():
        with pytest.raises(ImageError) as err:
            load_image(path)
        msg = str(err.value)
        assert str(path) in msg and expect in msg, (name, msg)
        assert err.value.path == str(path)
        # no decoder internals, no advice to re-save a file as the type it already claims to be
        assert "BytesIO" not in msg and "0x" not in msg and "re-export it as" not in msg, (name, msg)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def _s15(v: float) -> bytes:  # ICC s15Fixed16Number
    return struct.pack(">i", int(round(v * 65536)))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _curve_tag(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, int(round(gamma * 256))) + bytes(2)


def _desc_tag(text: str) -> bytes:  # ICC v2 textDescriptionType: ASCII, then empty Unicode and ScriptCode parts
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(8) + bytes(3) + bytes(67)


def _matrix_profile(name: str, red, green, blue, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 display profile: three colorants (D50 XYZ) and one gamma curve per channel."""
    tags = [(b"desc", _desc_tag(name)), (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)), (b"rXYZ", _xyz_tag(*red)),
            (b"gXYZ", _xyz_tag(*green)), (b"bXYZ", _xyz_tag(*blue))]
    tags += [(sig, _curve_tag(gamma)) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        body += bytes(-(start + len(body)) % 4)  # tags start on 4-byte boundaries
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data
    header = (struct.pack(">I", start + len(body)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body

P3_COLORANTS = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))  # D50 XYZ


def test_a_wide_gamut_photo_says_its_colours_are_read_as_srgb(tmp_path):
    """Display P3 (phones) or Adobe RGB (cameras) values read as sRGB are desaturated: not converted (yet), but
    said; a profile with sRGB's primaries says nothing."""
    from PIL import Image, ImageCms

    stored = np.zeros((8, 8, 3), np.uint8)
    stored[:] = (60, 180, 60)
    Image.fromarray(stored).save(tmp_path / "p3.png", icc_profile=_matrix_profile("Display P3 (test)", *P3_COLORANTS))
    img = load_image(tmp_path / "p3.png")
    assert np.array_equal(img.rgb, stored)
    assert img.warnings == ["its colour profile 'Display P3 (test)' is not sRGB: colours are read as if they were "
                            "sRGB (somewhat desaturated); convert the photo to sRGB to fit its true colours"]
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(stored).save(tmp_path / "srgb.png", icc_profile=srgb)
    assert not load_image(tmp_path / "srgb.png").warnings
