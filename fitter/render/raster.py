"""Rasterization: camera-space meshes -> :class:`Fragments`.

Two steps, whatever the backend:

1. *Visibility* (not differentiable): which triangle is nearest at each pixel centre. The built-in backend
   runs a z-buffer compiled with numba on the CPU; the pytorch3d backend calls
   ``pytorch3d.renderer.mesh.rasterize_meshes`` (CUDA).
2. *Geometry* (differentiable, torch, on the input's device): for the covered pixels only, the
   perspective-correct barycentrics and the depth are recomputed from the projected vertices, so
   gradients reach the vertex positions (and, through :func:`fitter.render.interpolate`, the attributes).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..common.compiled import num_threads, run_parallel, split
from . import _kernels
from . import _pytorch3d
from .fragments import Fragments

BACKENDS = ("auto", "builtin", "pytorch3d")


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """The backend that ``backend`` means for tensors on ``device``.

    ``auto`` is ``pytorch3d`` when pytorch3d imports *and* the tensors are on CUDA, else ``builtin``
    (pytorch3d's CPU rasterizer is far slower than the built-in one). Asking for ``pytorch3d`` explicitly
    when it cannot be imported raises an ImportError that says why.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown renderer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    device = torch.device(device)
    if backend == "auto":
        return "pytorch3d" if device.type == "cuda" and _pytorch3d.available() else "builtin"
    if backend == "pytorch3d":
        _pytorch3d.require()
    return backend


def project_vertices(verts_cam: torch.Tensor, K: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(F, V, 3) camera points -> (F, V, 3) = (u, v, z): pixel coordinates (``fitter.camera.project``'s
    convention, skew included) and camera depth. z is clamped to ``eps`` for the division only."""
    z = verts_cam[..., 2:3]
    uv = (verts_cam @ K[:, :2, :].transpose(-1, -2)) / z.clamp(min=eps)
    return torch.cat([uv, z], dim=-1)


def rasterize(
    verts_cam: torch.Tensor,
    triangles: torch.Tensor | np.ndarray,
    K: torch.Tensor,
    image_size: int | tuple[int, int],
    backend: str = "auto",
    cull_backfaces: bool = False,
    near: float = 1e-3,
) -> Fragments:
    """Rasterize F meshes sharing one triangle list.

    verts_cam: (F, V, 3) in the OpenCV camera frame (x right, y down, z forward), any float dtype.
    triangles: (T, 3) int vertex indices (counter-clockwise seen from outside, as in ``Topology``).
    K: (F, 3, 3), (1, 3, 3) or (3, 3) intrinsics; pixel centres are at (j + 0.5, i + 0.5).
    image_size: (H, W) or an int for square images.
    backend: ``auto`` | ``builtin`` | ``pytorch3d`` (see :func:`resolve_backend`).
    cull_backfaces: drop triangles seen from behind (they look clockwise in the image: positive signed area
        (b - a) x (c - a) in y-down pixel coordinates).
    near: triangles with any vertex at z <= near (same units as the vertices) are skipped, not clipped.
    """
    if verts_cam.dim() != 3 or verts_cam.shape[-1] != 3:
        raise ValueError(f"verts_cam must be (F, V, 3), got {tuple(verts_cam.shape)}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    H, W = int(image_size[0]), int(image_size[1])
    device = verts_cam.device
    F = verts_cam.shape[0]
    triangles = torch.as_tensor(triangles, device=device).long().reshape(-1, 3)
    K = torch.as_tensor(K, device=device).to(verts_cam.dtype)
    if K.dim() == 2:
        K = K[None]
    K = K.expand(F, 3, 3)
    name = resolve_backend(backend, device)
    screen = project_vertices(verts_cam, K)
    with torch.no_grad():
        if triangles.shape[0] == 0 or F == 0:
            tri_id = torch.full((F, H, W), -1, dtype=torch.long, device=device)
        elif name == "builtin":
            tri_id = _visibility_builtin(screen.detach(), triangles, H, W, cull_backfaces, near)
        else:
            tri_id = _pytorch3d.visibility(screen.detach(), triangles, H, W, cull_backfaces, near)
    return fragments_from_triangle_id(tri_id, screen, triangles, (H, W), name, cull_backfaces, near)


def _visibility_builtin(screen: torch.Tensor, triangles: torch.Tensor, H: int, W: int, cull: bool, near: float):
    F = screen.shape[0]
    s = screen.to("cpu", torch.float64)
    xy = np.ascontiguousarray(s[..., :2].numpy())
    z = np.ascontiguousarray(s[..., 2].numpy())
    tris = np.ascontiguousarray(triangles.to("cpu", torch.int64).numpy())
    tri_id = np.full((F, H, W), -1, np.int64)
    zbuf = np.full((F, H, W), np.inf, np.float64)
    threads = num_threads()
    # one task per frame, or row bands when there are fewer frames than threads (every band visits every
    # triangle, and with small triangles that visit is most of the cost, so bands are kept few)
    bands = 1 if F >= threads else min(H, math.ceil(threads / F))
    tasks = [(f, r0, r1) for f in range(F) for r0, r1 in split(H, bands)]
    cull, near = int(bool(cull)), float(near)

    def band(f, r0, r1):
        _kernels.zbuffer(xy, z, tris, H, W, cull, near, f, r0, r1, tri_id, zbuf)

    run_parallel(band, tasks)
    return torch.from_numpy(tri_id).to(screen.device)


def fragments_from_triangle_id(
    triangle_id: torch.Tensor,
    verts_screen: torch.Tensor,
    triangles: torch.Tensor,
    image_size: tuple[int, int],
    backend: str = "builtin",
    cull_backfaces: bool = False,
    near: float = 1e-3,
    perspective: bool = True,
) -> Fragments:
    """Differentiable barycentrics and depth for a given visibility (any backend's ``triangle_id``).

    Only covered pixels are processed. With ``perspective=False`` the barycentrics are the screen-space
    (affine) ones, as used for UV-space rasterization.
    """
    H, W = image_size
    F, V = verts_screen.shape[:2]
    flat = triangle_id.reshape(-1)
    pix_index = torch.nonzero(flat >= 0).squeeze(1)
    pix_triangle = flat[pix_index]
    bary, depth = _barycentrics(verts_screen, triangles, pix_index, pix_triangle, H, W, perspective)
    return Fragments(
        triangle_id.reshape(F, H, W),
        pix_index,
        pix_triangle,
        bary,
        depth,
        verts_screen,
        triangles,
        (H, W),
        backend,
        cull_backfaces,
        near,
    )


def _barycentrics(verts_screen, triangles, pix_index, pix_triangle, H, W, perspective=True):
    """Perspective-correct barycentrics (N, 3) and depth (N,) of the covered pixel centres.

    With e_k the edge function of pixel centre p against the edge opposite vertex k (twice the signed area
    of the sub-triangle), the screen barycentrics are e_k / sum(e); the perspective-correct ones are
    (e_k / z_k) / sum(e / z), and the depth, the harmonic interpolation of z, is sum(e) / sum(e / z).
    Coordinates are taken relative to the pixel centre first, which keeps float32 well conditioned.
    """
    F, V = verts_screen.shape[:2]
    dtype = verts_screen.dtype
    f = torch.div(pix_index, H * W, rounding_mode="floor")
    rem = pix_index - f * (H * W)
    i = torch.div(rem, W, rounding_mode="floor")
    j = rem - i * W
    vid = triangles[pix_triangle] + (f * V)[:, None]  # (N, 3)
    P = verts_screen.reshape(F * V, 3).index_select(0, vid.reshape(-1)).reshape(-1, 3, 3)  # (N, 3, 3)
    dx = P[..., 0] - (j.to(dtype) + 0.5)[:, None]
    dy = P[..., 1] - (i.to(dtype) + 0.5)[:, None]
    dx1, dx2 = dx.roll(-1, 1), dx.roll(-2, 1)
    dy1, dy2 = dy.roll(-1, 1), dy.roll(-2, 1)
    e = dx1 * dy2 - dx2 * dy1  # (N, 3), sum = twice the signed triangle area
    if perspective:
        ez = e / P[..., 2]
        s = ez.sum(1, keepdim=True)
        s = torch.where(s == 0, torch.full_like(s, 1e-30), s)
        bary = ez / s
        depth = e.sum(1) / s[:, 0]
    else:
        s = e.sum(1, keepdim=True)
        s = torch.where(s == 0, torch.full_like(s, 1e-30), s)
        bary = e / s
        depth = (bary * P[..., 2]).sum(1)
    return bary, depth
