"""Everything written for one fitted face: mesh.obj/.mtl, params.npz, report.json, overlay.png."""
from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..fit import FaceFit
from ..model.morphable import MorphableModel
from ..scene import Scene
from .files import write_image, write_json, write_npz
from .obj import write_obj
from .overlay import wireframe_overlay


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
        "energies": {log.name: {**log.energies, "total": log.total, "evaluations": log.evaluations}
                     for log in fit.stages},
        "warnings": fit.warnings,
        "preset": preset.get("preset"),
        "model": model.name,
        "units": model.units,
        "camera": {
            "focal_px": focal,
            "focal_guess_px": fit.focal_guess,
            "fov_deg": math.degrees(2 * math.atan(0.5 * max(h, w) / focal)),
            "image_size": [h, w],
        },
        "pose": {**pose_angles(s), "translation": s.translation[0].tolist()},
        "detection": {"score": float(fit.observation.score), "bbox": fit.observation.bbox.tolist(),
                      "detector": fit.observation.detector},
        "parts": fit.parts,
        "outputs": outputs,
        "versions": versions(),
    }


def mesh_edges(model: MorphableModel, region: str = "face") -> np.ndarray:
    """Unique polygon edges (E, 2) inside a region, for wireframes."""
    topo = model.topology
    polys = topo.polygons
    quads, tris = polys[polys[:, 3] >= 0], polys[polys[:, 3] < 0]
    e = np.concatenate([quads[:, [0, 1]], quads[:, [1, 2]], quads[:, [2, 3]], quads[:, [3, 0]],
                        tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    e = e[topo.region(region)[e].all(1)]
    return np.unique(np.sort(e, axis=1), axis=0)


def export_face(model: MorphableModel, fit: FaceFit, rgb: np.ndarray, folder: Path, input_path: str,
                face_index: int, preset: dict) -> dict:
    """Write the per-face outputs into ``folder`` (a staging folder); returns the report."""
    start = time.perf_counter()
    folder = Path(folder)
    vertices = fit.vertices(model).cpu().numpy()
    header = (f"facefit {__version__}: fitted {model.name} for {Path(input_path).name} face {face_index}\n"
              f"units: {model.units}; axes: x right, y up, z towards the viewer (model frame); "
              f"place in the camera with R, t of params.npz")
    write_obj(folder, "mesh", vertices, model.topology, header=header)
    write_npz(folder / "params.npz", **params_arrays(model, fit))
    write_image(folder / "overlay.png", make_overlay(model, fit, rgb))
    fit.timings["export"] = time.perf_counter() - start
    fit.timings["total"] = fit.timings.get("total", 0.0) + fit.timings["export"]
    outputs = ["mesh.obj", "mesh.mtl", "params.npz", "overlay.png", "report.json"]
    report = report_dict(model, fit, input_path, face_index, preset, outputs)
    write_json(folder / "report.json", report)
    return report


def make_overlay(model: MorphableModel, fit: FaceFit, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        scene = Scene(model, fit.state)
        cam = scene.camera_vertices()
        pix = scene.project(scene.vertices())[0][0].cpu().numpy()
        normals_ok = _front_facing_vertices(model, cam[0])
    edges = mesh_edges(model)
    return wireframe_overlay(rgb, pix, edges, normals_ok, fit.observation.landmarks, fit.landmarks_fitted)


def _front_facing_vertices(model: MorphableModel, cam_vertices: torch.Tensor) -> np.ndarray:
    tris = torch.as_tensor(model.topology.triangles, device=cam_vertices.device)
    v = cam_vertices[tris]
    n = torch.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1)
    front = (n * v.mean(1)).sum(-1) < 0
    out = torch.zeros(cam_vertices.shape[0], dtype=torch.bool, device=cam_vertices.device)
    out[tris[front].reshape(-1)] = True
    return out.cpu().numpy()
