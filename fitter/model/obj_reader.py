"""The one Wavefront OBJ reader of facefit: model loaders (UV layouts shipped as OBJ), tests and tools read
OBJ files through :func:`read_obj`; ``fitter.export.obj`` writes them.

What is read: ``v`` (the first three coordinates), ``vt`` (u, v), ``f`` (any number of corners, ``v``,
``v/vt``, ``v//vn`` or ``v/vt/vn``; negative indices count back from the last element read so far, as the
format says) and ``usemtl``. Everything else (normals, groups, smoothing, ``mtllib``) is skipped.
Positive indices are not checked against the number of ``v`` / ``vt`` lines (a UV layout file may leave the
vertices out); callers check them against their mesh.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class ObjMesh:
    """An OBJ file's geometry. Faces keep the file's order and corner order; indices are 0-based."""

    vertices: np.ndarray  # (V, 3) float64
    uvs: np.ndarray  # (U, 2) float64
    faces: list[list[int]]  # vertex indices of each face
    face_uvs: list[list[int]]  # UV index of each corner of each face, -1 where the corner has none
    face_material: np.ndarray  # (F,) int64 index into ``materials``, -1 before the first ``usemtl``
    materials: list[str]  # ``usemtl`` names in the order they first appear


def _index(token: str, count: int) -> int:
    """0-based index of an OBJ index token; ``count``: elements of its kind read so far (for negative ones)."""
    i = int(token)
    if i == 0 or i < -count:
        raise ValueError(f"index {i} is out of range (1-based, or -1..-{count} counting back)")
    return i - 1 if i > 0 else count + i


def read_obj(path: str | Path) -> ObjMesh:
    """Parse ``path``. A malformed line raises ValueError naming the file and line; a missing file OSError."""
    vertices, uvs, faces, face_uvs, face_material, materials = [], [], [], [], [], []
    current = -1
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "v":
                    vertices.append([float(x) for x in parts[1:4]])
                elif parts[0] == "vt":
                    uvs.append([float(x) for x in parts[1:3]])
                elif parts[0] == "usemtl":
                    name = parts[1] if len(parts) > 1 else ""
                    if name not in materials:
                        materials.append(name)
                    current = materials.index(name)
                elif parts[0] == "f":
                    corners = [c.split("/") for c in parts[1:]]
                    if len(corners) < 3:
                        raise ValueError(f"a face needs at least 3 corners, got {len(corners)}")
                    faces.append([_index(c[0], len(vertices)) for c in corners])
                    face_uvs.append([_index(c[1], len(uvs)) if len(c) > 1 and c[1] else -1 for c in corners])
                    face_material.append(current)
            except (ValueError, IndexError) as err:
                raise ValueError(f"{path}: line {number}: {err}") from None
    if any(len(v) != 3 for v in vertices) or any(len(t) != 2 for t in uvs):
        raise ValueError(f"{path}: a 'v' line has fewer than 3 or a 'vt' line fewer than 2 numbers")
    return ObjMesh(np.asarray(vertices, np.float64).reshape(-1, 3), np.asarray(uvs, np.float64).reshape(-1, 2),
                   faces, face_uvs, np.asarray(face_material, np.int64), materials)
