"""Normals, spherical-harmonics Lambertian shading, grey renders and label masks.

SH basis (real, orthonormal, second order; the order used for the 9 coefficients)::

    k  (l, m)   Y_k(n), n = (x, y, z) unit normal in the camera frame (x right, y down, z forward)
    0  (0, 0)   1 / (2 sqrt(pi))                 = 0.282095
    1  (1,-1)   sqrt(3 / (4 pi)) * y             = 0.488603 y
    2  (1, 0)   sqrt(3 / (4 pi)) * z             = 0.488603 z
    3  (1, 1)   sqrt(3 / (4 pi)) * x             = 0.488603 x
    4  (2,-2)   sqrt(15 / pi) / 2 * x y          = 1.092548 x y
    5  (2,-1)   sqrt(15 / pi) / 2 * y z          = 1.092548 y z
    6  (2, 0)   sqrt(5 / pi) / 4 * (3 z^2 - 1)   = 0.315392 (3 z^2 - 1)
    7  (2, 1)   sqrt(15 / pi) / 2 * x z          = 1.092548 x z
    8  (2, 2)   sqrt(15 / pi) / 4 * (x^2 - y^2)  = 0.546274 (x^2 - y^2)

The coefficients ``sh`` (F, 9, 3) are those of the distant *radiance* L(w) = sum_k sh_k Y_k(w), per colour
channel. :func:`sh_shading` returns E(n) / pi, the irradiance divided by pi (Ramamoorthi & Hanrahan 2001):

    shading(n) = sum_k A_l sh_k Y_k(n),   A_0 = 1, A_1 = 2/3, A_2 = 1/4

so that a Lambertian surface of albedo rho reflects radiance rho * shading(n). Uniform white light of
radiance 1 (``SH_NEUTRAL``: sh_0 = 2 sqrt(pi) = 3.5449, the rest 0) gives shading 1 everywhere.
Note that in the camera frame a surface facing the camera has n ~ (0, 0, -1): light coming from the camera
has a *negative* coefficient 2 and light from above a negative coefficient 1 (y points down).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as nnf

from .fragments import Fragments
from .interp import interpolate_packed
from .silhouette import antialias as _antialias

_Y0 = 0.5 / math.sqrt(math.pi)
_Y1 = math.sqrt(3.0 / (4.0 * math.pi))
_Y2 = 0.5 * math.sqrt(15.0 / math.pi)
_Y20 = 0.25 * math.sqrt(5.0 / math.pi)
_Y22 = 0.25 * math.sqrt(15.0 / math.pi)
# Lambertian convolution (A_l / pi): 1, 2/3, 1/4.
_A = (1.0, 2.0 / 3.0, 0.25)


def sh_basis(normals: torch.Tensor, lambertian: bool = False) -> torch.Tensor:
    """(..., 3) unit normals -> (..., 9) real SH basis values (with A_l folded in when ``lambertian``)."""
    x, y, z = normals.unbind(-1)
    a0, a1, a2 = _A if lambertian else (1.0, 1.0, 1.0)
    c0, c1, c2, c20, c22 = _Y0 * a0, _Y1 * a1, _Y2 * a2, _Y20 * a2, _Y22 * a2
    return torch.stack(
        [
            torch.full_like(x, c0),
            c1 * y,
            c1 * z,
            c1 * x,
            c2 * x * y,
            c2 * y * z,
            c20 * (3.0 * z * z - 1.0),
            c2 * x * z,
            c22 * (x * x - y * y),
        ],
        dim=-1,
    )


def sh_shading(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Lambertian shading E(n)/pi under SH lighting (see the module notes).

    normals: (F, H, W, 3) (or any (F, ..., 3)) unit normals in the camera frame; zero normals (background)
    give the constant term only. sh: (F, 9, 3), (1, 9, 3) or (9, 3); (F, 9) / (9,) for grey light.
    Returns (F, ..., 3) (or (F, ..., 1) for grey light).
    """
    if sh.dim() == 1:
        sh = sh[:, None]
    if sh.dim() == 2 and sh.shape[0] == 9:
        sh = sh[None]
    elif sh.dim() == 2:  # (F, 9) grey
        sh = sh[..., None]
    basis = sh_basis(normals, lambertian=True)  # (F, ..., 9)
    F = basis.shape[0]
    lead = basis.shape[1:-1]
    out = torch.bmm(basis.reshape(F, -1, 9), sh.to(basis.dtype).expand(F, 9, sh.shape[-1]))
    return out.reshape(F, *lead, sh.shape[-1])


def sh_directional(
    direction, diffuse: float = 1.0, ambient: float = 0.0, colour=(1.0, 1.0, 1.0)
) -> torch.Tensor:
    """SH coefficients (9, 3) whose shading approximates ``ambient + diffuse * max(0, n . d)``.

    direction: (3,) towards the light, camera frame (x right, y down, z forward); normalised here.
    A distant light of radiance pi * diffuse from d has coefficients pi * diffuse * Y_k(d); the ambient
    term is ambient / Y_0 on coefficient 0. Second-order SH smooths the clamped cosine (for diffuse = 1: mean
    error 0.03, largest 0.09, where the cosine changes sign and opposite the light).
    """
    d = torch.as_tensor(np.asarray(direction, np.float64)).reshape(3)
    d = d / d.norm()
    coeff = math.pi * diffuse * sh_basis(d)
    coeff[0] += ambient / _Y0
    return (coeff[:, None] * torch.as_tensor(colour, dtype=torch.float64)[None]).float()


def sh_rotation(rotation: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(9, 9) matrix taking SH coefficients of a radiance in frame A to those of the same radiance in frame B,
    where ``rotation`` (3, 3) maps A's directions to B's (``w_B = R w_A``): ``sh_B = M @ sh_A``.

    Used to light the views of a rig by one world-fixed light: each camera sees it rotated into its own frame.
    Each SH band is closed under rotation, so M is found exactly by least squares over a fixed spread of
    directions (no Wigner-D recurrences): ``Y(w) M = Y(R^T w)`` for row vectors of basis values.
    """
    R = torch.as_tensor(np.asarray(rotation, np.float64)).reshape(3, 3)
    k = torch.arange(64, dtype=torch.float64) + 0.5  # a Fibonacci sphere: well spread, deterministic
    z = 1.0 - 2.0 * k / 64
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    w = torch.stack([torch.sqrt(1 - z * z) * torch.cos(phi), torch.sqrt(1 - z * z) * torch.sin(phi), z], dim=-1)
    target = sh_basis(w @ R)  # row w R = (R^T w)^T: where each direction of frame B came from in frame A
    return torch.linalg.lstsq(sh_basis(w), target).solution.float()


#: Uniform white light: shading 1 for every normal (9, 3).
SH_NEUTRAL = sh_directional((0.0, 0.0, -1.0), diffuse=0.0, ambient=1.0)
#: Default light of grey renders: ambient 0.3 + a key light from the camera, slightly above and left.
SH_GREY = sh_directional((-0.3, -0.4, -1.0), diffuse=0.75, ambient=0.3)


def _corner_index(verts: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """(F * T * 3,) rows of verts.reshape(F * V, 3) holding each frame's triangle corners."""
    F, V = verts.shape[:2]
    offsets = torch.arange(F, device=verts.device)[:, None] * V
    return (triangles.reshape(1, -1) + offsets).reshape(-1)


def _raw_face_normals(verts: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    corners = verts.reshape(-1, 3).index_select(0, idx).reshape(-1, 3, 3)
    v0, v1, v2 = corners.unbind(1)
    return torch.cross(v1 - v0, v2 - v0, dim=-1)  # (F * T, 3)


def face_normals(verts: torch.Tensor, triangles: torch.Tensor | np.ndarray, unit: bool = True) -> torch.Tensor:
    """(F, V, 3) -> (F, T, 3) triangle normals (right-handed: outward for counter-clockwise triangles).

    With ``unit=False`` the length is twice the triangle's area (used for area weighting).
    """
    triangles = torch.as_tensor(triangles, device=verts.device).long()
    n = _raw_face_normals(verts, _corner_index(verts, triangles)).reshape(verts.shape[0], -1, 3)
    return nnf.normalize(n, dim=-1, eps=1e-12) if unit else n


def vertex_normals(verts: torch.Tensor, triangles: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(F, V, 3) -> (F, V, 3) unit vertex normals, area-weighted averages of the adjacent face normals.

    Vertices used by no triangle get a zero normal.
    """
    triangles = torch.as_tensor(triangles, device=verts.device).long()
    F, V = verts.shape[:2]
    idx = _corner_index(verts, triangles)
    n = _raw_face_normals(verts, idx)
    out = verts.new_zeros(F * V, 3).index_add(0, idx, n.repeat_interleave(3, dim=0))
    return nnf.normalize(out, dim=-1, eps=1e-12).reshape(F, V, 3)


def pixel_normals(
    frags: Fragments,
    verts: torch.Tensor,
    triangles: torch.Tensor | np.ndarray | None = None,
    smooth: bool = True,
    packed: bool = False,
) -> torch.Tensor:
    """Unit normals per pixel (F, H, W, 3), camera frame if ``verts`` are; 0 at background.

    smooth: interpolate vertex normals (Phong-style); else the flat normal of each pixel's triangle.
    ``triangles`` defaults to the rasterized ones. ``packed=True`` returns only covered pixels (N, 3).
    """
    triangles = frags.triangles if triangles is None else torch.as_tensor(triangles, device=verts.device).long()
    if smooth:
        n = interpolate_packed(frags, vertex_normals(verts, triangles), triangles)
    else:
        fn = face_normals(verts, triangles)  # (F, T, 3)
        frame = frags.pix_frame if fn.shape[0] > 1 else torch.zeros_like(frags.pix_triangle)
        n = fn.reshape(-1, 3)[frame * triangles.shape[0] + frags.pix_triangle]
    n = nnf.normalize(n, dim=-1, eps=1e-12)
    return n if packed else frags.scatter(n)


def shade_grey(
    frags: Fragments,
    verts: torch.Tensor,
    triangles: torch.Tensor | np.ndarray | None = None,
    sh: torch.Tensor | None = None,
    albedo: float = 0.8,
    background: float = 0.0,
    channels: int = 1,
    smooth: bool = True,
    antialias: bool = False,
) -> torch.Tensor:
    """Grey shaded render (F, H, W, channels) in [0, 1]: albedo * SH shading of the pixel normals.

    verts: the camera-space vertices that were rasterized (F, V, 3). sh defaults to ``SH_GREY`` (a fixed
    light, so renders of different fits are comparable: this is the perceptual critic's input). Colour
    light is averaged to grey. With ``antialias=True`` silhouettes are antialiased (and differentiable
    w.r.t. the vertex positions) with :func:`fitter.render.antialias`.
    """
    n = pixel_normals(frags, verts, triangles, smooth=smooth, packed=True)  # (N, 3)
    light = (SH_GREY if sh is None else sh).to(device=n.device, dtype=n.dtype)
    if light.dim() == 2:
        light = light[None]
    light = light.expand(frags.frames, 9, light.shape[-1])
    basis = sh_basis(n, lambertian=True)  # (N, 9)
    per_pixel = light[frags.pix_frame]  # (N, 9, C)
    shade = torch.bmm(basis[:, None, :], per_pixel)[:, 0].mean(-1, keepdim=True)
    grey = (albedo * shade).clamp(0.0, 1.0)
    image = frags.scatter(grey, background)
    if antialias:
        image = _antialias(image, frags)
    return image.expand(*image.shape[:-1], channels) if channels != 1 else image


def render_labels(
    frags: Fragments,
    vertex_labels: torch.Tensor | np.ndarray,
    num_labels: int | None = None,
    soft: bool = True,
) -> torch.Tensor:
    """Per-pixel part labels from per-vertex integer labels (e.g. ``Topology.vertex_labels["parts"]``).

    soft=True: (F, H, W, L) interpolation of the one-hot labels (differentiable w.r.t. the vertices through
    the barycentrics; antialias it for silhouette gradients); 0 at background.
    soft=False: (F, H, W) int64, the label with the largest total barycentric weight among the pixel's
    triangle corners (the argmax of the soft labels), -1 at background.
    """
    labels = torch.as_tensor(vertex_labels, device=frags.device).long()
    if num_labels is None:
        num_labels = int(labels.max()) + 1
    if soft:
        onehot = nnf.one_hot(labels, num_labels).to(frags.dtype)
        return frags.scatter(interpolate_packed(frags, onehot))
    corner_labels = labels[frags.triangles[frags.pix_triangle]]  # (N, 3)
    same = corner_labels[:, :, None] == corner_labels[:, None, :]
    score = (same * frags.pix_bary.detach()[:, None, :]).sum(-1)  # total weight of each corner's label
    best = corner_labels.gather(1, score.argmax(1, keepdim=True))[:, 0]
    out = torch.full((frags.frames * frags.height * frags.width,), -1, dtype=torch.long, device=frags.device)
    out[frags.pix_index] = best
    return out.reshape(frags.frames, frags.height, frags.width)


def coverage_mask(frags: Fragments, antialiased: bool = False) -> torch.Tensor:
    """(F, H, W, 1) float mask: hard coverage, or the antialiased (soft, differentiable) coverage."""
    mask = frags.mask[..., None].to(frags.dtype)
    if antialiased:
        mask = _antialias(mask, frags)
    return mask
