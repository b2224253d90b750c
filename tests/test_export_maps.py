"""UV map exports: OpenEXR writer (checked with an independent reader), 16-bit PNG displacement, tangent
frames, normal maps from displacement (against analytic derivatives and the displaced geometry), albedo."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from fitter.export.detail_mesh import detail_mesh_arrays
from fitter.export.exr import encode_exr, read_exr, write_exr
from fitter.export.maps import (
    decode_normal_map,
    face_textures,
    linear_to_srgb,
    normal_map_from_displacement,
    read_displacement_png,
    read_png_text,
    sample_map,
    srgb_to_linear,
    tangent_frames,
    uv_mask,
    vertex_normals_np,
    write_albedo,
    write_displacement,
    write_material,
    write_normal_map,
)
from fitter.model.topology import Topology

# ---------------------------------------------------------------------------------------------- helpers

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


def grid_mesh(n=8, size=(4.0, 2.0), mirror_u=False, seam=False):
    """A flat n x n quad grid in the z = 0 plane, x in [0, size[0]], y in [0, size[1]], UVs (x, y) scaled to
    [0, 1]^2 (u mirrored with ``mirror_u``). ``seam``: the right half (columns >= n / 2) is a separate UV
    island shifted by +0.01 in u, so the vertices of the middle column have two UVs each."""
    xs, ys = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    verts = np.stack([xs.ravel() * size[0], ys.ravel() * size[1], np.zeros(xs.size)], 1)
    uv = np.stack([1 - xs.ravel() if mirror_u else xs.ravel(), ys.ravel()], 1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    polys = np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()], 1)
    puvs = polys.copy()
    if seam:
        right_uv = uv + np.array([0.01, 0.0])  # a second copy of every UV, used by the right half
        uv = np.concatenate([uv, right_uv])
        right = (np.arange(len(polys)) % n) >= n // 2
        puvs[right] += len(verts)
    topo = Topology(polys.astype(np.int32), puvs.astype(np.int32), np.zeros(len(polys), np.int64), ["M_Face"],
                    uv.astype(np.float64), len(verts))
    return verts, topo


def texel_uv(S):
    r, c = np.mgrid[0:S, 0:S]
    return (c + 0.5) / S, 1 - (r + 0.5) / S


def rotation(a=0.5, b=0.7, c=0.9):
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", [a, b, c]).as_matrix()


# ---------------------------------------------------------------------------------------------- EXR


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
    # The metadata is in the header bytes, as OpenEXR attributes "name\0type\0size value".
    raw = (tmp_path / "img0.exr").read_bytes()
    assert raw[:4] == struct.pack("<i", 20000630) and struct.unpack("<i", raw[4:8])[0] == 2
    assert b"units\0string\0" + struct.pack("<i", 2) + b"cm" in raw
    assert b"meaning\0string\0" + struct.pack("<i", len(_ATTRS["meaning"])) + _ATTRS["meaning"].encode() in raw
    assert b"scale\0float\0" + struct.pack("<i", 4) + struct.pack("<f", 0.25) in raw
    assert b"compression\0compression\0" + struct.pack("<i", 1) + bytes([3 if compression == "zip" else 0]) in raw
    assert b"channels\0chlist\0" in raw and b"Y\0" + struct.pack("<i", 2) in raw  # one FLOAT channel "Y"
    if compression == "zip":  # the samples compress: the ZIP path (predictor, interleave, zlib) is exercised
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


def test_exr_zip_blocks_and_raw_fallback():
    # 16-line blocks: 40 lines -> 3 blocks; incompressible noise falls back to raw storage per block.
    noise = np.random.default_rng(2).random((40, 7)).astype(np.float32)
    data = encode_exr(noise, "zip")
    assert np.array_equal(read_exr(data).array(), noise)
    smooth = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    assert len(encode_exr(smooth, "zip")) < 0.5 * len(encode_exr(smooth, "none"))
    with pytest.raises(ValueError):
        encode_exr(smooth, "piz")


# ---------------------------------------------------------------------------------------------- displacement


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
    assert np.array_equal(d[mask], disp[mask])  # exact inside the islands
    ring = ~mask & (np.abs(d) > 0)  # dilated values just outside, zero far away
    assert ring.sum() > 0 and d[0, 0] == 0.0

    # PNG: 16-bit, decoded by OpenCV (independent of our writer), scale/offset from PIL's tEXt reader.
    import cv2

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


def test_zero_displacement_png_is_well_defined(tmp_path):
    info = write_displacement(tmp_path, np.zeros((8, 8)), None)
    assert info["scale"] > 0 and info["offset"] == 0.0
    values, _ = read_displacement_png(tmp_path / "displacement.png")
    assert np.all(values == 0)


# ---------------------------------------------------------------------------------------------- normal maps


def test_flat_displacement_gives_flat_normal_map(ict, tmp_path):
    verts = ict.mean.numpy()
    nm = normal_map_from_displacement(verts, ict.topology, np.zeros((96, 96), np.float32), 96)
    assert nm.shape == (96, 96, 3)
    assert np.abs(nm - np.array([0.5, 0.5, 1.0])).max() < 1e-6
    path = write_normal_map(tmp_path, nm)
    img = np.asarray(Image.open(path))
    assert img.dtype == np.uint8 and np.all(img == [128, 128, 255])
    assert "OpenGL" in Image.open(path).text["facefit:convention"]
    import cv2

    img16 = cv2.imread(str(write_normal_map(tmp_path, nm, bits=16, stem="normal16")), cv2.IMREAD_UNCHANGED)
    assert img16.dtype == np.uint16 and np.all(img16[..., ::-1] == [32768, 32768, 65535])


def _analytic_local(u, v, A, k, size):
    """Tangent-space normals of z = A sin(2 pi k u) + A cos(2 pi v) on a grid with x = u * Lx, y = v * Ly."""
    gx = A * 2 * np.pi * k * np.cos(2 * np.pi * k * u) / size[0]
    gy = -A * 2 * np.pi * np.sin(2 * np.pi * v) / size[1]
    n = np.stack([-gx, -gy, np.ones_like(gx)], -1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def test_normal_map_matches_analytic_derivative():
    size, A, k, S = (4.0, 2.0), 0.03, 2, 128
    verts, topo = grid_mesh(8, size)
    R = rotation()
    u, v = texel_uv(S)
    disp = A * np.sin(2 * np.pi * k * u) + A * np.cos(2 * np.pi * v)
    nm = normal_map_from_displacement(verts @ R.T, topo, disp, S)  # a rotated plane: the frame follows it
    local = decode_normal_map(nm)
    want = _analytic_local(u, v, A, k, size)
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(local - want)[inner].max() < 2e-3  # central differences + 8-bit-free float map
    assert np.abs(local - want).max() < 2e-2  # one-sided differences at the border
    # Green is the +v component (OpenGL): where the height rises towards +v the normal leans to -v.
    rising = np.sin(2 * np.pi * v) < -0.5  # d/dv of A cos(2 pi v) = -2 pi A sin(2 pi v) > 0
    falling = np.sin(2 * np.pi * v) > 0.5
    assert np.all(nm[..., 1][rising] < 0.5) and np.all(nm[..., 1][falling] > 0.5)
    # Red is the +u component.
    assert np.all(nm[..., 0][np.cos(2 * np.pi * k * u) > 0.5] < 0.5)
    # A different normal-map size resamples the gradient, not the texels.
    nm2 = normal_map_from_displacement(verts @ R.T, topo, disp, 64)
    u2, v2 = texel_uv(64)
    assert np.abs(decode_normal_map(nm2) - _analytic_local(u2, v2, A, k, size))[2:-2, 2:-2].max() < 5e-3


def test_normal_map_mirrored_uvs_world_normals():
    # Mirrored UVs flip the tangent frame's handedness (sign -1); decoded into world space with that frame
    # the normals must still be the displaced surface's.
    size, A, S = (3.0, 3.0), 0.04, 96
    verts, topo = grid_mesh(6, size, mirror_u=True)
    fr = tangent_frames(verts, topo)
    assert np.all(fr.sign == -1)
    assert np.allclose(fr.tangent, [-1, 0, 0]) and np.allclose(fr.bitangent, [0, 1, 0])
    u, v = texel_uv(S)
    disp = A * np.sin(2 * np.pi * u)  # x = (1 - u) * 3, so z = A sin(2 pi (1 - x / 3))
    local = decode_normal_map(normal_map_from_displacement(verts, topo, disp, S))
    world = local[..., 0:1] * fr.tangent[0] + local[..., 1:2] * fr.bitangent[0] + local[..., 2:3] * fr.normal[0]
    dzdx = -A * 2 * np.pi * np.cos(2 * np.pi * u) / size[0]
    want = np.stack([-dzdx, np.zeros_like(u), np.ones_like(u)], -1)
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    assert np.abs(world - want)[2:-2, 2:-2].max() < 2e-3


def test_normal_map_agrees_with_displaced_geometry():
    # The normal map decoded in the tangent frame vs. the normals of the actually displaced dense mesh.
    size, S = (4.0, 3.0), 128
    verts, topo = grid_mesh(4, size)
    R = rotation(0.2, -0.4, 1.1)
    verts = verts @ R.T
    u, v = texel_uv(S)
    disp = 0.05 * np.sin(2 * np.pi * u) * np.cos(2 * np.pi * v)
    nm = normal_map_from_displacement(verts, topo, disp, S)
    dense = detail_mesh_arrays(verts, topo, disp, levels=4, region=None)
    tris = np.concatenate([dense.polygons[:, [0, 1, 2]], dense.polygons[:, [0, 2, 3]]])
    geo = vertex_normals_np(dense.vertices, tris)
    fr = tangent_frames(verts, topo)
    t, b, n = fr.tangent[0], fr.bitangent[0], fr.normal[0]  # planar: one frame everywhere
    uv = dense.uvs[np.unique(np.stack([dense.polygons.ravel(), dense.polygon_uvs.ravel()], 1), axis=0)[:, 1]]
    vid = np.unique(np.stack([dense.polygons.ravel(), dense.polygon_uvs.ravel()], 1), axis=0)[:, 0]
    inner = (uv[:, 0] > 0.05) & (uv[:, 0] < 0.95) & (uv[:, 1] > 0.05) & (uv[:, 1] < 0.95)
    local = decode_normal_map(sample_map(nm, uv[inner]))
    world = local[:, :1] * t + local[:, 1:2] * b + local[:, 2:] * n
    angle = np.degrees(np.arccos(np.clip((world * geo[vid[inner]]).sum(1), -1, 1)))
    assert angle.max() < 1.0, angle.max()


def test_tangent_frames_ict(ict):
    verts = ict.mean.numpy()
    fr = tangent_frames(verts, ict.topology)
    for a, b in [(fr.tangent, fr.tangent), (fr.bitangent, fr.bitangent), (fr.normal, fr.normal)]:
        assert np.allclose((a * b).sum(1), 1, atol=1e-6)
    assert np.abs((fr.tangent * fr.normal).sum(1)).max() < 1e-6
    assert np.abs((fr.bitangent * fr.normal).sum(1)).max() < 1e-6
    assert len(fr.tangent) == len(ict.topology.uvs)  # ICT: one wedge per UV index
    # Where the face looks forward, the tangent (+u) runs along +x and the bitangent (+v) along +y.
    face = np.isin(fr.wedge_vertex, np.unique(ict.topology.polygons[ict.topology.polygon_material == 0]))
    front = face & (fr.normal[:, 2] > 0.9)
    assert front.sum() > 500
    assert np.mean(fr.tangent[front, 0] > 0.9) > 0.9 and np.mean(fr.bitangent[front, 1] > 0.8) > 0.95
    assert np.all(fr.sign[face] == 1)
    t, b, n = fr.per_vertex()
    assert t.shape == (ict.num_vertices, 3)


def test_ict_normal_map_of_a_bump(ict):
    # A Gaussian bump in the middle of the face tile: the normals lean away from its centre, in UV terms.
    verts = ict.mean.numpy()
    S = 128
    u, v = texel_uv(S)
    c = (0.5, 0.45)
    disp = 0.2 * np.exp(-((u - c[0]) ** 2 + (v - c[1]) ** 2) / (2 * 0.05 ** 2))
    nm = normal_map_from_displacement(verts, ict.topology, disp, S)
    mask = uv_mask(ict.topology, S)
    x = nm[..., 0] - 0.5
    y = nm[..., 1] - 0.5
    right, left = mask & (np.abs(v - c[1]) < 0.02) & (u > c[0] + 0.04) & (u < c[0] + 0.08), \
        mask & (np.abs(v - c[1]) < 0.02) & (u < c[0] - 0.04) & (u > c[0] - 0.08)
    up, down = mask & (np.abs(u - c[0]) < 0.02) & (v > c[1] + 0.04) & (v < c[1] + 0.08), \
        mask & (np.abs(u - c[0]) < 0.02) & (v < c[1] - 0.04) & (v > c[1] - 0.08)
    assert min(right.sum(), left.sum(), up.sum(), down.sum()) > 5
    assert x[right].min() > 0.01 and x[left].max() < -0.01
    assert y[up].min() > 0.01 and y[down].max() < -0.01
    far = ~mask
    far[::2] = False
    assert np.abs(nm[far & (np.hypot(u - c[0], v - c[1]) > 0.4)] - [0.5, 0.5, 1.0]).max() < 1e-6


# ---------------------------------------------------------------------------------------------- albedo, MTL


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


def test_albedo_from_vertex_colours(ict, tmp_path):
    from fitter.export.maps import albedo_map_from_vertices, export_maps

    colours = np.tile([0.2, 0.4, 0.6], (ict.num_vertices, 1))
    amap, mask = albedo_map_from_vertices(colours, ict.topology, 64)
    assert amap.shape == (3, 64, 64) and mask.mean() > 0.5
    assert np.allclose(amap[:, mask].T, [0.2, 0.4, 0.6]) and np.all(amap[:, ~mask] == 0)
    export_maps(tmp_path, ict.mean.numpy(), ict.topology, albedo=colours, albedo_size=64)
    img = np.asarray(Image.open(tmp_path / "albedo.png"))
    assert img.shape == (64, 64, 3) and np.all(img == np.round(255 * linear_to_srgb(np.array([0.2, 0.4, 0.6]))))


def test_mtl_references_maps(tmp_path, ict):
    for name in ("albedo.png", "normal.png", "displacement.png", "displacement.exr"):
        (tmp_path / name).write_bytes(b"")
    tex = face_textures(tmp_path, {"scale": 0.5, "offset": -0.25})
    path = write_material(tmp_path, ict.topology, textures=tex)
    text = path.read_text()
    block = text.split("newmtl M_Face")[1].split("newmtl")[0]
    assert "map_Kd albedo.png" in block and "norm normal.png" in block
    assert "map_Bump" not in block  # Blender would load it as an sRGB normal map (see face_textures)
    assert "disp -mm -0.25 0.5 displacement.png" in block
    assert block.count("Kd ") == 2 and "Kd 1.000 1.000 1.000" in block  # Kd replaced, map_Kd kept
    assert "Kd 0.650 0.550 0.500" in text.split("newmtl M_BackHead")[1]  # other materials keep colours
    tex = face_textures(tmp_path, bump_as_normal=True, bump_strength=0.5)
    assert tex["M_Face"]["map_Bump"] == "-bm 0.5 normal.png" and "disp" not in tex["M_Face"]


def _face_folder(ict, folder, S=128, albedo=True, levels=None):
    from fitter.export.maps import export_maps
    from fitter.export.obj import write_obj

    verts = ict.mean.numpy()
    write_obj(folder, "mesh", verts, ict.topology, header="units: cm")
    u, v = texel_uv(S)
    disp = (0.05 * np.sin(2 * np.pi * 6 * v) + 0.1 * np.exp(-((u - 0.5) ** 2 + (v - 0.45) ** 2) / 0.005) - 0.02)
    alb = np.stack([0.5 + 0.2 * u, 0.35 + 0.1 * v, 0.3 + 0 * u]) if albedo else None
    return export_maps(folder, verts, ict.topology, displacement=disp.astype(np.float32), albedo=alb,
                       detail_levels=levels)


def test_export_maps_writes_everything(ict, tmp_path):
    info = _face_folder(ict, tmp_path, levels=1)
    for name in ("displacement.exr", "displacement.png", "normal.png", "albedo.png", "mesh.mtl",
                 "mesh_detail.obj", "mesh_detail.mtl"):
        assert (tmp_path / name).exists() and name in info["files"]
    assert info["displacement"]["units"] == "cm" and info["displacement"]["scale"] > 0
    mtl = (tmp_path / "mesh.mtl").read_text().split("newmtl M_BackHead")[0]
    assert "map_Kd albedo.png" in mtl and "norm normal.png" in mtl and "disp -mm" in mtl
    assert not list(tmp_path.glob(".*tmp"))
    assert oct((tmp_path / "normal.png").stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_blender_import_example(ict, tmp_path):
    """examples/blender_import.py in a real Blender (the ``bpy`` module): only when FACEFIT_BPY_PYTHON names
    an interpreter with bpy (e.g. a throwaway venv after ``pip install bpy``), or bpy imports here."""
    python = os.environ.get("FACEFIT_BPY_PYTHON")
    if not python:
        try:
            import bpy  # noqa: F401
        except ImportError:
            pytest.skip("no Blender Python module (set FACEFIT_BPY_PYTHON to an interpreter with bpy)")
        python = sys.executable
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "blender_import.py"
    folder = tmp_path / "face"
    _face_folder(ict, folder)
    reports = {}
    for mode in ("normal", "displace"):
        report = tmp_path / f"{mode}.json"
        res = subprocess.run([python, str(script), str(folder), "--empty", "--mode", mode, "--levels", "1",
                              "--report", str(report)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        reports[mode] = json.loads(report.read_text())
    normal = reports["normal"]
    assert normal["vertices"] == ict.num_vertices and normal["uv_layers"]
    assert all(img["has_data"] for img in normal["images"].values()) and len(normal["images"]) == 3
    assert normal["images"]["displacement.exr"]["float"] and \
        normal["images"]["normal.png"]["colorspace"] == "Non-Color"
    assert "facefit normal map.Normal -> Principled BSDF.Normal" in normal["links"]
    assert "facefit albedo.Color -> Principled BSDF.Base Color" in normal["links"]
    check = reports["displace"]["displace_check"]
    # Blender moved the face vertices by the EXR's bilinear value at their UV (float32 round-off), except
    # a few within the image's last texel column, where Blender's edge handling differs (< 2e-3 cm here).
    assert check["face_vertices"] > 9000
    assert check["abs_error_cm_median"] < 1e-6 and check["abs_error_cm_p99"] < 1e-5
    assert check["abs_error_cm_max"] < 2e-3
