"""OBJ writing (quads, UVs, materials) and the one OBJ reader (fitter.model.obj_reader) it is read back with."""
from __future__ import annotations

import numpy as np
import pytest

from fitter.export.obj import obj_text, write_obj
from fitter.model.loader_common import ModelFormatError, read_obj_faces
from fitter.model.obj_reader import read_obj


def test_obj_keeps_quads_uvs_and_materials(ict, tmp_path):
    verts = ict.mean.numpy()
    path = write_obj(tmp_path, "mesh", verts, ict.topology, header="units: cm")
    text = path.read_text()
    mesh = read_obj(path)
    v, faces = mesh.vertices, mesh.faces
    np.testing.assert_allclose(v, verts, atol=1e-5)
    assert len(faces) == len(ict.topology.polygons)
    n_quads = int((ict.topology.polygons[:, 3] >= 0).sum())
    assert sum(len(f) == 4 for f in faces) == n_quads
    assert text.count("\nvt ") == len(ict.topology.uvs)
    assert "mtllib mesh.mtl" in text and "# units: cm" in text
    for name in ict.topology.material_names:
        assert f"usemtl {name}" in text
        assert f"newmtl {name}" in (tmp_path / "mesh.mtl").read_text()
    # polygons keep their vertex order: the set of faces equals the topology's
    want = {tuple(p[p >= 0]) for p in ict.topology.polygons}
    assert {tuple(f) for f in faces} == want
    # ... their UVs and their materials too
    np.testing.assert_allclose(mesh.uvs, ict.topology.uvs, atol=1e-6)
    got = {(tuple(f), tuple(t), mesh.materials[m]) for f, t, m in zip(faces, mesh.face_uvs, mesh.face_material)}
    topo = ict.topology
    assert got == {(tuple(p[p >= 0]), tuple(t[t >= 0]), topo.material_names[m])
                   for p, t, m in zip(topo.polygons, topo.polygon_uvs, topo.polygon_material)}


def test_obj_without_mtl_header():
    from export_meshes import grid_mesh

    verts, topo = grid_mesh(1, (1.0, 1.0))
    text = obj_text(verts, topo, mtl_name=None)
    assert "mtllib" not in text and text.count("\nf ") == 1 and "f 1/1 2/2 4/4 3/3" in text


def test_read_obj_index_forms_and_materials(tmp_path):
    path = tmp_path / "a.obj"
    path.write_text("# comment\nmtllib a.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0 0.5 0.5 0.5\nv 0 1 0\n"
                    "vt 0 0\nvt 1 0\nvt 1 1\nvn 0 0 1\n"
                    "f 1/1 2/2 3/3\nusemtl skin\nf -4/-3/1 -3/-2/1 -2/-1/1 -1//1\nusemtl eye\nf 1 2 4\n"
                    "usemtl skin\nf 2 3 4\n")
    mesh = read_obj(path)
    assert mesh.vertices.shape == (4, 3) and mesh.vertices[2].tolist() == [1, 1, 0]  # colours dropped
    assert mesh.faces == [[0, 1, 2], [0, 1, 2, 3], [0, 1, 3], [1, 2, 3]]
    assert mesh.face_uvs == [[0, 1, 2], [0, 1, 2, -1], [-1, -1, -1], [-1, -1, -1]]
    assert mesh.materials == ["skin", "eye"] and mesh.face_material.tolist() == [-1, 0, 1, 0]


@pytest.mark.parametrize("line,message", [("f 1 2 -3", "line 3: index -3"), ("f 1 2", "at least 3 corners"),
                                          ("v 1 x 2", "line 3: could not convert"), ("f 0 1 2", "index 0")])
def test_read_obj_bad_lines(tmp_path, line, message):
    path = tmp_path / "bad.obj"
    path.write_text(f"v 0 0 0\nv 1 0 0\n{line}\nv 0 1 0\n")
    with pytest.raises(ValueError, match=message):
        read_obj(path)
    with pytest.raises(OSError):
        read_obj(tmp_path / "missing.obj")


def test_model_loaders_read_uv_layouts_through_it(tmp_path):
    path = tmp_path / "uv.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/3 2/2 3/1\n")
    uvs, fv, ft = read_obj_faces(path)
    assert uvs.dtype == np.float32 and fv.tolist() == [[0, 1, 2]] and ft.tolist() == [[2, 1, 0]]
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1 2 3\n")
    with pytest.raises(ModelFormatError, match="face 1 has no UV indices"):
        read_obj_faces(path)
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/-7 3/1\n")
    with pytest.raises(ModelFormatError, match="cannot read the OBJ file .*line 5: index -7"):
        read_obj_faces(path)
