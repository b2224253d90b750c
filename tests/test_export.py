import json

import numpy as np
import pytest

from fitter.common.files import staged_folder, write_json, write_npz
from fitter.export.obj import mtl_text, read_obj_vertices, write_obj


def test_obj_keeps_quads_uvs_and_materials(ict, tmp_path):
    verts = ict.mean.numpy()
    path = write_obj(tmp_path, "mesh", verts, ict.topology, header="units: cm")
    text = path.read_text()
    v, faces = read_obj_vertices(path)
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


def test_mtl_texture_lines():
    text = mtl_text(["M_Face"], {"M_Face": {"map_Kd": "albedo.png"}})
    assert "newmtl M_Face" in text and "map_Kd albedo.png" in text


def test_staged_folder_is_all_or_nothing(tmp_path):
    dest = tmp_path / "face"
    with pytest.raises(RuntimeError):
        with staged_folder(dest) as stage:
            write_json(stage / "report.json", {"a": 1})
            raise RuntimeError("boom")
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    with staged_folder(dest) as stage:
        write_npz(stage / "params.npz", x=np.arange(3))
        write_json(stage / "report.json", {"a": np.float32(2.5)})
    assert json.loads((dest / "report.json").read_text()) == {"a": 2.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face"]
    with staged_folder(dest) as stage:  # overwrite replaces the whole folder
        write_json(stage / "other.json", {})
    assert sorted(p.name for p in dest.iterdir()) == ["other.json"]
