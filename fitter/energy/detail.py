"""Fine detail as a UV displacement map: shading normals of the displaced surface, and its priors.

The map d(u, v) (model units, along the coarse surface normal) covers the face's UV tile. For each rendered
pixel the displaced surface p' = p + d n has tangents dp'/du = T_u + d_u n and dp'/dv = T_v + d_v n
(bump mapping: the small d * dn/du term is dropped), where T_u, T_v are the coarse triangle's UV tangents
and d_u, d_v the map's derivatives (central differences of bilinear samples, so gradients reach every texel
a pixel touches). The shading normal is their cross product, with the flat T_u x T_v replaced by the smooth
interpolated normal so that a zero map shades exactly like the coarse mesh.
"""
from __future__ import annotations

import torch
import torch.nn.functional as nnf

from ..scene import Scene


def _sample(map_: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a (1, 1, S, S) map at UVs (F, H, W, 2) of the face tile (v up, row 0 = v = 1)."""
    grid = torch.stack([2.0 * uv[..., 0] - 1.0, 1.0 - 2.0 * uv[..., 1]], -1).to(map_.dtype)
    frames = uv.shape[0]
    return nnf.grid_sample(map_.expand(frames, -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                           align_corners=False)[:, 0]


def uv_tangents(scene: Scene, frags, triangle_uvs: torch.Tensor, uvs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel camera-space UV tangents T_u, T_v (F, H, W, 3) of each pixel's triangle."""
    cam = scene.camera_vertices()
    tris = frags.triangles
    tri = frags.pix_triangle
    frame = frags.pix_frame
    corners = cam[frame[:, None], tris[tri]]  # (N, 3, 3)
    uv = uvs[triangle_uvs[tri]]  # (N, 3, 2)
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    d1, d2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
    tu = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) / det[:, None]
    tv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) / det[:, None]
    return frags.scatter(tu), frags.scatter(tv)


def displaced_normals(scene: Scene, frags, normals: torch.Tensor, uv: torch.Tensor, displacement: torch.Tensor,
                      face_triangles: torch.Tensor) -> torch.Tensor:
    """Shading normals (F, H, W, 3) of the displaced surface on face pixels; ``normals`` elsewhere."""
    topo = scene.model.topology
    dev = normals.device
    tu, tv = uv_tangents(scene, frags, torch.as_tensor(topo.triangle_uvs, device=dev),
                         torch.as_tensor(topo.uvs, device=dev, dtype=normals.dtype))
    size = displacement.shape[-1]
    h = 1.0 / size
    du = (_sample(displacement, uv + torch.tensor([h, 0.0], device=dev)) -
          _sample(displacement, uv - torch.tensor([h, 0.0], device=dev))) / (2 * h)
    dv = (_sample(displacement, uv + torch.tensor([0.0, h], device=dev)) -
          _sample(displacement, uv - torch.tensor([0.0, h], device=dev))) / (2 * h)
    # cross(T_u + d_u n, T_v + d_v n) = T_u x T_v + d_v T_u x n + d_u n x T_v; the first term is replaced by the
    # smooth normal scaled by the tangents' area (s = orientation of the UV map), so d = 0 gives the smooth
    # shading exactly and only the map's slope tilts it
    base = torch.cross(tu, tv, dim=-1)
    area = base.norm(dim=-1, keepdim=True)
    s = torch.sign((base * normals).sum(-1, keepdim=True) + 1e-12)
    tilt = dv[..., None] * torch.cross(tu, normals, dim=-1) + du[..., None] * torch.cross(normals, tv, dim=-1)
    n = nnf.normalize(area * normals + s * tilt, dim=-1, eps=1e-12)
    use = (frags.mask & face_triangles[frags.triangle_id.clamp(min=0)])[..., None]
    return torch.where(use, n, normals)


class DisplacementPrior:
    """Smoothness (squared texel differences), magnitude, and low-frequency content of the displacement map,
    in mm^2 per texel. The low-frequency penalty (the map blurred by ``low_sigma`` texels at 512) keeps the map
    to detail: broad shape belongs to the identity and expression coefficients."""

    name = "displacement_prior"

    def __init__(self, smoothness: float = 1.0, magnitude: float = 0.1, low_frequency: float = 0.0,
                 low_sigma: float = 16.0) -> None:
        self.smoothness = smoothness
        self.magnitude = magnitude
        self.low_frequency = low_frequency
        self.low_sigma = low_sigma

    def __call__(self, scene: Scene) -> torch.Tensor:
        from .photometric import gaussian_blur

        d = scene.state.displacement[0, 0] * 10.0  # mm
        size = d.shape[-1]
        # differences scaled to a 512 grid so the weight means the same at every pyramid level
        gx = (d[:, 1:] - d[:, :-1]) * (size / 512.0)
        gy = (d[1:, :] - d[:-1, :]) * (size / 512.0)
        e = self.smoothness * ((gx**2).mean() + (gy**2).mean()) + self.magnitude * (d**2).mean()
        if self.low_frequency:
            low = gaussian_blur(d[None, :, :, None], self.low_sigma * size / 512.0)
            e = e + self.low_frequency * (low**2).mean()
        frames = scene.state.num_frames
        return e.expand(frames) / frames
