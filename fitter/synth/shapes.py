"""Triangle-mesh primitives and props (a mesh with a material) for wild renders: glasses, hats, hands,
microphones, clothing.

All in the ICT model frame (centimetres, +y up, face towards +z) so that a prop placed from the face's own
landmarks moves with the head. Triangles are wound counter-clockwise seen from outside, as the model's are,
so :func:`fitter.render.vertex_normals` points out of every shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Shape:
    """A mesh: vertices (V, 3) float64, triangles (T, 3) int64."""

    vertices: np.ndarray
    triangles: np.ndarray

    def transformed(self, rotation: np.ndarray | None = None, offset=(0.0, 0.0, 0.0)) -> Shape:
        v = self.vertices if rotation is None else self.vertices @ np.asarray(rotation).T
        return Shape(v + np.asarray(offset, np.float64), self.triangles)


# Procedural surface patterns a prop's material may carry (evaluated per pixel by the renderer).
PATTERN_NONE, PATTERN_GRILLE, PATTERN_KNIT, PATTERN_FABRIC = 0, 1, 2, 3


@dataclass
class Material:
    """Linear albedo, GGX roughness, normal-incidence Fresnel reflectance, how much light scatters under the
    surface (1 for skin), and a procedural pattern (see PATTERN_*) with its period in centimetres."""

    albedo: np.ndarray
    roughness: float = 0.5
    f0: float = 0.04
    subsurface: float = 0.0
    pattern: int = PATTERN_NONE
    period_cm: float = 0.3


@dataclass
class Prop:
    """A named mesh with one material; ``occluder`` props count as covering the face where they are seen."""

    name: str
    shape: Shape
    material: Material
    occluder: bool = True


def merge_shapes(shapes: list[Shape]) -> Shape:
    """One mesh holding several (vertex ids shifted)."""
    verts, tris, base = [], [], 0
    for s in shapes:
        verts.append(s.vertices)
        tris.append(s.triangles + base)
        base += len(s.vertices)
    if not verts:
        return Shape(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    return Shape(np.concatenate(verts), np.concatenate(tris).astype(np.int64))


def _grid_triangles(rows: int, cols: int, closed: bool) -> np.ndarray:
    """Triangles joining ``rows`` rings of ``cols`` vertices (ring r, vertex c at r * cols + c)."""
    r = np.arange(rows - 1)[:, None]
    c = np.arange(cols if closed else cols - 1)[None]
    c1 = (c + 1) % cols
    a, b = r * cols + c, r * cols + c1
    d, e = (r + 1) * cols + c, (r + 1) * cols + c1
    return np.concatenate([np.stack([a, e, b], -1).reshape(-1, 3), np.stack([a, d, e], -1).reshape(-1, 3)])


def lathe(profile: np.ndarray, segments: int = 24) -> Shape:
    """Surface of revolution about +y of a profile (N, 2) of (radius, height) points, listed from the bottom
    up for an outward surface. Profile points with radius 0 close the shape (poles)."""
    profile = np.asarray(profile, np.float64)
    angle = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    r, h = profile[:, :1], profile[:, 1:2]
    verts = np.stack([r * np.sin(angle)[None], np.broadcast_to(h, (len(profile), segments)),
                      r * np.cos(angle)[None]], -1).reshape(-1, 3)
    return Shape(verts, _grid_triangles(len(profile), segments, closed=True)[:, ::-1].copy())


def ellipsoid(radii, rings: int = 12, segments: int = 20) -> Shape:
    """An ellipsoid centred at the origin with semi-axes ``radii`` (x, y, z)."""
    t = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    unit = lathe(np.stack([np.cos(t), np.sin(t)], 1), segments)
    return Shape(unit.vertices * np.asarray(radii, np.float64), unit.triangles)


def _frames(path: np.ndarray, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parallel-transported normal and binormal along a polyline (no twist between segments)."""
    tangent = np.gradient(path, axis=0) if not closed else np.roll(path, -1, 0) - np.roll(path, 1, 0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True).clip(1e-9)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tangent[0, 2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    normal = np.zeros_like(path)
    n = np.cross(tangent[0], ref)
    for i, t in enumerate(tangent):
        n = n - (n @ t) * t
        n /= max(np.linalg.norm(n), 1e-9)
        normal[i] = n
    return normal, np.cross(tangent, normal)


def tube(path: np.ndarray, radius, sides: int = 10, closed: bool = False, caps: bool = True,
         aspect: float = 1.0) -> Shape:
    """A tube of (per-point or constant) ``radius`` along a polyline (N, 3); ``closed`` joins the ends (a
    glasses rim), ``caps`` closes an open tube's ends; ``aspect`` flattens the cross-section along the
    binormal (a temple arm is flatter than it is tall)."""
    path = np.asarray(path, np.float64)
    radius = np.broadcast_to(np.asarray(radius, np.float64), (len(path),))
    normal, binormal = _frames(path, closed)
    angle = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    ring = (np.cos(angle)[None, :, None] * normal[:, None] + aspect * np.sin(angle)[None, :, None] * binormal[:, None])
    verts = (path[:, None] + radius[:, None, None] * ring).reshape(-1, 3)
    rows = len(path) + (1 if closed else 0)
    tris = _grid_triangles(rows, sides, closed=True)
    if closed:
        tris = np.where(tris >= len(path) * sides, tris - len(path) * sides, tris)
    shape = Shape(verts, tris[:, ::-1].copy())
    if caps and not closed:
        ends = []
        for k, flip in ((0, True), (len(path) - 1, False)):
            centre = len(verts) + len(ends)
            ring_ids = k * sides + np.arange(sides)
            fan = np.stack([np.full(sides, centre), ring_ids, np.roll(ring_ids, -1)], 1)
            ends.append((path[k], fan[:, ::-1] if flip else fan))
        shape = Shape(np.concatenate([verts, np.stack([e[0] for e in ends])]),
                      np.concatenate([shape.triangles] + [e[1] for e in ends]).astype(np.int64))
    return shape


def rotation_between(a, b) -> np.ndarray:
    """The smallest rotation (3, 3) taking direction ``a`` to direction ``b``."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a)
    b = np.asarray(b, np.float64) / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:  # opposite: half a turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)
