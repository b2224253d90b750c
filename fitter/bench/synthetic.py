"""``facefit bench synthetic``: fit rendered faces of known geometry from pixels and measure the error.

Every case goes through the real pipeline: the rendered 8-bit image is given to the MediaPipe landmarker,
then to the fitter with the chosen configuration. Errors are measured on the ICT face region:
- ``vertex_error_mm``: mean distance between fitted and true vertices in camera space (includes the
  depth/scale ambiguity of a single view with unknown focal length);
- ``procrustes_error_mm``: the same after the similarity transform (rotation, translation, scale) that best
  aligns the fitted face to the true one (shape error only);
- ``landmark_rmse_px`` against the detections, ``landmark_true_rmse_px`` against the true projections of the
  same 478 surface points (the detector's own error is in the first, not in the second).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..export.files import write_image, write_json
from ..fit import FaceFit, fit_face
from ..io import LoadedImage
from ..model import load_ict
from ..model.morphable import MorphableModel
from ..observe import observe_image
from ..optimize.presets import load_preset, merge
from ..scene import Scene
from .scenes import RenderedCase, SyntheticCase, project_points, render_case, sample_case

REGION = "face"
EXAMPLE_IMAGES = 8


@dataclass
class PreparedCase:
    case: SyntheticCase
    rendered: RenderedCase
    observation: object  # ImageObservation
    observe_seconds: float


# -- ablation configurations (later issues add rows) -----------------------------------------------------
ABLATION_ROWS: list[dict] = [
    {"name": "landmarks", "preset": "fast", "overrides": {}},
]


def prepare(model: MorphableModel, count: int, seed: int, size: int) -> list[PreparedCase]:
    """Render and detect every case once (shared by all configurations)."""
    out = []
    for i in range(count):
        case = sample_case(model, i, seed, size)
        rendered = render_case(model, case)
        t = time.perf_counter()
        obs = observe_image(LoadedImage.from_array(rendered.image, path=f"<synthetic {seed}:{i}>"), cache=False)
        out.append(PreparedCase(case, rendered, obs, time.perf_counter() - t))
    return out


def procrustes_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance after the best similarity transform of ``estimate`` onto ``truth``."""
    me, mt = estimate.mean(0), truth.mean(0)
    a, b = estimate - me, truth - mt
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    u[:, -1] *= d
    scale = s.sum() / (a**2).sum()
    return float(np.linalg.norm(scale * a @ (u @ vt) + mt - truth, axis=1).mean())


def true_landmarks(model: MorphableModel, prepared: PreparedCase) -> np.ndarray:
    """True pixel positions of the 478 embedded landmark points."""
    emb = model.topology.embeddings["mediapipe478"]
    pts = (prepared.rendered.camera_vertices[model.topology.triangles[emb.triangles]]
           * emb.barycentrics[:, :, None]).sum(1)
    return project_points(pts, prepared.case)


def evaluate(model: MorphableModel, prepared: PreparedCase, fit: FaceFit, seconds: float) -> dict:
    mask = model.topology.region(REGION)
    with torch.no_grad():
        scene = Scene(model, fit.state)
        cam = scene.camera_vertices()[0].cpu().numpy()
        emb = scene.embedded("mediapipe478")
        fitted_lm = scene.project(emb)[0][0].cpu().numpy()
    truth = prepared.rendered.camera_vertices
    err = np.linalg.norm(cam[mask] - truth[mask], axis=1).mean() * 10.0
    proc = procrustes_error(cam[mask], truth[mask]) * 10.0
    true_lm = true_landmarks(model, prepared)
    face = prepared.observation.faces[0]
    return {
        "vertex_error_mm": float(err),
        "procrustes_error_mm": float(proc),
        "landmark_rmse_px": fit.rmse_px,
        "landmark_nme": fit.nme,
        "landmark_true_rmse_px": float(np.sqrt(((fitted_lm - true_lm) ** 2).sum(1).mean())),
        "detector_true_rmse_px": float(np.sqrt(((face.landmarks - true_lm) ** 2).sum(1).mean())),
        "focal_px": float(fit.state.focal()[0]),
        "seconds": seconds,
        "stage_seconds": {k: v for k, v in fit.timings.items() if k.startswith("stage_")},
    }


def case_header(prepared: PreparedCase) -> dict:
    c = prepared.case
    return {"index": c.index, "yaw_deg": c.yaw_deg, "pitch_deg": c.pitch_deg, "roll_deg": c.roll_deg,
            "focal_true_px": c.focal, "expression_extreme": c.expression_extreme,
            "faces_detected": len(prepared.observation.faces)}


def match_face(prepared: PreparedCase):
    """The detected face nearest the image centre of the rendered face (renders hold one face)."""
    faces = prepared.observation.faces
    return faces[0] if faces else None


def run_config(model: MorphableModel, cases: list[PreparedCase], preset: dict) -> list[dict]:
    rows = []
    for prepared in cases:
        row = case_header(prepared)
        face = match_face(prepared)
        if face is None:
            rows.append({**row, "detected": False})
            continue
        t = time.perf_counter()
        fit = fit_face(model, face, prepared.case.image_size, preset)
        seconds = time.perf_counter() - t + prepared.observe_seconds
        rows.append({**row, "detected": True, **evaluate(model, prepared, fit, seconds)})
    return rows


def aggregate(rows: list[dict]) -> dict:
    ok = [r for r in rows if r.get("detected")]

    def stat(key: str, subset: list[dict], fn) -> float | None:
        vals = [r[key] for r in subset if r.get(key) is not None]
        return float(fn(vals)) if vals else None

    out = {
        "detected": len(ok),
        "detection_rate": len(ok) / max(len(rows), 1),
        "vertex_error_mm_median": stat("vertex_error_mm", ok, np.median),
        "vertex_error_mm_mean": stat("vertex_error_mm", ok, np.mean),
        "procrustes_error_mm_median": stat("procrustes_error_mm", ok, np.median),
        "procrustes_error_mm_mean": stat("procrustes_error_mm", ok, np.mean),
        "landmark_rmse_px_median": stat("landmark_rmse_px", ok, np.median),
        "landmark_nme_median": stat("landmark_nme", ok, np.median),
        "landmark_true_rmse_px_median": stat("landmark_true_rmse_px", ok, np.median),
        "seconds_per_face_median": stat("seconds", ok, np.median),
    }
    extreme = [r for r in ok if r["expression_extreme"]]
    out["extreme"] = {
        "n": len(extreme),
        "procrustes_error_mm_median": stat("procrustes_error_mm", extreme, np.median),
        "vertex_error_mm_median": stat("vertex_error_mm", extreme, np.median),
    }
    return out


def run_synthetic(out_dir: Path, count: int = 50, seed: int = 0, preset: dict | None = None,
                  size: int = 512) -> dict:
    """Render ``count`` faces, fit them with ``preset``, write ``bench.json`` (and a few example images)."""
    out_dir = Path(out_dir)
    preset = preset or load_preset("default")
    model = load_ict()
    cases = prepare(model, count, seed, size)
    rows = run_config(model, cases, preset)
    result = {
        "n": count,
        "config": {"preset": preset.get("preset"), "seed": seed, "size": size, "region": REGION,
                   "detector": "mediapipe", "facefit": __version__, "stages": preset["stages"]},
        "aggregate": aggregate(rows),
        "cases": rows,
    }
    write_json(out_dir / "bench.json", result)
    for prepared in cases[:EXAMPLE_IMAGES]:
        write_image(out_dir / "images" / f"case{prepared.case.index:03d}.png", prepared.rendered.image)
    return result


def run_ablation(out_dir: Path, count: int = 50, seed: int = 0, size: int = 512, config: Path | None = None,
                 rows: list[dict] | None = None) -> dict:
    """Run the same faces under every ablation configuration; write ``ablation.json``."""
    out_dir = Path(out_dir)
    model = load_ict()
    cases = prepare(model, count, seed, size)
    table = []
    for spec in rows or ABLATION_ROWS:
        preset = merge(load_preset(spec["preset"], config), spec.get("overrides", {}))
        result_rows = run_config(model, cases, preset)
        agg = aggregate(result_rows)
        table.append({"name": spec["name"], "preset": spec["preset"], **{k: v for k, v in agg.items()}})
    result = {"n": count, "seed": seed, "size": size, "rows": table}
    write_json(out_dir / "ablation.json", result)
    return result


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(json.dumps(run_synthetic(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)["aggregate"]))
