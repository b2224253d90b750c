"""Optional pytorch3d backend: visibility from ``pytorch3d.renderer.mesh.rasterize_meshes`` (CUDA).

pytorch3d is imported lazily and only here. It decides visibility only (``pix_to_face``); barycentrics and
depth are then recomputed by facefit itself (:func:`fitter.render.raster.fragments_from_triangle_id`),
so both backends produce fragments with identical conventions and gradients.

Conversion to pytorch3d's conventions (documented in ``rasterize_meshes``):

- pytorch3d's output pixel (row ``yi``, column ``xi``) has its centre at NDC
  ``x = pix_to_non_square_ndc(W - 1 - xi, W, H)``, ``y = pix_to_non_square_ndc(H - 1 - yi, H, W)`` where
  ``pix_to_non_square_ndc(i, S1, S2) = -r/2 + r (i + 0.5) / S1`` and ``r = 2 max(S1 / S2, 1)``: +X points
  left, +Y up, and the shorter image side spans [-1, 1]. Hence facefit's pixel coordinates (u, v) map to
  ``x_ndc = (W / 2 - u) * 2 / min(H, W)``, ``y_ndc = (H / 2 - v) * 2 / min(H, W)``; z stays the camera depth
  (positive in front), which makes ``perspective_correct=True`` and the z-buffer agree with ours.
- Both axes flip, so the winding on screen is unchanged; culling and the near-plane skip are nevertheless
  done here (per frame, by passing each frame its own face list) so that they follow facefit's rules exactly.
- ``pix_to_face`` indexes the packed faces of the batch; it is mapped back to our triangle indices through
  the concatenation of the per-frame kept-face lists.
"""
from __future__ import annotations

import functools

import torch

_INSTALL_HINT = (
    "the pytorch3d renderer backend needs pytorch3d (with CUDA); it is optional: use --renderer builtin "
    "(the default on CPU), or install pytorch3d following https://github.com/facebookresearch/pytorch3d/"
    "blob/main/INSTALL.md"
)


@functools.lru_cache(maxsize=1)
def _load():
    """(Meshes, rasterize_meshes, None) or (None, None, reason)."""
    try:
        from pytorch3d.renderer.mesh import rasterize_meshes  # noqa: PLC0415
        from pytorch3d.structures import Meshes  # noqa: PLC0415
    except Exception as error:  # ImportError, or a broken build failing while loading its extension
        return None, None, f"{type(error).__name__}: {error}"
    return Meshes, rasterize_meshes, None


def reset_cache() -> None:
    """Forget the result of the import attempt (tests install fake modules)."""
    _load.cache_clear()


def available() -> bool:
    return _load()[0] is not None


def require():
    Meshes, rasterize_meshes, reason = _load()
    if Meshes is None:
        raise ImportError(f"{_INSTALL_HINT} (import failed with {reason})")
    return Meshes, rasterize_meshes


def to_ndc(verts_screen: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """facefit (u, v, z) pixel coordinates -> pytorch3d screen NDC (x left, y up, z depth)."""
    scale = 2.0 / min(H, W)
    x = (0.5 * W - verts_screen[..., 0]) * scale
    y = (0.5 * H - verts_screen[..., 1]) * scale
    return torch.stack([x, y, verts_screen[..., 2]], dim=-1)


def kept_triangles(verts_screen: torch.Tensor, triangles: torch.Tensor, cull: bool, near: float) -> torch.Tensor:
    """(F, T) bool: triangles in front of the near plane (and front-facing when culling), per frame."""
    corners = verts_screen[:, triangles]  # (F, T, 3, 3)
    keep = (corners[..., 2] > near).all(-1)
    a, b, c = corners[..., 0, :2], corners[..., 1, :2], corners[..., 2, :2]
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (c[..., 0] - a[..., 0]) * (b[..., 1] - a[..., 1])
    keep &= area != 0
    if cull:
        keep &= area < 0
    return keep


def triangle_id_from_pix_to_face(pix_to_face: torch.Tensor, packed_to_triangle: torch.Tensor) -> torch.Tensor:
    """pytorch3d ``pix_to_face`` (F, H, W, K) (packed face index, -1 empty) -> our (F, H, W) triangle ids."""
    p2f = pix_to_face[..., 0].long()
    if packed_to_triangle.numel() == 0:
        return torch.full_like(p2f, -1)
    ids = packed_to_triangle[p2f.clamp(min=0)]
    return torch.where(p2f >= 0, ids, torch.full_like(ids, -1))


def visibility(verts_screen: torch.Tensor, triangles: torch.Tensor, H: int, W: int, cull: bool, near: float):
    """(F, H, W) int64 triangle ids from pytorch3d's rasterizer (no gradients; see the module notes)."""
    Meshes, rasterize_meshes = require()
    with torch.no_grad():
        keep = kept_triangles(verts_screen, triangles, cull, near)
        if not bool(keep.any()):
            return torch.full(
                (verts_screen.shape[0], H, W), -1, dtype=torch.long, device=verts_screen.device
            )
        ndc = to_ndc(verts_screen, H, W).float()
        index = [torch.nonzero(k).squeeze(1) for k in keep]
        faces = [triangles[i] for i in index]
        meshes = Meshes(verts=list(ndc.unbind(0)), faces=faces)
        pix_to_face, _zbuf, _bary, _dists = rasterize_meshes(
            meshes,
            image_size=(H, W),
            blur_radius=0.0,
            faces_per_pixel=1,
            perspective_correct=True,
            clip_barycentric_coords=False,
            cull_backfaces=False,
        )
        return triangle_id_from_pix_to_face(pix_to_face, torch.cat(index))
