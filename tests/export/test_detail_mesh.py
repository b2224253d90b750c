"""The subdivided, displaced detail mesh: its geometry (fitter.model.subdivision) and mesh_detail.obj."""
from __future__ import annotations

import numpy as np
import pytest

from export_meshes import grid_mesh, rotation, smooth_normals, texel_uv
from fitter.export.detail_mesh import write_detail_mesh
from fitter.export.displacement import write_displacement
from fitter.export.tangents import vertex_normals_np
from fitter.export.uv_layout import uv_mask
from fitter.model.obj_reader import read_obj
from fitter.model.subdivision import detail_mesh_arrays, subdivide


def _edges(polys: np.ndarray) -> dict[tuple[int, int], int]:
    """Undirected polygon edges -> how many polygons use them (polygons are -1 padded rows)."""
    polys = np.asarray(polys, np.int64)
    n = (polys >= 0).sum(1)
    k = np.arange(polys.shape[1])
    valid = k[None] < n[:, None]
    a = polys
    b = polys[np.arange(len(polys))[:, None], (k[None] + 1) % n[:, None]]
    lo, hi = np.minimum(a, b)[valid], np.maximum(a, b)[valid]
    keys, counts = np.unique(np.stack([lo, hi], 1), axis=0, return_counts=True)
    return dict(zip(map(tuple, keys.tolist()), counts.tolist()))


def expected_vertex_count(topology, sub_mask, levels):
    """V + sum over levels of (edges + quads) of the subdivided part: E' = 2E + 4Q + 3T, Q' = 4Q, T' = 4T."""
    polys = topology.polygons[sub_mask]
    E = len(_edges(polys))
    Q = int((polys[:, 3] >= 0).sum())
    T = len(polys) - Q
    total = topology.num_vertices
    for _ in range(levels):
        total += E + Q
        E, Q, T = 2 * E + 4 * Q + 3 * T, 4 * Q, 4 * T
    return total


def test_zero_displacement_stays_on_planar_surface():
    verts, topo = grid_mesh(5, (3.0, 2.0))
    R = rotation()
    mesh = detail_mesh_arrays(verts @ R.T, topo, np.zeros((32, 32)), levels=3, region=None,
                              normals=smooth_normals(verts @ R.T, topo))
    flat = mesh.vertices @ R  # back in the grid's frame
    assert np.abs(flat[:, 2]).max() < 1e-12  # exactly in the plane
    assert np.allclose(mesh.vertices[: len(verts)], verts @ R.T)  # coarse vertices unchanged
    # Every new vertex sits where its UV says on the bilinear (here: affine) grid.
    uv_of_vertex = np.zeros((mesh.num_vertices, 2))
    uv_of_vertex[mesh.polygons.ravel()] = mesh.uvs[mesh.polygon_uvs.ravel()]
    assert np.allclose(flat[:, 0], uv_of_vertex[:, 0] * 3.0) and np.allclose(flat[:, 1], uv_of_vertex[:, 1] * 2.0)
    assert mesh.num_vertices == (5 * 8 + 1) ** 2 == expected_vertex_count(topo, np.ones(25, bool), 3)
    assert len(mesh.polygons) == 25 * 4 ** 3


def test_zero_displacement_on_ict_lies_on_coarse_polygons(ict):
    verts = ict.mean.numpy()
    topo = ict.topology
    mesh = detail_mesh_arrays(verts, topo, np.zeros((64, 64)), levels=2, region="face",
                              normals=smooth_normals(verts, topo))
    # Each child of a coarse quad is a bilinear combination of its corners: it lies within the convex hull
    # and, for the child next to corner a, at (a + ab/4 + ad/4 + c/16-ish) — check the exact bilinear formula.
    coarse = topo.polygons[mesh.polygon_origin[mesh.subdivided]]
    child = mesh.polygons[mesh.subdivided]
    quad = coarse[:, 3] >= 0
    first = child[quad][::16]  # children come in groups of 16 per coarse quad at 2 levels; first is a's
    a, b, c, d = (verts[coarse[quad][::16][:, k]] for k in range(4))
    s, t = 0.25, 0.25  # the first child's third corner is the bilinear point (1/4, 1/4)
    want = (1 - s) * (1 - t) * a + s * (1 - t) * b + s * t * c + (1 - s) * t * d
    assert np.abs(mesh.vertices[first[:, 2]] - want).max() < 1e-5
    assert np.array_equal(mesh.vertices[: topo.num_vertices], verts.astype(np.float64))


def test_vertex_count_formula_and_counts(ict):
    topo = ict.topology
    verts = ict.mean.numpy()
    face = (np.where(topo.polygons >= 0, topo.region("face")[np.maximum(topo.polygons, 0)], True)).all(1)
    for levels in (1, 2):
        mesh = subdivide(verts, topo, levels, "face")
        assert mesh.num_vertices == expected_vertex_count(topo, face, levels)
        assert len(mesh.polygons) == face.sum() * 4 ** levels + (~face).sum()
        # Border vertices inserted into the coarse neighbours: 2^L - 1 per shared coarse edge.
        shared = set(_edges(topo.polygons[face])) & set(_edges(topo.polygons[~face]))
        assert mesh.on_border.sum() == len(shared) * (2 ** levels - 1) > 0
    all_mesh = subdivide(verts, topo, 1, None)
    assert all_mesh.num_vertices == expected_vertex_count(topo, np.ones(len(topo.polygons), bool), 1)
    assert not all_mesh.on_border.any()


def test_watertight_without_t_junctions(ict):
    topo = ict.topology
    mesh = subdivide(ict.mean.numpy(), topo, 2, "face")
    coarse, fine = _edges(topo.polygons), _edges(mesh.polygons)
    assert max(fine.values()) <= 2 and max(coarse.values()) <= 2
    # Open borders (eyes, mouth, neck) split into 4 where subdivided, else kept: no new holes or cracks.
    face_edges = set(_edges(topo.polygons[mesh.polygon_origin[mesh.subdivided]]))
    want = sum(4 if e in face_edges else 1 for e, n in coarse.items() if n == 1)
    assert sum(1 for n in fine.values() if n == 1) == want


def test_uv_seams_preserved():
    verts, topo = grid_mesh(4, (2.0, 2.0), seam=True)
    mesh = subdivide(verts, topo, 2, None)
    uv_sets = {}
    for p, pu in zip(mesh.polygons, mesh.polygon_uvs):
        for v, t in zip(p[p >= 0], pu[pu >= 0]):
            uv_sets.setdefault(int(v), set()).add(tuple(np.round(mesh.uvs[t], 9)))
    # Original vertices keep exactly their UVs (two on the seam column, one elsewhere).
    for v in range(topo.num_vertices):
        orig = {tuple(np.round(topo.uvs[t], 9)) for p, pu in zip(topo.polygons, topo.polygon_uvs)
                for vv, t in zip(p, pu) if vv == v}
        assert uv_sets[v] == orig
    # New vertices on the seam (x = 1) have two UVs, 0.01 apart in u; elsewhere one.
    on_seam = np.isclose(mesh.vertices[:, 0], 1.0)
    for v in range(mesh.num_vertices):
        uvs = sorted(uv_sets[v])
        assert len(uvs) == (2 if on_seam[v] else 1)
        if on_seam[v]:
            assert np.isclose(uvs[1][0] - uvs[0][0], 0.01) and np.isclose(uvs[0][1], uvs[1][1])
    # Each UV of a vertex is its position's UV (u = x / 2, v = y / 2; +0.01 on the right island).
    for v in range(mesh.num_vertices):
        for u_, v_ in uv_sets[v]:
            assert np.isclose(v_, mesh.vertices[v, 1] / 2) and (
                np.isclose(u_, mesh.vertices[v, 0] / 2) or np.isclose(u_, mesh.vertices[v, 0] / 2 + 0.01))


def test_constant_displacement_moves_along_normals(ict):
    d = 0.1
    verts, topo = grid_mesh(4, (2.0, 2.0))
    R = rotation()
    mesh = detail_mesh_arrays(verts @ R.T, topo, np.full((16, 16), d), levels=2, region=None,
                              normals=smooth_normals(verts @ R.T, topo))
    assert mesh.displaced.all()
    assert np.allclose(mesh.vertices - mesh.base_vertices, d * (np.array([0, 0, 1.0]) @ R.T))

    topo = ict.topology
    mesh = detail_mesh_arrays(ict.mean.numpy(), topo, np.full((64, 64), d, np.float32), levels=2, region="face",
                              normals=smooth_normals(ict.mean.numpy(), topo))
    moved = mesh.vertices - mesh.base_vertices
    disp = mesh.displaced
    assert disp.sum() > 100_000
    assert np.allclose(moved[disp], d * mesh.normals[disp], atol=1e-6)
    assert np.allclose(np.linalg.norm(mesh.normals, axis=1), 1)
    # Only the face moves; the coarse rest of the head is untouched except its shared border vertices.
    face_v = np.unique(topo.polygons[topo.polygon_material == 0])
    other = np.setdiff1d(np.arange(topo.num_vertices), face_v)
    assert np.abs(moved[other]).max() == 0 and not mesh.on_border[disp].any()
    # Border (hanging) vertices lie on the straight edge between their displaced end vertices.
    h, a, b = (mesh.border[:, k].astype(int) for k in range(3))
    t = mesh.border[:, 3:]
    assert np.allclose(mesh.vertices[h], (1 - t) * mesh.vertices[a] + t * mesh.vertices[b])
    # The normals are the coarse vertex normals interpolated: at coarse vertices they are the same.
    assert np.allclose(mesh.normals[: topo.num_vertices][face_v],
                       vertex_normals_np(ict.mean.numpy(), topo.triangles)[face_v])


def test_displacement_sampled_at_uvs():
    # A displacement linear in u and v is reproduced exactly by bilinear sampling (inside the texel centres).
    verts, topo = grid_mesh(4, (2.0, 2.0))
    S = 64
    r, c = np.mgrid[0:S, 0:S]
    u, v = (c + 0.5) / S, 1 - (r + 0.5) / S
    mesh = detail_mesh_arrays(verts, topo, 0.1 * u - 0.2 * v, levels=2, region=None,
                              normals=smooth_normals(verts, topo))
    uv = np.zeros((mesh.num_vertices, 2))
    uv[mesh.polygons.ravel()] = mesh.uvs[mesh.polygon_uvs.ravel()]
    inside = (uv > 0.5 / S).all(1) & (uv < 1 - 0.5 / S).all(1)
    assert np.allclose(mesh.displacement[inside], 0.1 * uv[inside, 0] - 0.2 * uv[inside, 1])


def test_ict_detail_obj_round_trip(ict, tmp_path):
    topo = ict.topology
    verts = ict.mean.numpy()
    disp = np.full((64, 64), 0.05, np.float32)
    write_displacement(tmp_path, disp, None)
    path = write_detail_mesh(tmp_path, verts, topo, disp, levels=1, region="face")
    assert path.name == "mesh_detail.obj" and (tmp_path / "mesh_detail.mtl").exists()
    mesh = detail_mesh_arrays(verts, topo, disp, levels=1, region="face", normals=smooth_normals(verts, topo))
    obj = read_obj(path)
    v, faces = obj.vertices, obj.faces
    assert v.shape == (mesh.num_vertices, 3) and len(faces) == len(mesh.polygons)
    assert np.abs(v - mesh.vertices).max() < 1e-5  # written with 6 decimals
    text = path.read_text()
    assert text.count("\nvt ") == len(mesh.uvs) and "mtllib mesh_detail.mtl" in text
    assert "units: cm" in text.splitlines()[1]
    assert sorted(len(f) for f in faces)[-1] > 4  # the coarse neighbours became n-gons
    mtl = (tmp_path / "mesh_detail.mtl").read_text()
    assert all(f"newmtl {m}" in mtl for m in topo.material_names)
    assert "normal.png" not in mtl and "displacement" not in mtl  # the detail is in the geometry
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_levels_validated(ict):
    with pytest.raises(ValueError):
        subdivide(ict.mean.numpy(), ict.topology, 5)


def test_displacing_needs_normals_and_reads_only_valid_texels():
    verts, topo = grid_mesh(4, (2.0, 2.0))
    with pytest.raises(ValueError, match="normals"):
        detail_mesh_arrays(verts, topo, np.zeros((8, 8)), levels=1, region=None)
    # Texels outside the mask are replaced by the dilation of the valid ones before sampling.
    S = 32
    u, v = texel_uv(S)
    inside = u < 0.5
    disp = np.where(inside, 0.1, 5.0)
    normals = smooth_normals(verts, topo)
    masked = detail_mesh_arrays(verts, topo, disp, levels=1, region=None, mask=inside, dilate_px=S, normals=normals)
    assert np.allclose(masked.displacement, 0.1)
    unmasked = detail_mesh_arrays(verts, topo, disp, levels=1, region=None, normals=normals)
    assert unmasked.displacement.max() == 5.0
    assert subdivide(verts, topo, 1, None).normals is None  # no normals given, none interpolated


def test_written_detail_mesh_samples_only_the_face_islands(ict, tmp_path):
    # write_detail_mesh's defaults: mesh.obj's smooth normals and the face islands as the valid texels, so
    # garbage outside the islands never reaches the mesh (displacement.exr is dilated the same way).
    topo = ict.topology
    verts = ict.mean.numpy()
    S = 64
    islands = uv_mask(topo, S)
    disp = np.where(islands, 0.05, 9.0)
    path = write_detail_mesh(tmp_path, verts, topo, disp, levels=1)
    want = detail_mesh_arrays(verts, topo, np.full((S, S), 0.05), levels=1, normals=smooth_normals(verts, topo))
    assert np.abs(read_obj(path).vertices - want.vertices).max() < 1e-5
