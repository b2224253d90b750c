"""anim.usdc: the ICT model's blend-shape animation read back through UsdSkel's own evaluation (blend shapes
and skinning) must equal the model at every time code; stage metadata, topology, UVs, the head joint and the
camera prim are checked against what was given; Blender (when the bpy module is installed) imports it with
animated shape keys."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

pxr = pytest.importorskip("pxr", reason="usd-core is not installed (pip install facefit[usd])")
from pxr import Gf, Usd, UsdGeom, UsdSkel  # noqa: E402

from fitter.export.usd import write_anim_usd  # noqa: E402

FPS = 25.0
EVERY = 7  # 7 / 25 * 25 = 7.000000000000001 in floating point: time codes must still be whole frames
FRAMES = 4
F = np.diag([1.0, -1.0, -1.0])
TOL_CM = 1e-3  # float32 storage of 53 shapes summed: ~1e-5 cm in practice
K = np.array([[900.0, 0.0, 330.0], [0.0, 910.0, 250.0], [0.0, 0.0, 1.0]])
IMAGE_SIZE = (480, 640)


@pytest.fixture(scope="module")
def animation(ict, tmp_path_factory):
    rng = np.random.default_rng(3)
    identity = torch.as_tensor(rng.standard_normal(ict.num_identity).astype(np.float32))
    neutral = ict.vertices(identity)[0].numpy()
    deltas = ict.expression_basis.numpy().reshape(ict.num_expression, ict.num_vertices, 3)
    weights = rng.uniform(0, 1, (FRAMES, ict.num_expression)) * (rng.uniform(size=(FRAMES, ict.num_expression)) < 0.3)
    rotations = Rotation.from_euler("YXZ", rng.uniform(-25, 25, (FRAMES, 3)), degrees=True).as_matrix()
    translations = rng.normal(0, 3, (FRAMES, 3)) + [0, 0, 60]
    frame_times = np.arange(FRAMES) * EVERY / FPS  # every 7th frame of a 25 fps clip
    path = tmp_path_factory.mktemp("usd") / "anim.usdc"
    summary = write_anim_usd(path, neutral, ict.topology.polygons, deltas, ict.expression_names, weights, rotations,
                             translations, FPS, frame_times, uvs=ict.topology.uvs,
                             polygon_uvs=ict.topology.polygon_uvs, camera_K=K, image_size=IMAGE_SIZE)
    return dict(path=path, summary=summary, neutral=neutral, deltas=deltas, weights=weights, rotations=rotations,
                translations=translations, names=ict.expression_names, topology=ict.topology)


def expected_stage_vertices(a, k: int) -> np.ndarray:
    """What the animation must show at frame k: the model's vertices, posed, in the y-up stage frame."""
    model = a["neutral"] + np.tensordot(a["weights"][k], a["deltas"], axes=1)
    camera_cv = model @ (a["rotations"][k] @ F).T + a["translations"][k]
    return camera_cv @ F.T


def test_stage_metadata_and_topology(animation):
    stage = Usd.Stage.Open(str(animation["path"]))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 0.01
    assert stage.GetTimeCodesPerSecond() == FPS == stage.GetFramesPerSecond()
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0.0, EVERY * (FRAMES - 1))
    weights = UsdSkel.Animation(next(p for p in stage.Traverse() if p.IsA(UsdSkel.Animation))).GetBlendShapeWeightsAttr()
    assert weights.GetTimeSamples() == [float(EVERY * k) for k in range(FRAMES)]  # exactly the source frame numbers
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/face/Mesh"))
    polys = animation["topology"].polygons
    assert list(mesh.GetFaceVertexCountsAttr().Get()) == list((polys >= 0).sum(1))  # quads kept
    assert list(mesh.GetFaceVertexIndicesAttr().Get()) == list(polys[polys >= 0])
    st = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st")
    assert st.GetInterpolation() == UsdGeom.Tokens.faceVarying
    uvs = np.asarray(st.ComputeFlattened())
    np.testing.assert_allclose(uvs, animation["topology"].uvs[animation["topology"].polygon_uvs[polys >= 0]], atol=1e-6)
    binding = UsdSkel.BindingAPI(mesh.GetPrim())
    assert list(binding.GetBlendShapesAttr().Get()) == animation["names"]
    assert animation["summary"]["blend_shapes"] == 53 and animation["summary"]["frames"] == FRAMES


def test_usdskel_evaluation_equals_the_model_at_every_time_code(animation):
    stage = Usd.Stage.Open(str(animation["path"]))
    cache = UsdSkel.Cache()
    cache.Populate(UsdSkel.Root(stage.GetPrimAtPath("/face")), Usd.PrimDefaultPredicate)
    mesh_prim = stage.GetPrimAtPath("/face/Mesh")
    skinning = cache.GetSkinningQuery(mesh_prim)
    skel = cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath("/face/Skel")))
    shapes = UsdSkel.BlendShapeQuery(UsdSkel.BindingAPI(mesh_prim))
    point_indices, offsets = shapes.ComputeBlendShapePointIndices(), shapes.ComputeSubShapePointOffsets()
    times = skel.GetAnimQuery().GetBlendShapeWeightTimeSamples()
    assert list(times) == [EVERY * k for k in range(FRAMES)]
    for k, code in enumerate(times):
        time = Usd.TimeCode(code)
        weights = skel.GetAnimQuery().ComputeBlendShapeWeights(time)
        mapper = skinning.GetBlendShapeMapper()
        weights = mapper.Remap(weights) if mapper is not None else weights
        sub_weights, shape_ids, sub_ids = shapes.ComputeSubShapeWeights(weights)
        points = UsdGeom.Mesh(mesh_prim).GetPointsAttr().Get(time)
        assert shapes.ComputeDeformedPoints(sub_weights, shape_ids, sub_ids, point_indices, offsets, points)
        assert skinning.ComputeSkinnedPoints(skel.ComputeSkinningTransforms(time), points, time)
        assert np.abs(np.asarray(points) - expected_stage_vertices(animation, k)).max() < TOL_CM
        # the head joint: rotation F R F and translation F t (Gf matrices act on row vectors)
        joint = np.asarray(skel.ComputeJointLocalTransforms(time)[0]).T
        np.testing.assert_allclose(joint[:3, :3], F @ animation["rotations"][k] @ F, atol=1e-6)
        np.testing.assert_allclose(joint[:3, 3], F @ animation["translations"][k], atol=1e-4)


def test_camera_prim_sees_what_K_sees(animation):
    stage = Usd.Stage.Open(str(animation["path"]))
    camera = UsdGeom.Camera(stage.GetPrimAtPath("/Camera")).GetCamera(Usd.TimeCode(0))
    view_proj = camera.frustum.ComputeViewMatrix() * camera.frustum.ComputeProjectionMatrix()
    points = expected_stage_vertices(animation, 0)[::997]
    h, w = IMAGE_SIZE
    for p in points:
        ndc = view_proj.Transform(Gf.Vec3d(*p.tolist()))
        pixel = np.array([(ndc[0] + 1) / 2 * w, (1 - ndc[1]) / 2 * h])
        cv = F @ p
        assert np.abs(pixel - (K @ cv)[:2] / cv[2]).max() < 1e-3


def test_bad_arrays_and_atomic_output(tmp_path, animation):
    a = animation
    with pytest.raises(ValueError, match="weights must be \\(T, E\\)") as err:
        write_anim_usd(tmp_path / "x.usdc", a["neutral"], a["topology"].polygons, a["deltas"], a["names"],
                       a["weights"][:, :5], a["rotations"], a["translations"], FPS, np.arange(FRAMES) / FPS)
    assert "\n" not in str(err.value)
    write_anim_usd(tmp_path / "y.usda", a["neutral"][:4], np.array([[0, 1, 2, 3]]), a["deltas"][:2, :4],
                   ["jaw Open", "a-b"], a["weights"][:, :2], a["rotations"], a["translations"], FPS,
                   np.arange(FRAMES) / FPS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.usda"]  # nothing half-written, no temporaries
    stage = Usd.Stage.Open(str(tmp_path / "y.usda"))
    shapes = UsdSkel.BindingAPI(stage.GetPrimAtPath("/face/Mesh"))
    assert list(shapes.GetBlendShapesAttr().Get()) == ["jaw_Open", "a_b"]  # valid USD identifiers


BLENDER_CHECK = textwrap.dedent("""
    import json, sys
    import bpy
    import numpy as np
    path, frames = sys.argv[1], json.loads(sys.argv[2])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.wm.usd_import(filepath=path) == {"FINISHED"}
    mesh = [o for o in bpy.data.objects if o.type == "MESH"][0]
    keys = mesh.data.shape_keys
    out = {"names": [k.name for k in keys.key_blocks][1:], "animated": keys.animation_data is not None,
           "frames": []}
    for f in frames:
        bpy.context.scene.frame_set(f)
        evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
        me = evaluated.to_mesh()
        co = np.empty(len(me.vertices) * 3)
        me.vertices.foreach_get("co", co)
        world = np.array(evaluated.matrix_world)
        co = co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
        out["frames"].append({"weights": [k.value for k in keys.key_blocks][1:], "points": co[::500].tolist()})
        evaluated.to_mesh_clear()
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="Blender's bpy module is not installed")
def test_blender_imports_animated_shape_keys(animation, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(BLENDER_CHECK)
    frames = [EVERY * k for k in range(FRAMES)]
    run = subprocess.run([sys.executable, str(script), str(animation["path"]), json.dumps(frames)],
                         capture_output=True, text=True, timeout=300)  # own process: Blender bundles its own USD
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, run.stderr[-2000:]
    result = json.loads(lines[0][len("RESULT"):])
    assert result["names"] == animation["names"] and result["animated"]
    # Blender's world is z-up in metres: (x, y, z)_usd cm -> (x, -z, y) / 100
    to_blender = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]) / 100.0
    for k, frame in enumerate(result["frames"]):
        np.testing.assert_allclose(frame["weights"], animation["weights"][k], atol=1e-6)
        expected = expected_stage_vertices(animation, k)[::500] @ to_blender.T
        assert np.abs(np.asarray(frame["points"]) - expected).max() < TOL_CM / 100.0
