"""Mesh topology shared by every frame of a morphable model: polygons for export, triangles for rendering,
UVs, named vertex regions, landmark vertices and surface embeddings."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FACE_MATERIAL = "M_Face"  # ICT's face-skin material; loaders of other models give their face this name too


@dataclass
class ErrorModes:
    """A detector's shared errors on an embedding's points: the leading eigenvectors of its error's second moment
    in the face's own frame (x along the eye axis, lengths in face sizes), measured by a build script."""

    basis: np.ndarray  # (2N, M) float32 orthonormal columns, (x, y) of each point
    variances: np.ndarray  # (M,) descending, face sizes squared

    def floor(self, used: int) -> float:
        """The noise level left once ``used`` modes are modelled: the mean variance of the modes after them."""
        return float(np.mean(self.variances[used:]))


@dataclass
class SurfaceEmbedding:
    """Points fixed on the mesh surface: a triangle index and barycentric weights per point.

    Used for MediaPipe's 478 landmarks (and any other dense correspondence) so that landmark positions
    follow the mesh under every identity and expression.
    """

    triangles: np.ndarray  # (N,) int64 index into Topology.triangles
    barycentrics: np.ndarray  # (N, 3) float32, rows sum to 1
    reliability: np.ndarray | None = None  # (N,) relative weight of each point as a landmark (None: all 1)
    error_modes: ErrorModes | None = None  # the detector's shared error on these points (None: not measured)

    def __len__(self) -> int:
        return len(self.triangles)


@dataclass
class Topology:
    """Connectivity of a model. Polygons may be triangles or quads (``-1`` pads a triangle's 4th corner)."""

    polygons: np.ndarray  # (P, 4) int32 vertex indices, -1 where a polygon has only 3 corners
    polygon_uvs: np.ndarray  # (P, 4) int32 UV indices, -1 likewise
    polygon_material: np.ndarray  # (P,) int material index
    material_names: list[str]
    uvs: np.ndarray  # (U, 2) float32, OBJ convention (v up); ICT uses UDIM tiles (u in [k, k+1])
    num_vertices: int
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (V,) bool
    landmarks68: np.ndarray | None = None  # (68,) vertex indices, iBUG order
    contour_substitutes: dict[int, int] = field(default_factory=dict)  # iBUG index -> substitute vertex
    embeddings: dict[str, SurfaceEmbedding] = field(default_factory=dict)
    vertex_labels: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "parts" -> (V,) int
    has_uvs: bool = True  # False: placeholder UVs, no texture or displacement exports

    def __post_init__(self) -> None:
        self.triangles, self.triangle_uvs, self.triangle_polygon = triangulate(self.polygons, self.polygon_uvs)

    @property
    def triangle_material(self) -> np.ndarray:
        return self.polygon_material[self.triangle_polygon]

    def region(self, name: str) -> np.ndarray:
        """Boolean vertex mask of a named region (e.g. ``face``, ``narrow_face``, ``head_neck``, ``eyes``)."""
        if name not in self.regions:
            raise KeyError(f"unknown region {name!r}; this model has {sorted(self.regions)}")
        return self.regions[name]

    def region_sample(self, name: str, count: int) -> np.ndarray:
        """At most ``count`` vertex indices of a region, evenly spaced through its index order (every k-th):
        the points a term follows when all of the region would cost more than it tells."""
        vertices = np.flatnonzero(self.region(name))
        step = max(1, len(vertices) // max(count, 1))
        return vertices[::step][:count]

    def triangles_in(self, vertex_mask: np.ndarray) -> np.ndarray:
        """Indices of triangles whose three corners all lie in ``vertex_mask``."""
        return np.flatnonzero(vertex_mask[self.triangles].all(axis=1))

    def material_triangles(self, *names: str) -> np.ndarray:
        ids = [self.material_names.index(n) for n in names]
        return np.flatnonzero(np.isin(self.triangle_material, ids))

    def face_triangles(self) -> np.ndarray:
        """Indices of the face-skin triangles, the one rule shared by fitting (photometric, detail) and the
        exported maps: the face material when the model has it, else the ``face`` region, else every
        triangle."""
        if FACE_MATERIAL in self.material_names:
            return self.material_triangles(FACE_MATERIAL)
        if "face" in self.regions:
            return self.triangles_in(self.regions["face"])
        return np.arange(len(self.triangles))


def triangulate(polygons: np.ndarray, polygon_uvs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split quads (a, b, c, d) into (a, b, c) and (a, c, d); keeps the winding of each polygon."""
    quad = polygons[:, 3] >= 0
    first = polygons[:, [0, 1, 2]]
    second = polygons[quad][:, [0, 2, 3]]
    tris = np.concatenate([first, second]).astype(np.int64)
    tri_uv = np.concatenate([polygon_uvs[:, [0, 1, 2]], polygon_uvs[quad][:, [0, 2, 3]]]).astype(np.int64)
    owner = np.concatenate([np.arange(len(polygons)), np.flatnonzero(quad)])
    order = np.argsort(owner, kind="stable")  # keep a polygon's two triangles next to each other
    return tris[order], tri_uv[order], owner[order]
