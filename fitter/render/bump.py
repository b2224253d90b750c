"""Bump mapping: shading normals of a surface displaced along its normals by a UV displacement map.

The displaced surface p' = p + d(u, v) n has tangents dp'/du = T_u + d_u n and dp'/dv = T_v + d_v n (the
small d * dn/du term is dropped), where T_u, T_v are the coarse triangle's UV tangents and d_u, d_v the map's
derivatives (central differences of bilinear samples, so gradients reach every texel a pixel touches). The
shading normal is their cross product, with the flat T_u x T_v replaced by the smooth interpolated normal so
that a zero map shades exactly like the coarse mesh.
"""
from __future__ import annotations

import torch
import torch.nn.functional as nnf

from ..common.uv_lookup import sample_maps
from .fragments import Fragments

# Triangles whose UV area is below this are degenerate in UV space: their tangents are clamped, not infinite.
MIN_UV_DETERMINANT = 1e-12


def sample_map(map_: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a (1, 1, S, S) map at UVs (F, H, W, 2) of the face tile (v up, row 0 = v = 1)."""
    return sample_maps(map_.expand(uv.shape[0], -1, -1, -1), uv)[:, 0]


def uv_tangents(corners: torch.Tensor, corner_uvs: torch.Tensor,
                min_determinant: float = MIN_UV_DETERMINANT) -> tuple[torch.Tensor, torch.Tensor]:
    """UV tangents T_u = dp/du, T_v = dp/dv (N, 3) of triangles with corners (N, 3, 3) and UVs (N, 3, 2).

    The one place this formula lives (shading here, tangent frames of the exported normal map). A UV
    determinant below ``min_determinant`` in magnitude is replaced by it; ``min_determinant=0`` divides by
    the raw determinant, for callers that drop degenerate UV triangles by their own rule."""
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    d1, d2 = corner_uvs[:, 1] - corner_uvs[:, 0], corner_uvs[:, 2] - corner_uvs[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    det = torch.where(det.abs() < min_determinant, torch.full_like(det, min_determinant), det)
    tu = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) / det[:, None]
    tv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) / det[:, None]
    return tu, tv


def triangle_tangents(cam: torch.Tensor, tris: torch.Tensor, tri: torch.Tensor, frame: torch.Tensor,
                      triangle_uvs: torch.Tensor, uvs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-space UV tangents T_u, T_v (N, 3) of triangles ``tri`` (N,) in frames ``frame`` (N,)."""
    return uv_tangents(cam[frame[:, None], tris[tri]], uvs[triangle_uvs[tri]])


def map_slopes(displacement: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The map's derivatives (d_u, d_v) at UVs (F, H, W, 2): central differences over one texel."""
    dev = uv.device
    h = 1.0 / displacement.shape[-1]
    du = (sample_map(displacement, uv + torch.tensor([h, 0.0], device=dev)) -
          sample_map(displacement, uv - torch.tensor([h, 0.0], device=dev))) / (2 * h)
    dv = (sample_map(displacement, uv + torch.tensor([0.0, h], device=dev)) -
          sample_map(displacement, uv - torch.tensor([0.0, h], device=dev))) / (2 * h)
    return du, dv


def tilted_normals(normals: torch.Tensor, tu: torch.Tensor, tv: torch.Tensor, du: torch.Tensor,
                   dv: torch.Tensor) -> torch.Tensor:
    """Unit normals of the displaced surface from the smooth normals (..., 3), the UV tangents and the slopes.

    cross(T_u + d_u n, T_v + d_v n) = T_u x T_v + d_v T_u x n + d_u n x T_v; the first term is replaced by the
    smooth normal scaled by the tangents' area (s = orientation of the UV map), so d = 0 gives the smooth
    shading exactly and only the map's slope tilts it."""
    base = torch.cross(tu, tv, dim=-1)
    area = base.norm(dim=-1, keepdim=True)
    s = torch.sign((base * normals).sum(-1, keepdim=True) + 1e-12)
    tilt = dv[..., None] * torch.cross(tu, normals, dim=-1) + du[..., None] * torch.cross(normals, tv, dim=-1)
    return nnf.normalize(area * normals + s * tilt, dim=-1, eps=1e-12)


def displaced_normals(cam: torch.Tensor, frags: Fragments, normals: torch.Tensor, uv: torch.Tensor,
                      displacement: torch.Tensor, face_triangles: torch.Tensor, triangle_uvs: torch.Tensor,
                      uvs: torch.Tensor) -> torch.Tensor:
    """Shading normals (F, H, W, 3) of the displaced surface on face pixels; ``normals`` elsewhere.

    cam: camera-space vertices (F, V, 3) the fragments were rasterised from."""
    tu, tv = triangle_tangents(cam, frags.triangles, frags.pix_triangle, frags.pix_frame, triangle_uvs,
                               uvs.to(normals.dtype))
    du, dv = map_slopes(displacement, uv)
    n = tilted_normals(normals, frags.scatter(tu), frags.scatter(tv), du, dv)
    use = (frags.mask & face_triangles[frags.triangle_id.clamp(min=0)])[..., None]
    return torch.where(use, n, normals)
