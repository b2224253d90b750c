"""Facial animation as USD (``anim.usdc``): a UsdSkel blend-shape animation that Blender, Maya and Houdini
import as a mesh with animated shape keys and an animated head transform.

Pure arrays in (no fitting state), so any tracked sequence can be written:

- the neutral mesh (the subject's identity at zero expression), polygons kept (quads), UVs as the indexed
  face-varying primvar ``primvars:st``, ``subdivisionScheme = none`` (the fitted surface is the polygon mesh);
- one ``BlendShape`` per expression whose offsets are the model's expression basis deltas: the model is linear,
  so ``neutral + sum_e w_e * offset_e`` is exactly the fitted mesh (in float32);
- per-frame weights and the head pose on one joint (``head``) of a ``SkelAnimation``.

Frame of the stage (``upAxis = Y``, ``metersPerUnit = 0.01``: centimetres): the capture camera's frame in USD
camera axes, x right, y up, looking down -z. facefit's pose maps the model (y up) into the OpenCV camera
(y down, z forward), ``x_cv = R @ F @ x_model + t`` with ``F = diag(1, -1, -1)``; the stage stores
``x_usd = F @ x_cv``, so the joint's transform is ``(F R F, F t)``: a y-up world, as DCC users expect, in which
a zero rotation leaves the face upright looking at the camera, and an optional ``Camera`` prim at the origin
(from the intrinsics) shows the animation as the video saw it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..camera import MODEL_TO_OPENCV
from ..common.files import atomic_path

JOINT = "head"
CM_PER_METRE = 100.0
# Sensor width the optional camera prim is given, in tenths of a stage unit (mm for a cm stage): only the
# ratios focal/aperture matter for the projection, 36 mm (full frame) makes the lens read naturally.
SENSOR_WIDTH = 36.0


# time codes this close to a whole frame number are that frame (float round trips through seconds)
TIME_CODE_SNAP = 1e-6

def _flip() -> np.ndarray:
    return MODEL_TO_OPENCV.numpy().astype(np.float64)


def pose_to_stage(rotations: np.ndarray, translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """facefit head poses (T, 3, 3), (T, 3) -> the joint's rotation and translation in the y-up stage frame."""
    F = _flip()
    return F @ np.asarray(rotations, np.float64) @ F, np.asarray(translations, np.float64) @ F.T


def _check(neutral, polygons, deltas, names, weights, rotations, translations, frame_times, uvs, polygon_uvs):
    V, E, T = len(neutral), len(deltas), len(weights)
    problems = []
    if neutral.shape != (V, 3):
        problems.append(f"neutral_vertices must be (V, 3), got {neutral.shape}")
    if deltas.shape != (E, V, 3):
        problems.append(f"expression_deltas must be (E, V, 3) = ({E}, {V}, 3), got {deltas.shape}")
    if len(names) != E:
        problems.append(f"{len(names)} expression names for {E} expressions")
    if len(set(names)) != len(names):
        problems.append("expression names must be unique")
    if weights.shape != (T, E):
        problems.append(f"weights must be (T, E) = ({T}, {E}), got {weights.shape}")
    if rotations.shape != (T, 3, 3) or translations.shape != (T, 3):
        problems.append(f"rotations/translations must be ({T}, 3, 3)/({T}, 3), got {rotations.shape}/"
                        f"{translations.shape}")
    if frame_times.shape != (T,) or (T > 1 and not (np.diff(frame_times) > 0).all()):
        problems.append("frame_times must be T increasing times in seconds")
    if polygons.ndim != 2 or polygons.max() >= V or ((polygons >= 0).sum(1) < 3).any():
        problems.append("polygons must be (P, N) vertex indices < V, padded with -1, at least 3 per polygon")
    if (uvs is None) != (polygon_uvs is None):
        problems.append("uvs and polygon_uvs go together")
    elif polygon_uvs is not None and polygon_uvs.shape != polygons.shape:
        problems.append(f"polygon_uvs must have the polygons' shape {polygons.shape}, got {polygon_uvs.shape}")
    if T == 0:
        problems.append("no frames")
    if problems:
        raise ValueError("write_anim_usd: " + "; ".join(problems))


def write_anim_usd(path: str | Path, neutral_vertices: np.ndarray, polygons: np.ndarray,
                   expression_deltas: np.ndarray, expression_names: list[str], weights: np.ndarray,
                   rotations: np.ndarray, translations: np.ndarray, fps: float, frame_times: np.ndarray, *,
                   uvs: np.ndarray | None = None, polygon_uvs: np.ndarray | None = None,
                   camera_K: np.ndarray | None = None, image_size: tuple[int, int] | None = None,
                   name: str = "face") -> dict:
    """Write a blend-shape animation (.usdc, .usda or .usd) atomically; returns a summary for reports.

    ``neutral_vertices`` (V, 3) model frame, cm; ``polygons`` (P, N) vertex ids padded with -1;
    ``expression_deltas`` (E, V, 3) per unit weight; ``weights`` (T, E); ``rotations`` (T, 3, 3) and
    ``translations`` (T, 3) in facefit's convention (``x_cv = R @ diag(1,-1,-1) @ x_model + t``, cm);
    ``frame_times`` (T,) seconds; time codes are ``frame_times * fps`` (source frame numbers for a clip read
    with :func:`fitter.io.open_video`). ``uvs`` (U, 2) with ``polygon_uvs`` (P, N): UVs (v up). ``camera_K``
    (3, 3) and ``image_size`` (h, w): also write the capture camera.
    """
    from pxr import Gf, Sdf, Tf, Usd, UsdGeom, UsdSkel, Vt

    neutral = np.asarray(neutral_vertices, np.float64)
    polygons = np.asarray(polygons, np.int64)
    deltas = np.asarray(expression_deltas, np.float64)
    weights = np.asarray(weights, np.float64)
    rotations, translations = np.asarray(rotations, np.float64), np.asarray(translations, np.float64)
    frame_times = np.asarray(frame_times, np.float64)
    polygon_uvs = None if polygon_uvs is None else np.asarray(polygon_uvs, np.int64)
    _check(neutral, polygons, deltas, list(expression_names), weights, rotations, translations, frame_times,
           uvs, polygon_uvs)
    if not fps > 0:
        raise ValueError(f"write_anim_usd: fps must be > 0, got {fps}")
    shape_names = [Tf.MakeValidIdentifier(n) for n in expression_names]
    if len(set(shape_names)) != len(shape_names):
        raise ValueError("write_anim_usd: expression names collide once made valid USD identifiers")
    codes = frame_times * float(fps)
    whole = np.round(codes)  # frame numbers come back through seconds: 7.000000000000001 is frame 7
    codes = np.where(np.abs(codes - whole) < TIME_CODE_SNAP, whole, codes)

    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0 / CM_PER_METRE)
    stage.SetTimeCodesPerSecond(float(fps))
    stage.SetFramesPerSecond(float(fps))
    stage.SetStartTimeCode(float(codes[0]))
    stage.SetEndTimeCode(float(codes[-1]))
    root_path = Sdf.Path("/" + Tf.MakeValidIdentifier(name))
    root = UsdSkel.Root.Define(stage, root_path)
    stage.SetDefaultPrim(root.GetPrim())
    stage.GetRootLayer().customLayerData = {
        "generator": "facefit",
        "units": "cm",
        "frame": "capture camera, USD camera axes (x right, y up, looking down -z)",
        "head_pose": "joint 'head': x_stage = F R F x_model + F t, F = diag(1,-1,-1), (R, t) facefit's pose",
    }

    skel = UsdSkel.Skeleton.Define(stage, root_path.AppendChild("Skel"))
    skel.CreateJointsAttr([JOINT])
    skel.CreateBindTransformsAttr(Vt.Matrix4dArray([Gf.Matrix4d(1.0)]))
    skel.CreateRestTransformsAttr(Vt.Matrix4dArray([Gf.Matrix4d(1.0)]))
    anim = UsdSkel.Animation.Define(stage, root_path.AppendChild("Anim"))
    anim.CreateJointsAttr([JOINT])
    anim.CreateBlendShapesAttr(shape_names)
    UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])

    mesh = UsdGeom.Mesh.Define(stage, root_path.AppendChild("Mesh"))
    valid = polygons >= 0
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(neutral.astype(np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(valid.sum(1).astype(np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(polygons[valid].astype(np.int32)))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)  # counter-clockwise seen from outside
    if uvs is not None:
        st = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray,
                                                     UsdGeom.Tokens.faceVarying)
        st.Set(Vt.Vec2fArray.FromNumpy(np.asarray(uvs, np.float32)))
        st.SetIndices(Vt.IntArray.FromNumpy(polygon_uvs[valid].astype(np.int32)))
    binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    binding.CreateSkeletonRel().SetTargets([skel.GetPath()])
    binding.CreateJointIndicesPrimvar(constant=True, elementSize=1).Set(Vt.IntArray([0]))
    binding.CreateJointWeightsPrimvar(constant=True, elementSize=1).Set(Vt.FloatArray([1.0]))
    binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
    binding.CreateBlendShapesAttr(shape_names)
    targets = []
    for shape_name, delta in zip(shape_names, deltas):
        shape = UsdSkel.BlendShape.Define(stage, mesh.GetPath().AppendChild(shape_name))
        moved = np.flatnonzero(np.any(delta != 0, axis=1))  # sparse, yet exact: only zero rows are left out
        shape.CreateOffsetsAttr(Vt.Vec3fArray.FromNumpy(delta[moved].astype(np.float32)))
        shape.CreatePointIndicesAttr(Vt.IntArray.FromNumpy(moved.astype(np.int32)))
        targets.append(shape.GetPath())
    binding.CreateBlendShapeTargetsRel().SetTargets(targets)

    joint_rotations, joint_translations = pose_to_stage(rotations, translations)
    rot_attr, trans_attr = anim.CreateRotationsAttr(), anim.CreateTranslationsAttr()
    scale_attr, weight_attr = anim.CreateScalesAttr(), anim.CreateBlendShapeWeightsAttr()
    for k, code in enumerate(codes):
        time = Usd.TimeCode(float(code))
        quat = Gf.Matrix3d(*joint_rotations[k].T.reshape(-1).tolist()).ExtractRotation().GetQuat()  # Gf: row vectors
        rot_attr.Set(Vt.QuatfArray([Gf.Quatf(quat)]), time)
        trans_attr.Set(Vt.Vec3fArray([Gf.Vec3f(*joint_translations[k].tolist())]), time)
        scale_attr.Set(Vt.Vec3hArray([Gf.Vec3h(1.0, 1.0, 1.0)]), time)
        weight_attr.Set(Vt.FloatArray.FromNumpy(weights[k].astype(np.float32)), time)
    if camera_K is not None:
        if image_size is None:
            raise ValueError("write_anim_usd: camera_K needs image_size (h, w)")
        _define_camera(stage, Sdf.Path("/Camera"), np.asarray(camera_K, np.float64), image_size)

    with atomic_path(Path(path)) as tmp:
        if not stage.GetRootLayer().Export(str(tmp)):
            raise OSError(f"{path}: USD could not write the stage")
    return {"file": Path(path).name, "frames": int(len(codes)), "fps": float(fps), "units": "cm",
            "up_axis": "Y", "start_time_code": float(codes[0]), "end_time_code": float(codes[-1]),
            "blend_shapes": len(shape_names), "joint": JOINT}


def _define_camera(stage, path, K: np.ndarray, image_size: tuple[int, int]) -> None:
    """The capture camera at the stage origin: USD cameras look down -z with y up, the stage's own axes."""
    from pxr import UsdGeom

    h, w = image_size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    focal = fx * SENSOR_WIDTH / w
    cam = UsdGeom.Camera.Define(stage, path)
    cam.CreateFocalLengthAttr(float(focal))
    cam.CreateHorizontalApertureAttr(float(w * focal / fx))
    cam.CreateVerticalApertureAttr(float(h * focal / fy))
    # A positive offset shifts the film window right / up, so the optical axis lands left of / below its
    # centre: cx = w/2 - offset_x * fx / focal, and (image y down, camera y up) cy = h/2 + offset_y * fy / focal.
    cam.CreateHorizontalApertureOffsetAttr(float(-(cx - w / 2) * focal / fx))
    cam.CreateVerticalApertureOffsetAttr(float((cy - h / 2) * focal / fy))
