"""UV maps for DCC tools: displacement (EXR + 16-bit PNG), tangent-space normal map, sRGB albedo, and the
MTL entries that reference them. See docs/exports.md for the conventions in full.

Layout (the same as :func:`fitter.render.render_uv` / :func:`fitter.render.sample_texture`): a map covers
the UV tile of the face material (``M_Face``, u in [0, 1], UDIM 1001); texel (row r, column c) is centred at
u = (c + 0.5) / W, v = 1 - (r + 0.5) / H, so row 0 is v = 1: the top row of every image file written here.

- ``displacement.exr``: 32-bit float, channel ``Y``, **centimetres** along the vertex normals of mesh.obj
  (p' = p + d(uv) n). ``displacement.png``: 16-bit grey, value_cm = png / 65535 * scale + offset (scale and
  offset in the PNG's tEXt chunks and returned to the caller for params.npz).
- ``normal.png``: tangent-space normals of the displaced surface relative to mesh.obj's smooth normals,
  OpenGL convention (+Y, green up: Blender, Maya, Houdini, Substance "OpenGL"), 8-bit (or 16-bit),
  non-colour data. For DirectX / Unreal invert the green channel (g' = 1 - g).
- ``albedo.png``: 8-bit sRGB (the fitted albedo is linear; converted with the IEC 61966-2-1 curve).

Maps are dilated a few texels beyond the UV islands so bilinear and mip-mapped look-ups at island borders
do not blend in the empty background.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..common.colour import linear_to_srgb, srgb_to_linear  # noqa: F401 (re-exported for callers)
from ..model.topology import Topology
from .exr import atomic_write_bytes, write_exr
from .obj import mtl_text

DISPLACEMENT_MEANING = "offset along the vertex normals of mesh.obj (p' = p + d * n), same UVs as mesh.obj"
UV_LAYOUT = "UDIM 1001 (u in [0,1]) of mesh.obj's M_Face material; row 0 is v = 1 (top of the image)"
NORMAL_CONVENTION = ("tangent space, OpenGL / +Y (green up); tangents from mesh.obj's UVs (MikkTSpace-like); "
                     "for DirectX/Unreal use 1 - green")
FACE_MATERIAL = "M_Face"


# ---------------------------------------------------------------------------------------------- small helpers


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _vertices(vertices) -> np.ndarray:
    v = _np(vertices).astype(np.float64)
    if v.ndim == 3:
        if v.shape[0] != 1:
            raise ValueError(f"one frame of vertices expected, got {v.shape}")
        v = v[0]
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {v.shape}")
    return v


def _map2d(disp) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (H, W) float64."""
    d = _np(disp).astype(np.float64)
    while d.ndim > 2 and d.shape[0] == 1:
        d = d[0]
    if d.ndim != 2:
        raise ValueError(f"a scalar map (H, W) is expected, got {_np(disp).shape}")
    return d


def _mask(mask, shape) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    m = _np(mask).astype(bool)
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.shape != tuple(shape):
        raise ValueError(f"mask {m.shape} does not match the map {tuple(shape)}")
    return m


def _normalize(x: np.ndarray, eps: float = 1e-20) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, eps)


def dilate(maps: np.ndarray, mask: np.ndarray, pixels: int = 8, fill=0.0) -> np.ndarray:
    """Grow the islands of ``maps`` (H, W) or (H, W, C) by ``pixels`` texels; texels still uncovered get
    ``fill``. Same rule as :func:`fitter.render.dilate_uv` (each new texel takes the mean of its covered
    8-neighbours, one ring per step), computed on the growing ring only (fast at 2048 x 2048)."""
    m = np.asarray(maps, np.float64)
    squeeze = m.ndim == 2
    out = (m[..., None] if squeeze else m).copy()
    H, W, C = out.shape
    cover = np.asarray(mask, bool).copy()
    out[~cover] = 0.0
    offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]
    for _ in range(int(pixels)):
        near = np.zeros((H + 2, W + 2), bool)
        for dr, dc in offsets:
            near[1 + dr:H + 1 + dr, 1 + dc:W + 1 + dc] |= cover
        rows, cols = np.nonzero(near[1:-1, 1:-1] & ~cover)
        if not len(rows):
            break
        total = np.zeros((len(rows), C))
        count = np.zeros(len(rows))
        for dr, dc in offsets:
            r, c = rows + dr, cols + dc
            ok = (r >= 0) & (r < H) & (c >= 0) & (c < W)
            r, c = np.clip(r, 0, H - 1), np.clip(c, 0, W - 1)
            ok &= cover[r, c]
            total += out[r, c] * ok[:, None]
            count += ok
        out[rows, cols] = total / count[:, None]
        cover[rows, cols] = True
    out[~cover] = np.broadcast_to(np.asarray(fill, np.float64), (C,))
    return out[..., 0] if squeeze else out


def sample_map(image: np.ndarray, uv: np.ndarray, tile: int = 0) -> np.ndarray:
    """Bilinear look-up of ``image`` (H, W) or (H, W, C) at OBJ UVs (N, 2) of UDIM tile ``tile``.

    Texel (r, c) is centred at u = tile + (c + 0.5) / W, v = 1 - (r + 0.5) / H; outside the texel centres the
    edge texels are repeated (clamp) — the same as ``grid_sample(align_corners=False, padding_mode="border")``.
    """
    img = np.asarray(image, np.float64)
    H, W = img.shape[:2]
    uv = np.asarray(uv, np.float64)
    x = (uv[:, 0] - tile) * W - 0.5
    y = (1.0 - uv[:, 1]) * H - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = np.clip(x0, 0, W - 1), np.clip(x0 + 1, 0, W - 1)
    ya, yb = np.clip(y0, 0, H - 1), np.clip(y0 + 1, 0, H - 1)
    if img.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = img[ya, xa] * (1 - fx) + img[ya, xb] * fx
    bottom = img[yb, xa] * (1 - fx) + img[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


def face_triangles(topology: Topology, material: str | None = FACE_MATERIAL) -> np.ndarray:
    """Triangles that the face maps cover: those of ``material`` when the model has it, else every triangle
    whose UVs lie in tile 0 (u in [0, 1])."""
    if material and material in topology.material_names:
        return topology.material_triangles(material)
    u = topology.uvs[topology.triangle_uvs][..., 0]
    return np.flatnonzero(((u >= 0) & (u <= 1)).all(1))


def uv_mask(topology: Topology, size, material: str | None = FACE_MATERIAL) -> np.ndarray:
    """(H, W) bool: texels of the face tile covered by the face material's UV islands."""
    from ..render import uv_fragments

    return uv_fragments(topology.triangle_uvs, topology.uvs, size, face_triangles(topology, material)).mask.numpy()


def vertex_normals_np(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, exactly :func:`fitter.render.vertex_normals` (float64 numpy)."""
    from ..render import vertex_normals

    v = torch.from_numpy(np.ascontiguousarray(vertices, np.float64))[None]
    return vertex_normals(v, torch.as_tensor(np.asarray(triangles, np.int64)))[0].numpy()


# ---------------------------------------------------------------------------------------------- PNG


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, text: dict[str, str] | None = None, srgb: bool = False) -> bytes:
    """PNG bytes of a uint8 / uint16 image (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA.

    ``text`` becomes tEXt chunks (Latin-1 keyword up to 79 bytes, e.g. ``facefit:scale``); ``srgb`` adds an
    sRGB chunk (colour data). Rows are Paeth-filtered and deflated with zlib.
    """
    img = np.asarray(image)
    if img.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG needs uint8 or uint16 samples, got {img.dtype}")
    if img.ndim == 2:
        img = img[..., None]
    H, W, C = img.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[C]
    depth = 8 * img.dtype.itemsize
    rows = np.ascontiguousarray(img.astype(img.dtype.newbyteorder(">"))).view(np.uint8).reshape(H, -1)
    bpp = C * img.dtype.itemsize
    raw = rows.astype(np.int16)
    a = np.zeros_like(raw)
    a[:, bpp:] = raw[:, :-bpp]
    b = np.zeros_like(raw)
    b[1:] = raw[:-1]
    c = np.zeros_like(raw)
    c[1:, bpp:] = raw[:-1, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    filtered = ((raw - pred) % 256).astype(np.uint8)
    data = np.concatenate([np.full((H, 1), 4, np.uint8), filtered], 1).tobytes()
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, colour_type, 0, 0, 0))
    if srgb:
        out += _png_chunk(b"sRGB", b"\0")
    for key, value in (text or {}).items():
        k = key.encode("latin-1")
        if not 1 <= len(k) <= 79:
            raise ValueError(f"PNG text keyword {key!r}: 1 to 79 bytes")
        out += _png_chunk(b"tEXt", k + b"\0" + str(value).encode("latin-1", "replace"))
    out += _png_chunk(b"IDAT", zlib.compress(data, 6)) + _png_chunk(b"IEND", b"")
    return out


def read_png_text(path: Path | bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG file as a dict (to read ``facefit:scale`` / ``facefit:offset`` back)."""
    buf = path if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
    if buf[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, out = 8, {}
    while pos + 8 <= len(buf):
        (n,) = struct.unpack_from(">I", buf, pos)
        kind = buf[pos + 4:pos + 8]
        if kind == b"tEXt":
            key, _, value = buf[pos + 8:pos + 8 + n].partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            break
        pos += 12 + n
    return out


def write_png(path: Path, image: np.ndarray, text: dict[str, str] | None = None, srgb: bool = False) -> Path:
    """Atomic :func:`encode_png`."""
    return atomic_write_bytes(path, encode_png(image, text, srgb))


# ---------------------------------------------------------------------------------------------- displacement


def png16_scale_offset(values: np.ndarray) -> tuple[float, float]:
    """(scale, offset) so that [min, max] of ``values`` and 0 map into [0, 65535]: offset = min(values, 0),
    scale = max(values, 0) - offset (1 when everything is 0)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    lo = min(float(v.min()) if v.size else 0.0, 0.0)
    hi = max(float(v.max()) if v.size else 0.0, 0.0)
    scale = hi - lo
    return (scale if scale > 0 else 1.0), lo


def encode_png16(values: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """uint16 codes: round((value - offset) / scale * 65535), clipped to [0, 65535]."""
    q = np.round((np.asarray(values, np.float64) - offset) / scale * 65535.0)
    return np.clip(np.nan_to_num(q), 0, 65535).astype(np.uint16)


def decode_png16(codes: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """value_cm = png / 65535 * scale + offset (float64)."""
    return np.asarray(codes, np.float64) / 65535.0 * scale + offset


def write_displacement(folder: Path, disp_cm, mask=None, dilate_px: int = 8, compression: str = "zip",
                       stem: str = "displacement", png: bool = True) -> dict:
    """Write ``displacement.exr`` (float32, cm) and ``displacement.png`` (16-bit) into ``folder``.

    disp_cm: (H, W) (or (1, 1, H, W), numpy or torch) displacement in centimetres along mesh.obj's vertex
    normals over the M_Face UV tile, row 0 at v = 1. mask: (H, W) bool, the texels inside the UV islands
    (e.g. :func:`uv_mask`); values are dilated ``dilate_px`` texels beyond them and 0 further out. None: all
    texels are valid.

    Returns ``{"scale", "offset", "units": "cm", "files", "quantisation_cm", "size"}``: the PNG decodes as
    value_cm = png / 65535 * scale + offset (store scale/offset in params.npz); the EXR holds value_cm itself
    (its header says ``scale`` 1, ``offset`` 0).
    """
    folder = Path(folder)
    d = _map2d(disp_cm)
    m = _mask(mask, d.shape)
    d = dilate(np.where(m, d, 0.0), m, dilate_px, fill=0.0)
    files = []
    common = {"units": "cm", "meaning": DISPLACEMENT_MEANING, "uvLayout": UV_LAYOUT,
              "software": f"facefit {__version__}"}
    write_exr(folder / f"{stem}.exr", d.astype(np.float32), compression,
              {**common, "scale": 1.0, "offset": 0.0})
    files.append(f"{stem}.exr")
    scale, offset = png16_scale_offset(d)
    if png:
        text = {"facefit:scale": repr(scale), "facefit:offset": repr(offset), "facefit:units": "cm",
                "facefit:formula": "value_cm = png / 65535 * scale + offset",
                "facefit:meaning": DISPLACEMENT_MEANING, "facefit:uv_layout": UV_LAYOUT,
                "Software": f"facefit {__version__}"}
        write_png(folder / f"{stem}.png", encode_png16(d, scale, offset), text)
        files.append(f"{stem}.png")
    return {"scale": scale, "offset": offset, "units": "cm", "files": files,
            "quantisation_cm": scale / 65535.0, "size": list(d.shape)}


def read_displacement_png(path: Path) -> tuple[np.ndarray, dict]:
    """Decode a ``displacement.png`` written by :func:`write_displacement`: (values_cm (H, W), its tEXt)."""
    import cv2

    text = read_png_text(path)
    codes = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return decode_png16(codes, float(text["facefit:scale"]), float(text["facefit:offset"])), text


# ---------------------------------------------------------------------------------------------- tangent frames


@dataclass
class TangentFrames:
    """Tangent frames of a mesh's UV layout, one per *wedge*: a (vertex, UV) pair — an OBJ ``v/vt`` corner.

    A vertex inside a UV island has one wedge; a vertex on a UV seam has one wedge per island, each with its
    own tangent (the UV directions differ across the seam) and the same normal. ``per_vertex()`` averages
    them for code that wants one frame per vertex.

    tangent, bitangent, normal: (W, 3) unit vectors, orthonormal; bitangent = sign * cross(normal, tangent).
    sign: (W,) +1 / -1 (handedness: -1 where the UVs are mirrored). wedge_vertex / wedge_uv: (W,) indices.
    triangle_wedges: (T, 3) wedge of each corner of ``topology.triangles``. triangle_du / triangle_dv:
    (T, 3) dp/du and dp/dv of each triangle (cm per UV unit; zero for degenerate UV triangles).
    """

    tangent: np.ndarray
    bitangent: np.ndarray
    normal: np.ndarray
    sign: np.ndarray
    wedge_vertex: np.ndarray
    wedge_uv: np.ndarray
    triangle_wedges: np.ndarray
    triangle_du: np.ndarray
    triangle_dv: np.ndarray
    num_vertices: int

    def per_vertex(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tangent, bitangent, normal), each (V, 3): wedges averaged per vertex, re-orthonormalised
        (exact inside UV islands; a compromise on seams). Unused vertices get zeros."""
        V = self.num_vertices
        normal = np.zeros((V, 3))
        normal[self.wedge_vertex] = self.normal
        t = np.zeros((V, 3))
        np.add.at(t, self.wedge_vertex, self.tangent)
        b = np.zeros((V, 3))
        np.add.at(b, self.wedge_vertex, self.bitangent)
        t = _normalize(t - (t * normal).sum(-1, keepdims=True) * normal)
        sign = np.where((np.cross(normal, t) * b).sum(-1) < 0, -1.0, 1.0)
        return t, sign[:, None] * np.cross(normal, t), normal


def _any_perpendicular(n: np.ndarray) -> np.ndarray:
    helper = np.where(np.abs(n[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    return _normalize(np.cross(np.cross(n, helper), n))


def tangent_frames(vertices, topology: Topology, normals=None) -> TangentFrames:
    """MikkTSpace-like tangent frames from the mesh's UVs.

    Per triangle, dp/du (tangent) and dp/dv (bitangent) are solved from its edges and UV edges. At each
    corner both are projected onto the plane of the vertex normal, normalised, and accumulated into the
    corner's wedge weighted by the corner angle. The wedge's tangent is the normalised sum; its sign is that
    of dot(cross(n, t), sum of bitangents), and bitangent = sign * cross(n, t) — what a MikkTSpace shader
    rebuilds (Blender's Normal Map node, Maya, Unreal...). ``normals`` defaults to the area-weighted vertex
    normals of :func:`fitter.render.vertex_normals` over all triangles.

    Differences from the reference MikkTSpace (so DCCs may differ slightly, mostly on UV seams, at mirrored
    or degenerate UVs, and where the DCC's own vertex normals differ from ours): quads are treated as their
    two triangles, wedges are not split further by handedness or by angle, degenerate UV triangles are
    skipped (a wedge with no usable triangle gets an arbitrary perpendicular tangent).
    """
    V = _vertices(vertices)
    tri = np.asarray(topology.triangles, np.int64)
    tuv = np.asarray(topology.triangle_uvs, np.int64)
    uv = np.asarray(topology.uvs, np.float64)
    U = max(len(uv), 1)
    key = (tri * U + tuv).ravel()
    uniq, inv = np.unique(key, return_inverse=True)
    tw = inv.reshape(tri.shape)
    wv, wuv = uniq // U, uniq % U
    n_vert = _normalize(_np(normals).astype(np.float64)) if normals is not None else vertex_normals_np(V, tri)

    p = V[tri]
    t = uv[tuv]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    uv_area = np.abs(det)
    ok = uv_area > 1e-14 * max(float(np.median(uv_area)) if len(uv_area) else 0.0, 1e-300)
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)[:, None]
    su = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inv_det  # dp/du
    sv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inv_det  # dp/dv

    n_w = len(uniq)
    t_acc = np.zeros((n_w, 3))
    b_acc = np.zeros((n_w, 3))
    for k in range(3):
        a = p[:, (k + 1) % 3] - p[:, k]
        b = p[:, (k + 2) % 3] - p[:, k]
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
        angle = np.arccos(np.clip(cos, -1.0, 1.0)) * ok
        n = n_vert[tri[:, k]]
        tk = _normalize(su - (su * n).sum(1, keepdims=True) * n)
        bk = _normalize(sv - (sv * n).sum(1, keepdims=True) * n)
        np.add.at(t_acc, tw[:, k], tk * angle[:, None])
        np.add.at(b_acc, tw[:, k], bk * angle[:, None])
    normal = n_vert[wv]
    tangent = t_acc - (t_acc * normal).sum(1, keepdims=True) * normal
    length = np.linalg.norm(tangent, axis=1)
    bad = length < 1e-12
    tangent = _normalize(tangent)
    if bad.any():
        tangent[bad] = _any_perpendicular(normal[bad])
    sign = np.where((np.cross(normal, tangent) * b_acc).sum(1) < 0, -1.0, 1.0)
    bitangent = sign[:, None] * np.cross(normal, tangent)
    return TangentFrames(tangent, bitangent, normal, sign, wv, wuv, tw, su, sv, topology.num_vertices)


# ---------------------------------------------------------------------------------------------- normal map


def uv_gradient(disp: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(d/du, d/dv) of a UV map (H, W) in value units per UV unit, by finite differences between texels of
    the mask: central where both neighbours are inside, one-sided at island borders, 0 for isolated texels.
    Row r is v = 1 - (r + 0.5) / H, so d/dv is minus the row difference."""
    d = np.asarray(disp, np.float64)
    m = np.ones(d.shape, bool) if mask is None else np.asarray(mask, bool)
    H, W = d.shape

    def along(x, mm, axis):
        fwd = np.zeros_like(x)
        okf = np.zeros_like(mm)
        sl_a = [slice(None)] * 2
        sl_b = [slice(None)] * 2
        sl_a[axis], sl_b[axis] = slice(None, -1), slice(1, None)
        diff = x[tuple(sl_b)] - x[tuple(sl_a)]
        pair = mm[tuple(sl_b)] & mm[tuple(sl_a)]
        fwd[tuple(sl_a)] = diff
        okf[tuple(sl_a)] = pair
        bwd = np.zeros_like(x)
        okb = np.zeros_like(mm)
        bwd[tuple(sl_b)] = diff
        okb[tuple(sl_b)] = pair
        count = okf.astype(np.float64) + okb
        return np.where(count > 0, (fwd * okf + bwd * okb) / np.maximum(count, 1), 0.0)

    return along(d, m, 1) * W, -along(d, m, 0) * H


def normal_map_from_displacement(vertices, topology: Topology, disp_cm, size=None, mask=None,
                                 material: str | None = FACE_MATERIAL, normals=None,
                                 frames: TangentFrames | None = None) -> np.ndarray:
    """Tangent-space normal map (S, S, 3) in [0, 1] of the surface displaced by ``disp_cm``.

    vertices: (V, 3) mesh.obj's vertices (cm); disp_cm: (H, W) displacement map (cm along the vertex normals,
    face tile, row 0 at v = 1); size: the normal map's size (int or (S_h, S_w); default the displacement's);
    mask: the displacement's valid texels (default: the face material's UV coverage at its resolution).

    Per texel of the normal map: the smooth normal n, tangent t and bitangent b are interpolated from the
    wedges of :func:`tangent_frames` (t re-orthogonalised, b = sign * cross(n, t)); the displacement's UV
    gradient (d_u, d_v) (finite differences, bilinearly resampled) is turned into a surface gradient
    g = J^-T (d_u, d_v), with J the 2 x 2 map from UV to (t, b) given by the triangle's dp/du and dp/dv (the
    UV-to-surface metric, so a UV island stretched on the surface gets proportionally gentler slopes); the
    displaced normal is n - g_t t - g_b b, i.e. in tangent space normalize(-g_t, -g_b, 1). This is first
    order in d (the change of n along the surface is ignored), as a normal map applied to mesh.obj assumes.
    Encoding: rgb = 0.5 * (x, y, z) + 0.5, OpenGL convention (+Y up: green is the component along +v).
    Texels outside the face islands are dilated, then flat (0.5, 0.5, 1).
    """
    from ..render import uv_fragments

    V = _vertices(vertices)
    d = _map2d(disp_cm)
    H, W = d.shape
    if size is None:
        size = (H, W)
    Sh, Sw = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    tris = face_triangles(topology, material)
    m = uv_mask(topology, (H, W), material) if mask is None else _mask(mask, d.shape)
    du, dv = uv_gradient(d, m)
    grad = dilate(np.stack([du, dv], -1), m, 2, fill=0.0)

    frags = uv_fragments(topology.triangle_uvs, topology.uvs, (Sh, Sw), tris)
    tid = frags.triangle_id.numpy()
    covered = tid >= 0
    out = np.zeros((Sh, Sw, 3))
    out[..., 2] = 1.0
    if covered.any():
        rows, cols = np.nonzero(covered)
        t_id = tid[covered]
        bary = frags.bary.numpy()[covered].astype(np.float64)
        uv = np.stack([(cols + 0.5) / Sw, 1.0 - (rows + 0.5) / Sh], 1)
        g_uv = sample_map(grad, uv)  # (N, 2)
        fr = frames if frames is not None else tangent_frames(V, topology, normals)
        w = fr.triangle_wedges[t_id]
        n = _normalize((bary[..., None] * fr.normal[w]).sum(1))
        t = (bary[..., None] * fr.tangent[w]).sum(1)
        t = _normalize(t - (t * n).sum(1, keepdims=True) * n)
        sign = np.where((bary * fr.sign[w]).sum(1) < 0, -1.0, 1.0)
        b = sign[:, None] * np.cross(n, t)
        su, sv = fr.triangle_du[t_id], fr.triangle_dv[t_id]
        # J = [[t.su, t.sv], [b.su, b.sv]]; solve J^T g = (d_u, d_v).
        j00, j01 = (t * su).sum(1), (t * sv).sum(1)
        j10, j11 = (b * su).sum(1), (b * sv).sum(1)
        det = j00 * j11 - j01 * j10
        ok = np.abs(det) > 1e-12 * np.maximum(np.abs(j00 * j11) + np.abs(j01 * j10), 1e-300)
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        # J^T = [[j00, j10], [j01, j11]]; its inverse = [[j11, -j10], [-j01, j00]] / det.
        gt = (j11 * g_uv[:, 0] - j10 * g_uv[:, 1]) * inv
        gb = (-j01 * g_uv[:, 0] + j00 * g_uv[:, 1]) * inv
        local = _normalize(np.stack([-gt, -gb, np.ones_like(gt)], 1))
        out[covered] = local
    rgb = dilate(out * 0.5 + 0.5, covered, 8, fill=(0.5, 0.5, 1.0))
    return rgb.astype(np.float32)


def decode_normal_map(rgb: np.ndarray, directx: bool = False) -> np.ndarray:
    """[0, 1] texels -> unit tangent-space vectors (x along the tangent, y along the bitangent (+v), z the
    normal). ``directx=True`` reads a green-down (DirectX) map."""
    v = np.asarray(rgb, np.float64) * 2.0 - 1.0
    if directx:
        v = v * np.array([1.0, -1.0, 1.0])
    return _normalize(v)


def write_normal_map(folder: Path, normals: np.ndarray, bits: int = 8, stem: str = "normal") -> Path:
    """Write ``normal.png`` from an (S, S, 3) map in [0, 1] (e.g. :func:`normal_map_from_displacement`):
    8-bit (default) or 16-bit RGB, non-colour data (no sRGB chunk), OpenGL / +Y convention."""
    rgb = np.clip(np.asarray(_np(normals), np.float64), 0.0, 1.0)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"normal map must be (S, S, 3), got {rgb.shape}")
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    top = 255 if bits == 8 else 65535
    codes = np.round(rgb * top).astype(np.uint8 if bits == 8 else np.uint16)
    text = {"facefit:convention": NORMAL_CONVENTION, "facefit:uv_layout": UV_LAYOUT,
            "facefit:colorspace": "non-color (linear data): decode n = 2 * rgb - 1",
            "Software": f"facefit {__version__}"}
    return write_png(Path(folder) / f"{stem}.png", codes, text)


# ---------------------------------------------------------------------------------------------- albedo


def write_albedo(folder: Path, albedo, mask=None, linear: bool = True, dilate_px: int = 8,
                 stem: str = "albedo") -> Path:
    """Write ``albedo.png``: 8-bit sRGB RGB (with an sRGB chunk).

    albedo: (3, S, S) (or (1, 3, S, S), numpy or torch) in [0, 1], row 0 at v = 1; **linear** RGB by default
    (facefit's fitted albedo is linear: it multiplies the linear SH shading) and converted with
    :func:`linear_to_srgb`; pass ``linear=False`` for data already in sRGB. mask: (S, S) texels inside the
    UV islands; values are dilated ``dilate_px`` texels beyond them, the rest is the islands' mean colour.
    """
    a = _np(albedo).astype(np.float64)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3 or a.shape[0] != 3:
        raise ValueError(f"albedo must be (3, S, S), got {a.shape}")
    a = a.transpose(1, 2, 0)
    m = _mask(mask, a.shape[:2])
    mean = a[m].mean(0) if m.any() else np.full(3, 0.5)
    a = dilate(np.where(m[..., None], a, 0.0), m, dilate_px, fill=mean)
    srgb = linear_to_srgb(a) if linear else np.clip(a, 0.0, 1.0)
    codes = np.round(srgb * 255.0).astype(np.uint8)
    text = {"facefit:colorspace": "sRGB (converted from the fitted linear albedo)" if linear else "sRGB",
            "facefit:uv_layout": UV_LAYOUT, "Software": f"facefit {__version__}"}
    return write_png(Path(folder) / f"{stem}.png", codes, text, srgb=True)


def albedo_map_from_vertices(vertex_albedo, topology: Topology, size=1024,
                             material: str | None = FACE_MATERIAL) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex albedo (V, 3) (e.g. ``AlbedoBasis.per_vertex``) -> a UV map (3, S, S) of the face tile and
    its mask (S, S), interpolated over the face material's triangles with :func:`fitter.render.render_uv`
    (linear in, linear out: pass the result to :func:`write_albedo`)."""
    from ..render import render_uv

    colours = torch.as_tensor(_np(vertex_albedo), dtype=torch.float64).reshape(-1, 3)
    maps, mask = render_uv(colours, topology.triangles, topology.triangle_uvs, topology.uvs, size,
                           triangle_subset=face_triangles(topology, material))
    return maps[0].numpy(), mask.numpy()


# ---------------------------------------------------------------------------------------------- materials


def face_textures(folder: Path | None = None, displacement: dict | None = None, material: str = FACE_MATERIAL,
                  files: list[str] | None = None, bump_as_normal: bool = False,
                  bump_strength: float = 1.0) -> dict[str, dict[str, str]]:
    """MTL entries for the maps, ``{material: {key: value}}`` for :func:`fitter.export.obj.mtl_text`.

    Lists the maps present in ``folder`` (or named in ``files``):

    - ``albedo.png`` -> ``map_Kd albedo.png`` and ``Kd 1 1 1`` (MTL multiplies the texture by Kd). Blender's
      and Maya's OBJ importers connect it to the base colour.
    - ``normal.png`` -> ``norm normal.png``: the common extension key for tangent-space normal maps (three.js,
      tinyobjloader...). Blender's importer ignores it. ``bump_as_normal=True`` adds ``map_Bump -bm
      <strength> normal.png``, which Blender's importer (checked with Blender 5.0.1) turns into a tangent-space
      Normal Map node — but with the image left in sRGB, which tilts every normal (a flat map bakes as a
      39-degree tilt), and which Maya reads as a *height* bump; so it is off by default.
    - ``displacement.png`` -> ``disp -mm <offset> <scale> displacement.png`` (the MTL spec's ``-mm base
      gain``: value = offset + scale * texel, in cm) when ``displacement`` (the dict returned by
      :func:`write_displacement`) is given. Blender's importer ignores ``disp``.

    The EXR is not referenced from the MTL (few OBJ importers read EXR); examples/blender_import.py and
    docs/exports.md set the maps up properly.
    """
    present = set(files) if files is not None else (
        {p.name for p in Path(folder).iterdir()} if folder is not None and Path(folder).is_dir() else set())
    entries: dict[str, str] = {}
    if "albedo.png" in present:
        entries["Kd"] = "1.000 1.000 1.000"
        entries["map_Kd"] = "albedo.png"
    if "normal.png" in present:
        entries["norm"] = "normal.png"
        if bump_as_normal:
            entries["map_Bump"] = f"-bm {bump_strength:g} normal.png"
    if "displacement.png" in present and displacement is not None:
        entries["disp"] = f"-mm {displacement['offset']!r} {displacement['scale']!r} displacement.png"
    return {material: entries} if entries else {}


def write_material(folder: Path, topology: Topology, stem: str = "mesh",
                   textures: dict[str, dict[str, str]] | None = None) -> Path:
    """(Re)write ``<stem>.mtl`` with the texture entries (default: :func:`face_textures` of ``folder``,
    without displacement); the other materials keep their colours."""
    from ..common.files import write_text

    folder = Path(folder)
    textures = face_textures(folder) if textures is None else textures
    path = folder / f"{stem}.mtl"
    write_text(path, mtl_text(topology.material_names, textures))
    return path


def export_maps(folder: Path, vertices, topology: Topology, displacement=None, albedo=None, mask=None,
                normal_size=None, normal_bits: int = 8, albedo_linear: bool = True, albedo_size: int = 1024,
                detail_levels: int | None = None, detail_region: str | None = "face",
                mtl_stem: str = "mesh") -> dict:
    """Everything for DCC tools in one call: ``displacement.exr/.png``, ``normal.png``, ``albedo.png``,
    the updated ``<mtl_stem>.mtl``, and optionally ``mesh_detail.obj`` (``detail_levels``).

    vertices: mesh.obj's vertices (V, 3) in cm; displacement: (H, W) cm or None; albedo: linear RGB, a UV map
    (3, S, S) or per-vertex colours (V, 3) (rendered into an ``albedo_size`` map), or None; mask: the
    displacement's valid texels (default: the face material's UV coverage). Returns a dict for params.npz /
    report.json: files, displacement scale/offset/units, normal-map convention.
    """
    if not getattr(topology, "has_uvs", True):
        raise ValueError("this model has no UVs: texture and displacement maps cannot be exported")
    folder = Path(folder)
    result: dict = {"files": []}
    disp_info = None
    if displacement is not None:
        d = _map2d(displacement)
        m = uv_mask(topology, d.shape) if mask is None else _mask(mask, d.shape)
        disp_info = write_displacement(folder, d, m)
        result["displacement"] = {k: v for k, v in disp_info.items() if k != "files"}
        result["files"] += disp_info["files"]
        nmap = normal_map_from_displacement(vertices, topology, d, normal_size, m)
        write_normal_map(folder, nmap, normal_bits)
        result["files"].append("normal.png")
        result["normal_map"] = {"convention": NORMAL_CONVENTION, "size": list(nmap.shape[:2]), "bits": normal_bits}
    if albedo is not None:
        a = _np(albedo)
        if a.ndim == 2 and a.shape == (topology.num_vertices, 3):  # per-vertex albedo: render it into UV
            a, amask = albedo_map_from_vertices(a, topology, albedo_size)
        else:
            amask = uv_mask(topology, tuple(a.shape[-2:]))
        write_albedo(folder, a, amask, linear=albedo_linear)
        result["files"].append("albedo.png")
    textures = face_textures(folder, disp_info, files=result["files"])
    write_material(folder, topology, mtl_stem, textures)
    result["files"].append(f"{mtl_stem}.mtl")
    if displacement is not None and detail_levels:
        from .detail_mesh import detail_textures, write_detail_mesh

        path = write_detail_mesh(folder, vertices, topology, displacement, levels=detail_levels,
                                 region=detail_region, textures=detail_textures(files=result["files"]))
        result["files"] += [path.name, path.with_suffix(".mtl").name]
    return result
