"""Wavefront OBJ export with the model's full topology: quads kept, UVs, one group per material (and its MTL,
from :mod:`fitter.export.material`). OBJ files are read back with :func:`fitter.model.obj_reader.read_obj`."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..common.files import write_text
from ..model.topology import Topology
from .material import mtl_text


def obj_text(vertices: np.ndarray, topology: Topology, mtl_name: str | None = "mesh.mtl", header: str = "",
             polygons: np.ndarray | None = None, polygon_uvs: np.ndarray | None = None,
             polygon_material: np.ndarray | None = None, uvs: np.ndarray | None = None) -> str:
    """OBJ text for ``vertices`` (V, 3) with the topology's polygons (or the ones given)."""
    polys = topology.polygons if polygons is None else polygons
    puvs = topology.polygon_uvs if polygon_uvs is None else polygon_uvs
    pmat = topology.polygon_material if polygon_material is None else polygon_material
    uvs = topology.uvs if uvs is None else uvs
    has_uvs = getattr(topology, "has_uvs", True) and len(uvs) > 0
    out = io.StringIO()
    for line in header.splitlines():
        out.write(f"# {line}\n")
    if mtl_name:
        out.write(f"mtllib {mtl_name}\n")
    np.savetxt(out, np.asarray(vertices, np.float64), fmt="v %.6f %.6f %.6f")
    if has_uvs:
        np.savetxt(out, np.asarray(uvs, np.float64), fmt="vt %.6f %.6f")
    out.write("s 1\n")
    order = np.argsort(pmat, kind="stable")
    current = None
    for start, end, mat in _runs(pmat[order]):
        if mat != current:
            out.write(f"usemtl {topology.material_names[mat]}\n")
            current = mat
        rows = order[start:end]
        out.write(_faces_text(polys[rows], puvs[rows] if has_uvs else None))
    return out.getvalue()


def _runs(values: np.ndarray):
    if len(values) == 0:
        return
    change = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(values)]])
    for s, e in zip(starts, ends):
        yield int(s), int(e), int(values[s])


def _faces_text(polys: np.ndarray, puvs: np.ndarray | None) -> str:
    """Face lines; polygons are rows padded with -1 at the end (triangles, quads, or wider n-gons)."""
    lines = []
    counts = (np.asarray(polys) >= 0).sum(1)
    for k, poly in enumerate(polys):
        n = int(counts[k])
        if puvs is None:
            lines.append("f " + " ".join(str(v + 1) for v in poly[:n]))
        else:
            lines.append("f " + " ".join(f"{v + 1}/{t + 1}" for v, t in zip(poly[:n], puvs[k][:n])))
    return "\n".join(lines) + "\n"


def write_obj(folder: Path, stem: str, vertices: np.ndarray, topology: Topology, header: str = "",
              textures: dict[str, dict[str, str]] | None = None, **overrides) -> Path:
    """Write ``<stem>.obj`` and ``<stem>.mtl`` into ``folder``; returns the OBJ path."""
    folder = Path(folder)
    write_text(folder / f"{stem}.mtl", mtl_text(topology.material_names, textures))
    path = folder / f"{stem}.obj"
    write_text(path, obj_text(vertices, topology, f"{stem}.mtl", header, **overrides))
    return path
