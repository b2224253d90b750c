"""``normal.png``: the tangent-space normal map of mesh.obj displaced by the displacement map.

OpenGL convention (+Y, green up: Blender, Maya, Houdini, Substance "OpenGL"), 8-bit (or 16-bit), non-colour
data, relative to mesh.obj's smooth normals. For DirectX / Unreal invert the green channel (g' = 1 - g).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from ..common.arrays import as_numpy, one_frame_vertices, scalar_map, texel_mask, unit_vectors
from ..common.filters import dilate_map
from ..common.uv_lookup import sample_map
from ..model.topology import FACE_MATERIAL, Topology
from ..render import uv_fragments
from .png import write_png
from .tangents import TangentFrames, tangent_frames
from .uv_layout import UV_LAYOUT, face_triangles, uv_mask

NORMAL_CONVENTION = ("tangent space, OpenGL / +Y (green up); tangents from mesh.obj's UVs (MikkTSpace-like); "
                     "for DirectX/Unreal use 1 - green")
FLAT_NORMAL_RGB = (0.5, 0.5, 1.0)  # the encoded tangent-space normal (0, 0, 1)
GRADIENT_DILATE_PX = 2  # the displacement's UV gradient is grown this far so border texels have one to sample
NORMAL_DILATE_PX = 8  # the normal map's islands are grown this far before the flat background
# A UV-to-surface Jacobian whose determinant is below this fraction of its terms is singular: no tilt there.
SINGULAR_JACOBIAN = 1e-12


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
        total = np.where(okf, fwd, 0.0) + np.where(okb, bwd, 0.0)  # texels outside may hold NaN: never read
        return np.where(count > 0, total / np.maximum(count, 1), 0.0)

    return along(d, m, 1) * W, -along(d, m, 0) * H


def normal_map_from_displacement(vertices, topology: Topology, disp_cm, size=None, mask=None,
                                 material: str | None = FACE_MATERIAL, normals=None,
                                 frames: TangentFrames | None = None) -> np.ndarray:
    """Tangent-space normal map (S, S, 3) in [0, 1] of the surface displaced by ``disp_cm``.

    vertices: (V, 3) mesh.obj's vertices (cm); disp_cm: (H, W) displacement map (cm along the vertex normals,
    face tile, row 0 at v = 1); size: the normal map's size (int or (S_h, S_w); default the displacement's);
    mask: the displacement's valid texels (default: the face material's UV coverage at its resolution).

    Per texel of the normal map: the smooth normal n, tangent t and bitangent b are interpolated from the
    wedges of :func:`fitter.export.tangents.tangent_frames` (t re-orthogonalised, b = sign * cross(n, t)); the
    displacement's UV gradient (d_u, d_v) (finite differences, bilinearly resampled) is turned into a surface
    gradient g = J^-T (d_u, d_v), with J the 2 x 2 map from UV to (t, b) given by the triangle's dp/du and
    dp/dv (the UV-to-surface metric, so a UV island stretched on the surface gets proportionally gentler
    slopes); the displaced normal is n - g_t t - g_b b, i.e. in tangent space normalize(-g_t, -g_b, 1). This
    is first order in d (the change of n along the surface is ignored), as a normal map applied to mesh.obj
    assumes. Encoding: rgb = 0.5 * (x, y, z) + 0.5, OpenGL convention (+Y up: green is the component along
    +v). Texels outside the face islands are dilated, then flat (0.5, 0.5, 1).
    """
    V = one_frame_vertices(vertices)
    d = scalar_map(disp_cm)
    H, W = d.shape
    if size is None:
        size = (H, W)
    Sh, Sw = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    tris = face_triangles(topology, material)
    m = uv_mask(topology, (H, W), material) if mask is None else texel_mask(mask, d.shape)
    du, dv = uv_gradient(d, m)
    grad = dilate_map(np.stack([du, dv], -1), m, GRADIENT_DILATE_PX, fill=0.0)

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
        n = unit_vectors((bary[..., None] * fr.normal[w]).sum(1))
        t = (bary[..., None] * fr.tangent[w]).sum(1)
        t = unit_vectors(t - (t * n).sum(1, keepdims=True) * n)
        sign = np.where((bary * fr.sign[w]).sum(1) < 0, -1.0, 1.0)
        b = sign[:, None] * np.cross(n, t)
        su, sv = fr.triangle_du[t_id], fr.triangle_dv[t_id]
        # J = [[t.su, t.sv], [b.su, b.sv]]; solve J^T g = (d_u, d_v).
        j00, j01 = (t * su).sum(1), (t * sv).sum(1)
        j10, j11 = (b * su).sum(1), (b * sv).sum(1)
        det = j00 * j11 - j01 * j10
        ok = np.abs(det) > SINGULAR_JACOBIAN * np.maximum(np.abs(j00 * j11) + np.abs(j01 * j10), 1e-300)
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        # J^T = [[j00, j10], [j01, j11]]; its inverse = [[j11, -j10], [-j01, j00]] / det.
        gt = (j11 * g_uv[:, 0] - j10 * g_uv[:, 1]) * inv
        gb = (-j01 * g_uv[:, 0] + j00 * g_uv[:, 1]) * inv
        out[covered] = unit_vectors(np.stack([-gt, -gb, np.ones_like(gt)], 1))
    rgb = dilate_map(out * 0.5 + 0.5, covered, NORMAL_DILATE_PX, fill=FLAT_NORMAL_RGB)
    return rgb.astype(np.float32)


def decode_normal_map(rgb: np.ndarray, directx: bool = False) -> np.ndarray:
    """[0, 1] texels -> unit tangent-space vectors (x along the tangent, y along the bitangent (+v), z the
    normal). ``directx=True`` reads a green-down (DirectX) map."""
    v = np.asarray(rgb, np.float64) * 2.0 - 1.0
    if directx:
        v = v * np.array([1.0, -1.0, 1.0])
    return unit_vectors(v)


def write_normal_map(folder: Path, normals: np.ndarray, bits: int = 8, stem: str = "normal") -> Path:
    """Write ``normal.png`` from an (S, S, 3) map in [0, 1] (e.g. :func:`normal_map_from_displacement`):
    8-bit (default) or 16-bit RGB, non-colour data (no sRGB chunk), OpenGL / +Y convention."""
    rgb = np.clip(np.asarray(as_numpy(normals), np.float64), 0.0, 1.0)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"normal map must be (S, S, 3), got {rgb.shape}")
    if bits not in (8, 16):
        raise ValueError(f"normal map bits must be 8 or 16, got {bits}")
    top = 255 if bits == 8 else 65535
    codes = np.round(rgb * top).astype(np.uint8 if bits == 8 else np.uint16)
    text = {"facefit:convention": NORMAL_CONVENTION, "facefit:uv_layout": UV_LAYOUT,
            "facefit:colorspace": "non-color (linear data): decode n = 2 * rgb - 1",
            "Software": f"facefit {__version__}"}
    return write_png(Path(folder) / f"{stem}.png", codes, text)
