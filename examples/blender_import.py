"""Import a facefit face folder into Blender with its maps.

Command line (Blender 3.6 - 5.x, or the ``bpy`` module from PyPI):

    blender --background --python examples/blender_import.py -- OUT/face_folder [options]
    python examples/blender_import.py OUT/face_folder [options]        # with `pip install bpy`

From Blender's Text editor: set FOLDER below (and OPTIONS if you like) and press Run Script.

Options:
    --mesh mesh.obj | mesh_detail.obj   which OBJ to import (default mesh.obj)
    --mode normal      (default) albedo + tangent-space normal map; the displacement texture and Displacement
                       node are built but left unconnected (plug them in when you want them)
    --mode displace    Subdivision (simple, --levels) + Displace modifier driven by displacement.exr on the
                       face vertices only: real geometry, any render engine; the normal map is unlinked
                       (it would count the detail twice)
    --mode material    material displacement (Displacement node -> Material Output, method "Displacement
                       Only") + Subdivision modifier; for Cycles. The normal map is unlinked.
    --levels N         subdivision levels for the displace / material modes (default 2)
    --units m | cm     m (default): the object is scaled by 0.01 so the head is life-size in metres;
                       cm: 1 Blender unit = 1 cm, as in the OBJ
    --save FILE.blend  save the scene
    --render FILE.png  render a small Cycles (CPU) preview with a camera and a light
    --report FILE.json write what was built and checked (objects, nodes, images, measured displacement)
    --empty            start from an empty scene (drops Blender's default cube, camera and light)

Conventions (docs/exports.md): OBJ in cm, y up (Blender's OBJ importer turns y-up into z-up);
displacement.exr holds centimetres along mesh.obj's vertex normals, so with the Displacement node and the
Displace modifier in *object* space the scale is exactly 1 (the object scale of 0.01 then makes them metres);
normal.png is tangent space, OpenGL (+Y) convention, which is Blender's; albedo.png is sRGB.
"""
from __future__ import annotations

import json
import os
import sys

import bpy

FOLDER = None  # set this when running from the Text editor
OPTIONS: dict = {}  # e.g. {"mode": "displace", "levels": 2}

FACE_MATERIAL = "M_Face"
FACE_GROUP = "facefit_face"


def parse_args(argv: list[str]) -> dict:
    import argparse

    args = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    p = argparse.ArgumentParser(prog="blender_import.py", description=__doc__.split("\n")[0])
    p.add_argument("folder", nargs="?" if FOLDER else None, default=FOLDER)
    p.add_argument("--mesh", default="mesh.obj")
    p.add_argument("--mode", choices=["normal", "displace", "material"], default="normal")
    p.add_argument("--levels", type=int, default=2)
    p.add_argument("--units", choices=["m", "cm"], default="m")
    p.add_argument("--save")
    p.add_argument("--render")
    p.add_argument("--report")
    p.add_argument("--empty", action="store_true")
    opts = vars(p.parse_args(args))
    opts.update(OPTIONS)
    return opts


def import_obj(path: str):
    before = set(bpy.data.objects)
    if hasattr(bpy.ops.wm, "obj_import"):  # Blender >= 3.3
        bpy.ops.wm.obj_import(filepath=path, forward_axis="NEGATIVE_Z", up_axis="Y")
    else:  # legacy Python importer
        bpy.ops.import_scene.obj(filepath=path, axis_forward="-Z", axis_up="Y", split_mode="OFF")
    new = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    if not new:
        raise RuntimeError(f"no mesh imported from {path}")
    return new[0]


def load_image(folder: str, name: str, colorspace: str):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    img = bpy.data.images.load(path, check_existing=True)
    img.colorspace_settings.name = colorspace
    return img


def face_material(obj):
    for slot in obj.material_slots:
        if slot.material and slot.material.name.split(".")[0] == FACE_MATERIAL:
            return slot.material, slot.slot_index
    raise RuntimeError(f"material {FACE_MATERIAL} not found on {obj.name}")


def build_material(mat, obj, folder: str, mode: str) -> dict:
    if mat.node_tree is None:  # the OBJ importer makes node materials already
        mat.use_nodes = True
    nt = mat.node_tree
    # Keep the Principled BSDF and the output; drop what the OBJ importer made from the MTL (it reads
    # map_Kd and map_Bump but leaves the normal map's image in sRGB, and ignores disp).
    for node in list(nt.nodes):
        if node.type not in ("BSDF_PRINCIPLED", "OUTPUT_MATERIAL"):
            nt.nodes.remove(node)
    bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
    out = next(n for n in nt.nodes if n.type == "OUTPUT_MATERIAL")
    uv_name = obj.data.uv_layers.active.name if obj.data.uv_layers else ""
    built = {}

    albedo = load_image(folder, "albedo.png", "sRGB")
    if albedo:
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.name = tex.label = "facefit albedo"
        tex.image = albedo
        tex.location = (-700, 300)
        nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        built["albedo"] = tex.name

    normal = load_image(folder, "normal.png", "Non-Color")
    if normal:
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.name = tex.label = "facefit normal"
        tex.image = normal
        tex.location = (-700, -50)
        nmap = nt.nodes.new("ShaderNodeNormalMap")
        nmap.name = nmap.label = "facefit normal map"
        nmap.space = "TANGENT"
        nmap.uv_map = uv_name
        nmap.location = (-350, -50)
        nt.links.new(tex.outputs["Color"], nmap.inputs["Color"])
        if mode == "normal":
            nt.links.new(nmap.outputs["Normal"], bsdf.inputs["Normal"])
        built["normal"] = nmap.name

    disp_img = load_image(folder, "displacement.exr", "Non-Color")
    if disp_img:
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.name = tex.label = "facefit displacement (cm)"
        tex.image = disp_img
        tex.interpolation = "Linear"
        tex.extension = "EXTEND"
        tex.location = (-700, -400)
        dnode = nt.nodes.new("ShaderNodeDisplacement")
        dnode.name = dnode.label = "facefit displacement"
        dnode.space = "OBJECT"  # the OBJ's units are cm, so a height in cm needs scale 1
        dnode.inputs["Midlevel"].default_value = 0.0
        dnode.inputs["Scale"].default_value = 1.0
        dnode.location = (-350, -400)
        nt.links.new(tex.outputs["Color"], dnode.inputs["Height"])
        if mode == "material":
            nt.links.new(dnode.outputs["Displacement"], out.inputs["Displacement"])
            if hasattr(mat, "displacement_method"):  # Blender >= 4.1
                mat.displacement_method = "DISPLACEMENT"
            elif hasattr(mat, "cycles"):
                mat.cycles.displacement_method = "DISPLACEMENT"
        built["displacement"] = dnode.name
    return built


def add_face_group(obj, material_index: int):
    mesh = obj.data
    verts = sorted({v for p in mesh.polygons if p.material_index == material_index for v in p.vertices})
    group = obj.vertex_groups.get(FACE_GROUP) or obj.vertex_groups.new(name=FACE_GROUP)
    group.add(verts, 1.0, "REPLACE")
    return group


def add_modifiers(obj, folder: str, levels: int, displace: bool):
    sub = obj.modifiers.new("facefit subdivision", "SUBSURF")
    sub.subdivision_type = "SIMPLE"  # stay on mesh.obj's surface, like mesh_detail.obj
    sub.levels = sub.render_levels = levels
    if not displace:
        return [sub.name]
    img = load_image(folder, "displacement.exr", "Non-Color")
    tex = bpy.data.textures.new("facefit displacement (cm)", type="IMAGE")
    tex.image = img
    tex.extension = "EXTEND"
    tex.use_interpolation = True  # bilinear look-ups
    if hasattr(tex, "use_clamp"):
        tex.use_clamp = False  # keep negative displacements
    mod = obj.modifiers.new("facefit displace", "DISPLACE")
    mod.texture = tex
    mod.texture_coords = "UV"
    mod.uv_layer = obj.data.uv_layers.active.name
    mod.direction = "NORMAL"
    mod.space = "LOCAL"
    mod.mid_level = 0.0
    mod.strength = 1.0  # cm in object space (the OBJ's units)
    mod.vertex_group = FACE_GROUP
    return [sub.name, mod.name]


def measure_displacement(obj, folder: str, material_index: int) -> dict:
    """Compare the Displace modifier's offsets (evaluated mesh with / without it, along the normals) with
    displacement.exr sampled bilinearly at the vertices' face UVs (texel centres at (c + 0.5) / W)."""
    import numpy as np

    mod = obj.modifiers.get("facefit displace")
    if mod is None:
        return {}
    deps = bpy.context.evaluated_depsgraph_get()

    def evaluated(show: bool):
        mod.show_viewport = show
        deps.update()
        ev = obj.evaluated_get(deps)
        me = ev.to_mesh()
        co = np.array([v.co[:] for v in me.vertices])
        nrm = np.array([v.normal[:] for v in me.vertices])
        loops = []  # (vertex, u, v) of every corner of a face-material polygon
        layer = me.uv_layers.active.data
        group = obj.vertex_groups[FACE_GROUP].index
        full = np.array([any(g.group == group and g.weight > 0.999 for g in v.groups) for v in me.vertices])
        for poly in me.polygons:
            if poly.material_index == material_index:
                for li in poly.loop_indices:
                    loops.append((me.loops[li].vertex_index, *layer[li].uv))
        ev.to_mesh_clear()
        return co, nrm, np.array(loops), full

    co1, _, _, _ = evaluated(True)
    co0, n0, loops, full = evaluated(False)
    mod.show_viewport = True
    offset = ((co1 - co0) * n0).sum(1)
    img = mod.texture.image
    W, H = img.size
    px = np.array(img.pixels[:], np.float64).reshape(H, W, img.channels)[::-1, :, 0]  # row 0 = top (v = 1)
    x = np.clip(loops[:, 1] * W - 0.5, 0, W - 1)
    y = np.clip((1 - loops[:, 2]) * H - 0.5, 0, H - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    fx, fy = x - x0, y - y0
    want = (px[y0, x0] * (1 - fx) + px[y0, x1] * fx) * (1 - fy) + (px[y1, x0] * (1 - fx) + px[y1, x1] * fx) * fy
    vid = loops[:, 0].astype(int)
    # A vertex on a UV seam has several UVs; the modifier uses one of them: take the closest.
    err = np.full(len(co0), np.inf)
    np.minimum.at(err, vid, np.abs(offset[vid] - want))
    face = np.isfinite(err) & full
    worst = int(np.argmax(np.where(face, err, -1)))
    worst_uvs = loops[vid == worst, 1:].tolist()
    moved = np.abs(co1 - co0).max(1) > 1e-9
    return {"vertices": int(len(co0)), "face_vertices": int(face.sum()),
            "offset_cm_range": [float(offset[face].min()), float(offset[face].max())],
            "exr_cm_range": [float(want.min()), float(want.max())],
            "abs_error_cm_median": float(np.median(err[face])),
            "abs_error_cm_p99": float(np.percentile(err[face], 99)), "abs_error_cm_max": float(err[face].max()),
            "worst_vertex_uvs": worst_uvs,
            "partially_weighted_moved": int((moved & ~face).sum())}


def render_preview(obj, path: str, units: str):
    import math

    import mathutils

    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    scene.render.resolution_x = scene.render.resolution_y = 256
    s = 0.01 if units == "m" else 1.0
    cam_data = bpy.data.cameras.new("facefit camera")
    cam = bpy.data.objects.new("facefit camera", cam_data)
    scene.collection.objects.link(cam)
    # Face looks towards +z in the OBJ = -y in Blender (after the y-up -> z-up conversion).
    centre = obj.matrix_world @ mathutils.Vector((0, 0, 0))
    cam.location = centre + mathutils.Vector((0, -60 * s, 5 * s))
    cam.rotation_euler = (math.radians(88), 0, 0)
    cam_data.lens = 50
    light_data = bpy.data.lights.new("facefit light", "SUN")
    light_data.energy = 3.0
    light = bpy.data.objects.new("facefit light", light_data)
    light.rotation_euler = (math.radians(60), math.radians(-20), 0)
    scene.collection.objects.link(light)
    scene.camera = cam
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return path


def main(opts: dict) -> dict:
    folder = os.path.abspath(opts["folder"])
    if opts.get("empty"):
        bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = import_obj(os.path.join(folder, opts["mesh"]))
    obj.name = "facefit_" + os.path.basename(folder.rstrip("/"))
    if opts["units"] == "m":
        obj.scale = (0.01, 0.01, 0.01)
    mat, index = face_material(obj)
    nodes = build_material(mat, obj, folder, opts["mode"])
    add_face_group(obj, index)
    modifiers = []
    if opts["mode"] in ("displace", "material"):
        modifiers = add_modifiers(obj, folder, opts["levels"], displace=opts["mode"] == "displace")
    report = {
        "blender": bpy.app.version_string, "object": obj.name, "vertices": len(obj.data.vertices),
        "polygons": len(obj.data.polygons), "uv_layers": [uv.name for uv in obj.data.uv_layers],
        "materials": [m.name for m in obj.data.materials], "face_material": mat.name, "nodes": nodes,
        "links": [f"{l.from_node.name}.{l.from_socket.name} -> {l.to_node.name}.{l.to_socket.name}"
                  for l in mat.node_tree.links],
        "images": {}, "modifiers": modifiers, "scale": list(obj.scale), "rotation": list(obj.rotation_euler),
    }
    for img in bpy.data.images:
        if img.source != "FILE":
            continue
        img.pixels[0]  # forces loading; an unreadable file leaves has_data False
        report["images"][img.name] = {"size": list(img.size), "channels": img.channels,
                                      "float": img.is_float, "colorspace": img.colorspace_settings.name,
                                      "has_data": bool(img.has_data), "depth": img.depth}
    if opts["mode"] == "displace":
        report["displace_check"] = measure_displacement(obj, folder, index)
    if opts.get("save"):
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(opts["save"]))
        report["saved"] = opts["save"]
    if opts.get("render"):
        report["render"] = render_preview(obj, os.path.abspath(opts["render"]), opts["units"])
    if opts.get("report"):
        with open(opts["report"], "w") as f:
            json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(parse_args(sys.argv))
