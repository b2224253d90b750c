"""MTL files: default colours per material, the face maps referenced from M_Face, the detail mesh's MTL."""
from __future__ import annotations

from fitter.export.material import detail_textures, face_textures, mtl_text, write_material


def test_mtl_texture_lines():
    text = mtl_text(["M_Face"], {"M_Face": {"map_Kd": "albedo.png"}})
    assert "newmtl M_Face" in text and "map_Kd albedo.png" in text


def test_mtl_references_maps(tmp_path, ict):
    for name in ("albedo.png", "normal.png", "displacement.png", "displacement.exr"):
        (tmp_path / name).write_bytes(b"")
    tex = face_textures(tmp_path, {"scale": 0.5, "offset": -0.25})
    path = write_material(tmp_path, ict.topology, textures=tex)
    text = path.read_text()
    block = text.split("newmtl M_Face")[1].split("newmtl")[0]
    assert "map_Kd albedo.png" in block and "norm normal.png" in block
    assert "map_Bump" not in block  # Blender would load it as an sRGB normal map (see face_textures)
    assert "disp -mm -0.25 0.5 displacement.png" in block
    assert block.count("Kd ") == 2 and "Kd 1.000 1.000 1.000" in block  # Kd replaced, map_Kd kept
    assert "Kd 0.650 0.550 0.500" in text.split("newmtl M_BackHead")[1]  # other materials keep colours
    tex = face_textures(tmp_path, bump_as_normal=True, bump_strength=0.5)
    assert tex["M_Face"]["map_Bump"] == "-bm 0.5 normal.png" and "disp" not in tex["M_Face"]


def test_detail_mtl_keeps_only_the_albedo(tmp_path):
    files = ["albedo.png", "normal.png", "displacement.png"]
    assert detail_textures(files=files) == {"M_Face": {"Kd": "1.000 1.000 1.000", "map_Kd": "albedo.png"}}
    assert detail_textures(files=["normal.png"]) == {}
    assert face_textures(tmp_path / "missing") == {}
    text = mtl_text(["M_Face", "M_Other"])
    assert "Kd 0.600 0.600 0.600" in text.split("newmtl M_Other")[1]  # unknown materials: neutral grey
