"""MTL text: one material per part of the model, with the face maps referenced from the face material."""
from __future__ import annotations

from pathlib import Path

from ..common.files import write_text
from ..model.topology import FACE_MATERIAL, Topology

# Default material colours (diffuse) when no texture is written for a material.
DEFAULT_DIFFUSE = {
    "M_Face": (0.65, 0.55, 0.5),
    "M_BackHead": (0.65, 0.55, 0.5),
    "M_ScleraLeft": (0.9, 0.9, 0.88),
    "M_ScleraRight": (0.9, 0.9, 0.88),
    "M_IrisLeft": (0.25, 0.18, 0.12),
    "M_IrisRight": (0.25, 0.18, 0.12),
}
OTHER_DIFFUSE = (0.6, 0.6, 0.6)  # any other material


def mtl_text(material_names: list[str], textures: dict[str, dict[str, str]] | None = None) -> str:
    """MTL with a diffuse colour per material and optional texture maps per material.

    ``textures``: material -> {"map_Kd": "albedo.png", "norm": "normal.png", "disp": "displacement.exr", ...}.
    Keys that name a default statement (Kd, Ka, Ks, Ns, illum) replace its value instead of adding a line.
    """
    textures = textures or {}
    out = []
    for name in material_names:
        kd = DEFAULT_DIFFUSE.get(name, OTHER_DIFFUSE)
        statements = {"Kd": f"{kd[0]:.3f} {kd[1]:.3f} {kd[2]:.3f}", "Ka": "0 0 0", "Ks": "0.05 0.05 0.05",
                      "Ns": "18", "illum": "2"}
        extra = {}
        for key, value in textures.get(name, {}).items():
            # A default statement given here (e.g. "Kd": "1 1 1" under a map_Kd) replaces the default line.
            (statements if key in statements else extra)[key] = value
        out.append(f"newmtl {name}")
        out += [f"{key} {value}" for key, value in {**statements, **extra}.items()]
        out.append("")
    return "\n".join(out)


def face_textures(folder: Path | None = None, displacement: dict | None = None, material: str = FACE_MATERIAL,
                  files: list[str] | None = None, bump_as_normal: bool = False,
                  bump_strength: float = 1.0) -> dict[str, dict[str, str]]:
    """MTL entries for the maps, ``{material: {key: value}}`` for :func:`mtl_text`.

    Lists the maps present in ``folder`` (or named in ``files``):

    - ``albedo.png`` -> ``map_Kd albedo.png`` and ``Kd 1 1 1`` (MTL multiplies the texture by Kd). Blender's
      and Maya's OBJ importers connect it to the base colour.
    - ``normal.png`` -> ``norm normal.png``: the common extension key for tangent-space normal maps (three.js,
      tinyobjloader...). Blender's importer ignores it. ``bump_as_normal=True`` adds ``map_Bump -bm
      <strength> normal.png``, which Blender's importer (checked with Blender 5.0.1) turns into a tangent-space
      Normal Map node — but with the image left in sRGB, which tilts every normal (a flat map bakes as a
      39-degree tilt), and which Maya reads as a *height* bump; so it is off by default.
    - ``displacement.png`` -> ``disp -mm <offset> <scale> displacement.png`` (the MTL spec's ``-mm base
      gain``: value = offset + scale * texel, in cm) when ``displacement`` (the dict returned by
      :func:`fitter.export.displacement.write_displacement`) is given. Blender's importer ignores ``disp``.

    The EXR is not referenced from the MTL (few OBJ importers read EXR); examples/blender_import.py and
    docs/exports.md set the maps up properly.
    """
    present = set(files) if files is not None else (
        {p.name for p in Path(folder).iterdir()} if folder is not None and Path(folder).is_dir() else set())
    entries: dict[str, str] = {}
    if "albedo.png" in present:
        entries["Kd"] = "1.000 1.000 1.000"
        entries["map_Kd"] = "albedo.png"
    if "normal.png" in present:
        entries["norm"] = "normal.png"
        if bump_as_normal:
            entries["map_Bump"] = f"-bm {bump_strength:g} normal.png"
    if "displacement.png" in present and displacement is not None:
        entries["disp"] = f"-mm {displacement['offset']!r} {displacement['scale']!r} displacement.png"
    return {material: entries} if entries else {}


def detail_textures(folder: Path | None = None, files: list[str] | None = None,
                    material: str = FACE_MATERIAL) -> dict[str, dict[str, str]]:
    """MTL entries for mesh_detail.mtl: :func:`face_textures` without the normal and displacement maps (they
    describe mesh.obj's surface; the detail mesh carries that detail itself)."""
    tex = face_textures(folder, None, material, files)
    keep = {k: v for k, v in tex.get(material, {}).items() if k in ("Kd", "map_Kd")}
    return {material: keep} if keep else {}


def write_material(folder: Path, topology: Topology, stem: str = "mesh",
                   textures: dict[str, dict[str, str]] | None = None) -> Path:
    """(Re)write ``<stem>.mtl`` with the texture entries (default: :func:`face_textures` of ``folder``,
    without displacement); the other materials keep their colours."""
    folder = Path(folder)
    textures = face_textures(folder) if textures is None else textures
    return write_text(folder / f"{stem}.mtl", mtl_text(topology.material_names, textures))
