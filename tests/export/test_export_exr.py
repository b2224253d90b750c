"""displacement.exr's codec: OpenEXR files written through the OpenEXR package, checked byte by byte in the
header, read back bit-exactly, and read by an independent reader (OpenCV and/or OpenEXR in a subprocess)."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fitter.export.exr import COMPRESSION, encode_exr, read_exr, write_exr

# Runs in a separate interpreter (the test's own, or $FACEFIT_EXR_PYTHON, e.g. a throwaway venv with
# opencv-python<5 and OpenEXR): reads each EXR with OpenCV (when built with OpenEXR) and/or the OpenEXR
# bindings and saves what they read as .npy, so the comparison never uses facefit's own reader.
_READER = textwrap.dedent("""
    import json, os, re, sys
    os.environ["OPENCV_IO_ENABLE_OPENEXR"] = "1"   # must be set before cv2 is imported
    import numpy as np
    out_dir, paths = sys.argv[1], sys.argv[2:]
    report = {"readers": []}
    try:
        import cv2
        m = re.search(r"OpenEXR:\\s+(\\S+)", cv2.getBuildInformation())
        if m and m.group(1) != "NO":
            report["readers"].append("cv2 " + cv2.__version__)
            for i, p in enumerate(paths):
                a = cv2.imread(p, cv2.IMREAD_UNCHANGED)
                if a.ndim == 3:
                    a = a[..., [2, 1, 0, 3][:a.shape[2]]]   # BGR(A) -> RGB(A)
                np.save(os.path.join(out_dir, f"cv2_{i}.npy"), a)
    except ImportError:
        pass
    try:
        import OpenEXR
        report["readers"].append("OpenEXR " + getattr(OpenEXR, "__version__", "?"))
        headers = []
        for i, p in enumerate(paths):
            with OpenEXR.File(p) as f:
                chans = f.channels()
                key = "RGBA" if "RGBA" in chans else "RGB" if "RGB" in chans else sorted(chans)[0]
                np.save(os.path.join(out_dir, f"openexr_{i}.npy"), np.asarray(chans[key].pixels))
                h = f.header()
                headers.append({k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in h.items()
                                if k in ("units", "meaning", "scale", "offset", "compression")})
        report["headers"] = headers
    except ImportError:
        pass
    print(json.dumps(report))
""")


def _independent_read(paths, tmp_path):
    python = os.environ.get("FACEFIT_EXR_PYTHON", sys.executable)
    script = tmp_path / "read_exr_independently.py"
    script.write_text(_READER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([python, str(script), str(tmp_path)] + [str(p) for p in paths], capture_output=True,
                         text=True, env=env, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    if not report["readers"]:
        pytest.skip("no independent OpenEXR reader in this environment (OpenCV built without OpenEXR, no "
                    "OpenEXR module); set FACEFIT_EXR_PYTHON to an interpreter that has one")
    return report


def _exr_samples():
    """Smooth (compressible, so ZIP blocks are really deflated) images plus a few special values."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:37, 0:53]
    grey = (0.3 * np.sin(x / 7.0) * np.cos(y / 5.0)).astype(np.float32)
    grey[0, 0], grey[1, 1], grey[2, 2] = 1e-38, -0.0, 65504.5  # tiny, signed zero, beyond half floats
    grey[3, :] = rng.normal(size=53)  # one noisy line
    y, x = np.mgrid[0:21, 0:40]
    rgb = np.stack([x / 40.0, y / 21.0, np.full(x.shape, 0.5)], -1).astype(np.float32)
    y, x = np.mgrid[0:19, 0:16]
    rgba = np.stack([x / 16.0, y / 19.0, (x + y) / 35.0, np.ones(x.shape)], -1).astype(np.float32)
    return [grey, rgb, rgba]


_ATTRS = {"units": "cm", "meaning": "offset along the vertex normals of mesh.obj", "scale": 0.25, "offset": -1.5}


@pytest.mark.parametrize("compression", ["none", "zip"])
def test_exr_round_trip_and_header(tmp_path, compression):
    for k, img in enumerate(_exr_samples()):
        path = write_exr(tmp_path / f"img{k}.exr", img, compression, _ATTRS)
        back = read_exr(path)
        assert np.array_equal(back.array(), img) and back.array().dtype == np.float32  # bit-exact
        assert back.header["units"] == "cm" and back.header["scale"] == 0.25
        assert back.header["compression"] == compression
    # The metadata is in the header bytes, as OpenEXR attributes "name\0type\0size value".
    raw = (tmp_path / "img0.exr").read_bytes()
    assert raw[:4] == struct.pack("<i", 20000630) and struct.unpack("<i", raw[4:8])[0] == 2
    assert b"units\0string\0" + struct.pack("<i", 2) + b"cm" in raw
    assert b"meaning\0string\0" + struct.pack("<i", len(_ATTRS["meaning"])) + _ATTRS["meaning"].encode() in raw
    assert b"scale\0float\0" + struct.pack("<i", 4) + struct.pack("<f", 0.25) in raw
    assert b"compression\0compression\0" + struct.pack("<i", 1) + bytes([3 if compression == "zip" else 0]) in raw
    assert b"channels\0chlist\0" in raw and b"Y\0" + struct.pack("<i", 2) in raw  # one FLOAT channel "Y"
    if compression == "zip":  # the samples compress: ZIP blocks are really deflated
        sizes = [(tmp_path / f"img{k}.exr").stat().st_size / len(encode_exr(img, "none"))
                 for k, img in enumerate(_exr_samples())]
        assert sizes[0] < 1 and sizes[1] < 0.5 and sizes[2] < 0.5, sizes


@pytest.mark.parametrize("compression", ["none", "zip"])
def test_exr_independent_reader(tmp_path, compression):
    """OpenCV (in a subprocess, OPENCV_IO_ENABLE_OPENEXR set before import) and/or the OpenEXR bindings read
    the files bit-exactly. Skipped when neither can read EXR here (OpenCV 5 wheels are built without
    OpenEXR): point FACEFIT_EXR_PYTHON at an interpreter with opencv-python<5 or OpenEXR."""
    images = _exr_samples()
    paths = [write_exr(tmp_path / f"img{k}.exr", img, compression, _ATTRS) for k, img in enumerate(images)]
    report = _independent_read(paths, tmp_path)
    checked = 0
    for prefix in ("cv2", "openexr"):
        for k, img in enumerate(images):
            f = tmp_path / f"{prefix}_{k}.npy"
            if f.exists():
                other = np.load(f)
                assert other.dtype == np.float32 and np.array_equal(other.reshape(img.shape), img), (prefix, k)
                checked += 1
    assert checked >= 3, report
    for h in report.get("headers", []):
        assert h["units"] == "cm" and h["meaning"].startswith("offset along") and h["scale"] == 0.25


@pytest.mark.parametrize("compression", ["none", "rle", "zips", "zip", "piz"])
def test_exr_lossless_compressions_and_unknown_name(compression):
    # Multi-block files (ZIP: 16 lines a block, PIZ: 32) of incompressible noise and of a smooth ramp.
    noise = np.random.default_rng(2).random((40, 7)).astype(np.float32)
    assert np.array_equal(read_exr(encode_exr(noise, compression)).array(), noise)
    smooth = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    assert np.array_equal(read_exr(encode_exr(smooth, compression)).array(), smooth)
    if compression == "zip":
        assert len(encode_exr(smooth, "zip")) < 0.5 * len(encode_exr(smooth, "none"))
    with pytest.raises(ValueError, match="compression 'lzw'"):
        encode_exr(smooth, "lzw")
    assert compression in COMPRESSION


def test_exr_attribute_types_and_channel_names():
    img = np.zeros((3, 4, 2), np.float32)
    img[..., 1] = 1.5
    raw = encode_exr(img, "none", {"count": 3, "ratio": 0.5, "label": "x"}, channels=["v", "u"])
    assert b"count\0int\0" + struct.pack("<i", 4) + struct.pack("<i", 3) in raw
    assert b"ratio\0float\0" + struct.pack("<i", 4) + struct.pack("<f", 0.5) in raw
    back = read_exr(raw)
    assert sorted(back.channels) == ["u", "v"] and np.all(back.channels["u"] == 1.5)
    assert back.header["count"] == 3 and back.header["label"] == "x"
    with pytest.raises(ValueError, match="distinct names"):
        encode_exr(img)  # two channels have no default names
    with pytest.raises(TypeError, match="booleans"):
        encode_exr(img[..., 0], attributes={"flag": True})
    with pytest.raises(ValueError, match="required attribute"):
        encode_exr(img[..., 0], attributes={"compression": "none"})
