"""Everything written for one fitted face: mesh.obj/.mtl, params.npz, report.json, overlay.png."""
from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import __version__
from ..common.arrays import nonfinite_problem
from ..common.colour import linear_to_srgb
from ..common.files import write_image, write_json, write_npz
from ..model.albedo import albedo_basis
from ..model.morphable import MorphableModel
from ..optimize.result import FaceFit
from ..optimize.schedule import NonFiniteFit
from ..render import interpolate, pixel_normals, rasterize, sh_shading, shade_grey
from ..scene import Scene
from .maps import export_maps
from .obj import write_obj
from .overlay import MAX_SIDE, shaded_overlay


def versions() -> dict[str, str]:
    out = {"facefit": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__}
    for name in ("mediapipe", "cv2"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # pragma: no cover - optional
            pass
    return out


def pose_angles(state) -> dict[str, float]:
    """Head yaw/pitch/roll in degrees (intrinsic Y-X-Z about the camera axes), for reading, not for maths."""
    from scipy.spatial.transform import Rotation

    rv = state.rotation[0].detach().cpu().numpy().astype(np.float64)
    yaw, pitch, roll = Rotation.from_rotvec(rv).as_euler("YXZ", degrees=True)
    return {"yaw_deg": float(yaw), "pitch_deg": float(pitch), "roll_deg": float(roll)}


def params_arrays(model: MorphableModel, fit: FaceFit) -> dict[str, np.ndarray]:
    s = fit.state
    h, w = fit.image_size
    arrays = {k: v for k, v in s.to_numpy().items() if v is not None}
    arrays.update(
        K=s.K()[0].detach().cpu().numpy(),
        R=s.rotation_matrix()[0].detach().cpu().numpy(),  # model frame -> OpenCV camera
        t=s.translation[0].detach().cpu().numpy(),
        focal_px=np.float32(s.focal()[0].item()),
        image_size=np.asarray([h, w], np.int64),
        units=np.asarray(model.units),
        model=np.asarray(model.name),
        expression_names=np.asarray(model.expression_names),
        camera_convention=np.asarray("OpenCV: x right, y down, z forward; X_cam = R @ X_model + t; "
                                     "pixel origin at the top-left pixel's corner"),
        landmarks_observed=fit.observation.landmarks,
        landmarks_fitted=fit.landmarks_fitted,
    )
    return arrays


def report_dict(model: MorphableModel, fit: FaceFit, input_path: str, face_index: int, preset: dict,
                outputs: list[str]) -> dict:
    s = fit.state
    h, w = fit.image_size
    focal = float(s.focal()[0])
    return {
        "input": input_path,
        "face_index": face_index,
        "landmarks": {
            "rmse_px": fit.rmse_px,
            "nme": fit.nme,
            "format": fit.observation.landmark_format,
            "count": int(len(fit.observation.landmarks)),
            "inter_ocular_px": fit.observation.inter_ocular,
        },
        "timings_s": fit.timings,
        "energies": {log.name: {**log.energies, "total": log.total, "evaluations": log.evaluations,
                                "line_search_failures": log.line_search_failures} for log in fit.stages},
        "warnings": fit.warnings,
        "preset": preset.get("preset"),
        "model": model.name,
        "units": model.units,
        "camera": {
            "focal_px": focal,
            "focal_guess_px": fit.focal_guess,
            # log-normal 68 % interval: the fit's curvature scaled by [camera] focal_std_calibration (measured on
            # the wild benchmark), or the focal prior's width where the curvature is flat (docs/fitting.md)
            "focal_log_std": fit.focal_log_std,
            "focal_std_source": fit.focal_std_source,
            "focal_px_range_68": [focal * math.exp(-fit.focal_log_std), focal * math.exp(fit.focal_log_std)],
            "fov_deg": math.degrees(2 * math.atan(0.5 * max(h, w) / focal)),
            "image_size": [h, w],
        },
        "pose": {**pose_angles(s), "translation": s.translation[0].tolist()},
        "detection": {"score": float(fit.observation.score), "bbox": fit.observation.bbox.tolist(),
                      "detector": fit.observation.detector},
        "parts": fit.parts,
        "quality": fit.quality,
        "agreement": agreement(fit),
        "suspect": fit.suspect,
        "outputs": outputs,
        "versions": versions(),
    }


def agreement(fit: FaceFit) -> dict:
    """The final fit's agreement with the image evidence (first frame): mean part IoU, landmark NME, and the
    photometric residual (median, in units of its sigma) and outlier fraction of the last stage that compared
    the photo."""
    stages = list(fit.quality.values())
    last = stages[-1] if stages else {}
    out = {"iou": (last.get("iou") or [None])[0], "nme": (last.get("nme") or [None])[0],
           "photometric_residual": None, "outlier_fraction": None}
    for stage in reversed(stages):
        photo = (stage.get("terms") or {}).get("photometric")
        if photo:
            out["photometric_residual"] = photo["residual_median_sigma"][0]
            out["outlier_fraction"] = photo["outlier_fraction"][0]
            break
    return out


def export_face(model: MorphableModel, fit: FaceFit, rgb: np.ndarray, folder: Path, input_path: str,
                face_index: int, preset: dict) -> dict:
    """Write the per-face outputs into ``folder`` (a staging folder); returns the report."""
    start = time.perf_counter()
    folder = Path(folder)
    vertices = fit.vertices(model).cpu().numpy()
    problem = nonfinite_problem({"vertices": vertices, **fit.state.to_numpy()})
    if problem:  # a non-finite fit is a failure, never a mesh of NaNs on disk (library callers included)
        raise NonFiniteFit(f"export_face: the fit of {Path(input_path).name} face {face_index} is not finite "
                           f"({problem}); nothing was written")
    header = (f"facefit {__version__}: fitted {model.name} for {Path(input_path).name} face {face_index}\n"
              f"units: {model.units}; axes: x right, y up, z towards the viewer (model frame); "
              f"place in the camera with R, t of params.npz")
    write_obj(folder, "mesh", vertices, model.topology, header=header)
    maps = export_face_maps(model, fit, folder, vertices, preset)
    params = params_arrays(model, fit)
    if "displacement" in maps:
        d = maps["displacement"]
        params.update(displacement_scale=np.float32(d["scale"]), displacement_offset=np.float32(d["offset"]),
                      displacement_units=np.asarray(d["units"]))
    write_npz(folder / "params.npz", **params)
    write_image(folder / "overlay.png", make_overlay(model, fit, rgb))
    fit.timings["export"] = time.perf_counter() - start
    fit.timings["total"] = fit.timings.get("total", 0.0) + fit.timings["export"]
    outputs = ["mesh.obj", "mesh.mtl", "params.npz", "overlay.png", "report.json"]
    outputs += [f for f in maps.get("files", []) if f not in outputs]
    report = report_dict(model, fit, input_path, face_index, preset, outputs)
    if maps:
        report["maps"] = {k: v for k, v in maps.items() if k != "files"}
    write_json(folder / "report.json", report)
    return report


def export_face_maps(model: MorphableModel, fit: FaceFit, folder: Path, vertices: np.ndarray, preset: dict) -> dict:
    """Albedo texture, displacement maps, normal map and detail mesh, when the fit produced them."""
    state = fit.state
    if (state.albedo is None and state.displacement is None) or not model.has_uvs:
        return {}

    cfg = preset.get("export", {})
    albedo = None
    if state.albedo is not None:
        basis = albedo_basis(model, state.albedo.shape[0])
        albedo = basis.per_vertex(state.albedo.detach(), model.num_vertices).cpu().numpy()
    displacement = None if state.displacement is None else state.displacement[0, 0].detach().cpu().numpy()
    return export_maps(folder, vertices, model.topology, displacement=displacement, albedo=albedo,
                       albedo_size=int(cfg.get("albedo_size", 1024)),
                       detail_levels=int(cfg.get("detail_levels", 2)) if displacement is not None else None)


def make_overlay(model: MorphableModel, fit: FaceFit, rgb: np.ndarray) -> np.ndarray:
    """The fitted mesh rendered (grey Lambertian, or albedo under the fitted light) and blended over the photo."""

    h, w = fit.image_size
    scale = min(1.0, MAX_SIDE / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    with torch.no_grad():
        scene = Scene(model, fit.state)
        cam = scene.camera_vertices()[:1]
        K = scene.K()[:1].clone()
        K[:, :2] *= torch.tensor([size[1] / w, size[0] / h], dtype=K.dtype, device=K.device)[:, None]
        frags = rasterize(cam, model.topology.triangles, K, size)
        if fit.state.albedo is not None and fit.state.sh is not None:

            basis = albedo_basis(model, fit.state.albedo.shape[0])
            albedo = basis.per_vertex(fit.state.albedo, model.num_vertices)
            linear = interpolate(frags, albedo) * sh_shading(pixel_normals(frags, cam), fit.state.sh[:1])
            render = linear_to_srgb(linear)
        else:
            render = shade_grey(frags, cam, channels=3)
        render = render[0].clamp(0, 1).cpu().numpy()
        mask = frags.mask[0].cpu().numpy()
    photo = rgb if scale == 1.0 else cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    observed = fit.observation.landmarks * np.array([size[1] / w, size[0] / h])
    fitted = fit.landmarks_fitted * np.array([size[1] / w, size[0] / h])
    return shaded_overlay(photo, render, mask, observed, fitted)
