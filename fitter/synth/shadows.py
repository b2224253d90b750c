"""Cast shadows and ambient occlusion by depth maps seen from far-away light directions.

A light view rasterizes the scene (the coarse head, its hair and its props) with fitter's own rasterizer from
a camera placed far along a direction (nearly orthographic); a point is lit along that direction when
nothing in the map is nearer the light than it. The key light's shadow is softened by percentage-closer
filtering over a disc whose size stands for the light's extent; ambient occlusion is the cosine-weighted
share of many such directions (a sphere of them, each point using its own hemisphere) that reach a point.
This is what the fitter's SH-Lambertian image model cannot produce: light that depends on geometry far from
the point (the nose's shadow on the cheek, the hat brim's on the eyes, dark mouth corners and eye sockets).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..render import rasterize

LIGHT_DISTANCE_CM = 500.0  # the light view's camera distance: far enough to be almost orthographic
DEPTH_BIAS_CM = 0.12  # a point is in shadow only when an occluder is this much nearer the light
NORMAL_OFFSET_CM = 0.08  # query points are pushed along their normal first (avoids self-shadow acne)
AO_DIRECTIONS = 12  # directions over the sphere for ambient occlusion (each point sees about half)
AO_MAP_SIZE = 160  # pixels of each ambient-occlusion view (about 2 mm per pixel on a head)
AO_BIAS_CM = 0.35  # occlusion counts from this far: AO is about cavities, not the surface's own facets


@dataclass
class DepthView:
    """The scene's depth seen from a direction: camera-frame points map to the view by rotation, origin, K."""

    rotation: torch.Tensor  # (3, 3) camera frame -> light frame
    origin: torch.Tensor  # (3,) the light view's centre, camera frame
    K: torch.Tensor  # (3, 3)
    depth: torch.Tensor  # (S, S), inf where nothing is seen

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3) camera-frame points -> (N, 2) view pixels and (N,) light-frame depth."""
        p = (points - self.origin) @ self.rotation.T
        uv = (p[:, :2] / p[:, 2:3].clamp(min=1e-6)) * self.K[0, 0] + self.K[:2, 2]
        return uv, p[:, 2]

    def lookup(self, uv: torch.Tensor) -> torch.Tensor:
        """Depth at view pixels (N, 2) (nearest), inf outside the view."""
        size = self.depth.shape[0]
        padded = torch.nn.functional.pad(self.depth, (1, 1, 1, 1), value=math.inf).reshape(-1)
        col = (uv[:, 0].floor().clamp(-1, size) + 1).long()
        row = (uv[:, 1].floor().clamp(-1, size) + 1).long()
        return padded[row * (size + 2) + col]


def _basis_towards(direction: torch.Tensor) -> torch.Tensor:
    """Rows: x, y, z axes of a view looking along -direction (z = -direction)."""
    z = -direction / direction.norm()
    up = torch.tensor([0.0, 1.0, 0.0]) if abs(float(z[1])) < 0.9 else torch.tensor([1.0, 0.0, 0.0])
    x = torch.linalg.cross(up, z)
    x = x / x.norm()
    return torch.stack([x, torch.linalg.cross(z, x), z])


def depth_view(verts: torch.Tensor, triangles: np.ndarray, direction, size: int) -> DepthView:
    """Rasterize camera-frame ``verts`` (V, 3) seen from far along ``direction`` (towards the light)."""
    direction = torch.as_tensor(np.asarray(direction, np.float32))
    direction = direction / direction.norm()
    centre = (verts.amax(0) + verts.amin(0)) / 2
    radius = float((verts - centre).norm(dim=1).max()) * 1.02
    rotation = _basis_towards(direction)
    origin = centre + direction * LIGHT_DISTANCE_CM
    focal = (size / 2) * (LIGHT_DISTANCE_CM - radius) / radius
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    local = (verts - origin) @ rotation.T
    frags = rasterize(local[None].float(), triangles, K, (size, size))
    depth = torch.where(frags.mask[0], frags.depth[0], torch.full_like(frags.depth[0], math.inf))
    return DepthView(rotation, origin, K, depth)


def disc_offsets(taps: int) -> np.ndarray:
    """(taps, 2) points spread evenly over the unit disc (a sunflower pattern)."""
    k = np.arange(taps) + 0.5
    r = np.sqrt(k / taps)
    a = k * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def shadow(view: DepthView, points: torch.Tensor, normals: torch.Tensor, softness_cm: float,
           taps: int = 12) -> torch.Tensor:
    """(N,) share of the key light reaching each point (1 lit, 0 in shadow), filtered over a disc of
    ``softness_cm`` radius in the light's plane (the penumbra of an extended light)."""
    uv, z = view.project(points + NORMAL_OFFSET_CM * normals)
    px_per_cm = float(view.K[0, 0]) / LIGHT_DISTANCE_CM
    lit = torch.zeros(len(points))
    offsets = torch.as_tensor(disc_offsets(taps), dtype=uv.dtype) * softness_cm * px_per_cm
    for off in offsets if softness_cm > 0 else torch.zeros(1, 2):
        lit += (view.lookup(uv + off) >= z - DEPTH_BIAS_CM).float()
    return lit / (len(offsets) if softness_cm > 0 else 1)


def sphere_directions(count: int) -> np.ndarray:
    """(count, 3) unit vectors spread evenly over the sphere (Fibonacci lattice)."""
    k = np.arange(count) + 0.5
    y = 1 - 2 * k / count
    r = np.sqrt(1 - y * y)
    a = k * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(a), y, r * np.sin(a)], 1)


def ambient_occlusion(verts: torch.Tensor, triangles: np.ndarray, points: torch.Tensor, normals: torch.Tensor,
                      directions: int = AO_DIRECTIONS, size: int = AO_MAP_SIZE) -> torch.Tensor:
    """(N,) cosine-weighted visibility of the sky over each point's hemisphere (1 open, 0 enclosed), the
    occluders being the mesh (verts (V, 3), triangles); points and unit normals (N, 3) (e.g. a mesh's
    vertices, for per-vertex occlusion interpolated over the image)."""
    total = torch.zeros(len(points))
    weight = torch.zeros(len(points))
    for d in sphere_directions(directions):
        view = depth_view(verts, triangles, d, size)
        cos = (normals @ torch.as_tensor(d, dtype=normals.dtype)).clamp(min=0)
        uv, z = view.project(points + NORMAL_OFFSET_CM * normals)
        total += cos * (view.lookup(uv) >= z - AO_BIAS_CM).float()
        weight += cos
    return total / weight.clamp(min=1e-6)
