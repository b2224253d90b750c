"""``facefit bench synthetic``: fit rendered faces of known geometry from pixels and measure the error.

Every case goes through the real pipeline: the rendered 8-bit image is given to the MediaPipe landmarker,
then to the fitter with the chosen configuration. Errors are measured on the ICT face region:
- ``vertex_error_mm``: mean distance between fitted and true vertices in camera space (includes the
  depth/scale ambiguity of a single view with unknown focal length);
- ``procrustes_error_mm``: the same after the similarity transform (rotation, translation, scale) that best
  aligns the fitted face to the true one (shape error only);
- ``landmark_rmse_px`` against the detections, ``landmark_true_rmse_px`` against the true projections of the
  same 478 surface points (the detector's own error is in the first, not in the second);
- ``mean_face_procrustes_error_mm``: the unfitted reference, ICT's mean shape with a neutral expression
  against the truth (what a fit must beat to have learnt anything about the face).

Faces are rendered with the ``clean`` appearance (the fitter's own image model) or the ``wild`` one
(fitter.synth.wild: what real photos hold and the fitter cannot represent); each case lists the wild effects
it was rendered with. Every configuration reports its per-case errors (``cases``) so that two configurations
can be compared face by face. See docs/benchmark.md.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..common.files import write_image, write_json
from ..crop import FitCrop
from ..io import LoadedImage
from ..metrics import procrustes_error
from ..model import load_ict
from ..model.morphable import MorphableModel
from ..observe import observe_image, segment_faces
from ..observe.segmentation import PART_NAMES
from ..optimize.fit import fit_face, uses_term
from ..optimize.presets import load_preset, merge
from ..optimize.quality import label_ious, rendered_part_labels
from ..optimize.result import FaceFit
from ..optimize.schedule import NonFiniteFit
from ..render import rasterize, uv_fragments
from ..scene import Scene
from ..synth.cases import render_case, sample_case
from ..synth.scenes import (
    RenderedCase,
    SyntheticCase,
    appearance,
    case_K,
    case_vertices,
    cornea_triangles,
    project_points,
)
from ..synth.uvmaps import vertex_uvs
from .masks import corrupt_masks, oracle_masks

REGION = "face"
EXAMPLE_IMAGES = 8


# Called as progress(task, done, total): task "render" while cases are rendered and detected, then each
# configuration's name while its fits run.
Progress = Callable[[str, int, int], None]


@dataclass
class PreparedCase:
    case: SyntheticCase
    rendered: RenderedCase
    observation: object  # ImageObservation
    observe_seconds: float
    mean_face_error_mm: float = float("nan")


# -- ablation configurations (later issues add rows) -----------------------------------------------------
# Each row runs a preset's stages (optionally only some of them, optionally without a term) on the same
# faces. masks: None (no PRDL), "pipeline" (what `facefit fit` would use here: without facer's weights, the
# landmark masks), "oracle" (rendered from the ground truth), "corrupted" (oracle masks eroded, dilated or
# shifted per part).
ABLATION_ROWS: list[dict] = [
    {"name": "landmarks", "preset": "default", "stages": ["rigid", "landmarks"], "masks": None},
    {"name": "landmarks+prdl/landmark-masks", "preset": "default", "stages": ["rigid", "landmarks", "prdl"],
     "masks": "pipeline"},
    {"name": "landmarks+prdl/oracle", "preset": "default", "stages": ["rigid", "landmarks", "prdl"],
     "masks": "oracle"},
    {"name": "landmarks+prdl/corrupted", "preset": "default", "stages": ["rigid", "landmarks", "prdl"],
     "masks": "corrupted"},
    {"name": "prdl/oracle", "preset": "default", "stages": ["rigid", "prdl"], "without": ["landmarks"],
     "rigid_term": "prdl", "masks": "oracle"},
    {"name": "landmarks+prdl+photometric", "preset": "default", "masks": "pipeline"},
    {"name": "landmarks+prdl+photometric/known-focal", "preset": "default", "masks": "pipeline",
     "known_focal": True},
    {"name": "fast", "preset": "fast", "masks": "pipeline"},
    {"name": "default", "preset": "default", "masks": "pipeline"},
    {"name": "critic", "preset": "critic", "masks": "pipeline"},
    {"name": "default-critic", "preset": "critic", "masks": "pipeline", "without": ["critic"]},
    {"name": "vfx", "preset": "vfx", "masks": "pipeline"},
]


def row_preset(spec: dict, config: Path | None = None) -> dict:
    """The preset an ablation row runs: selected stages, terms removed, the rigid stage's term swapped."""
    preset = load_preset(spec["preset"], config)
    stages = preset["stages"]
    if "stages" in spec:
        stages = [st for st in stages if st["name"] in spec["stages"]]
    stages = [dict(st, weights=dict(st["weights"])) for st in stages]
    for st in stages:
        for term in spec.get("without", []):
            st["weights"].pop(term, None)
        if st["name"] == "rigid" and "rigid_term" in spec:  # without landmarks the pose needs another term
            st["weights"][spec["rigid_term"]] = 1.0
            st["rounds"] = max(int(st.get("rounds", 1)), 2)
    preset["stages"] = stages
    return merge(preset, spec.get("overrides", {}))


def prepare(model: MorphableModel, count: int, seed: int, size: int, appearance: str = "clean",
            progress: Progress | None = None, first: int = 0) -> list[PreparedCase]:
    """Render and detect every case once (shared by all configurations); cases ``first`` .. ``first + count - 1``."""
    out = []
    for i in range(first, first + count):
        case = sample_case(model, i, seed, size, appearance=appearance)
        rendered = render_case(model, case)
        t = time.perf_counter()
        obs = observe_image(LoadedImage.from_array(rendered.image, path=f"<synthetic {appearance} {seed}:{i}>"),
                            cache=False)
        out.append(PreparedCase(case, rendered, obs, time.perf_counter() - t, mean_face_error(model, rendered)))
        if progress:
            progress("render", i + 1 - first, count)
    return out


def mean_face_error(model: MorphableModel, rendered: RenderedCase) -> float:
    """Procrustes error (mm) of ICT's mean shape, neutral expression, against the true face region."""
    mask = model.topology.region(REGION)
    mean = model.mean.detach().cpu().numpy()
    return procrustes_error(mean[mask], rendered.camera_vertices[mask]) * 10.0


def true_landmarks(model: MorphableModel, prepared: PreparedCase) -> np.ndarray:
    """True pixel positions of the 478 embedded landmark points."""
    emb = model.topology.embeddings["mediapipe478"]
    pts = (prepared.rendered.camera_vertices[model.topology.triangles[emb.triangles]]
           * emb.barycentrics[:, :, None]).sum(1)
    return project_points(pts, prepared.case)


@torch.no_grad()
def true_part_ious(model: MorphableModel, prepared: PreparedCase, cam: torch.Tensor, K: torch.Tensor,
                   crop: FitCrop) -> dict[str, float]:
    """IoU per part between the parts of camera-frame vertices ``cam`` (1, V, 3) seen through ``K`` (1, 3, 3) and
    those of the true geometry, in the fitting crop: the agreement a perfect face parser would report (occluders
    aside). The real photos' part IoU is measured against masks drawn from the detector's landmarks, which the
    fits follow more closely than the truth does (docs/segmentation.md); this is the same figure scored by the
    truth."""
    truth = torch.as_tensor(prepared.rendered.camera_vertices, dtype=cam.dtype, device=cam.device)[None]
    true = rendered_part_labels(model, truth, case_K(prepared.case).to(cam), crop)
    return label_ious(rendered_part_labels(model, cam, K, crop), lambda part: true == PART_NAMES.index(part) + 1)


def mean_part_iou(ious: dict | None) -> float | None:
    """The mean over the parts of a per-part IoU dict (None when there is none)."""
    return float(np.mean(list(ious.values()))) if ious else None


def _summary(values: list[float | None], fn=np.median) -> float | None:
    """``fn`` (median by default) of the values that are not None; None when there is none."""
    known = [v for v in values if v is not None]
    return float(fn(known)) if known else None


def evaluate(model: MorphableModel, prepared: PreparedCase, fit: FaceFit, seconds: float) -> dict:
    mask = model.topology.region(REGION)
    with torch.no_grad():
        scene = Scene(model, fit.state)
        cam = scene.camera_vertices()[0].cpu().numpy()
        emb = scene.embedded("mediapipe478")
        fitted_lm = scene.project(emb)[0][0].cpu().numpy()
        truth_parts = (true_part_ious(model, prepared, scene.camera_vertices()[:1], scene.K()[:1], fit.crop)
                       if fit.crop is not None else {})
    truth = prepared.rendered.camera_vertices
    err = np.linalg.norm(cam[mask] - truth[mask], axis=1).mean() * 10.0
    detail = {}
    if fit.state.displacement is not None and prepared.case.displacement is not None:
        fitted = fit.state.displacement[0, 0].detach().cpu().numpy()
        detail = displacement_errors(model, prepared, fitted) | registered_errors(model, prepared, fit.state, fitted)
    proc = procrustes_error(cam[mask], truth[mask]) * 10.0
    true_lm = true_landmarks(model, prepared)
    face = match_face(prepared, model)
    return {
        "vertex_error_mm": float(err),
        "procrustes_error_mm": float(proc),
        "landmark_rmse_px": fit.rmse_px,
        "landmark_nme": fit.nme,
        "landmark_true_rmse_px": float(np.sqrt(((fitted_lm - true_lm) ** 2).sum(1).mean())),
        "detector_true_rmse_px": float(np.sqrt(((face.landmarks - true_lm) ** 2).sum(1).mean())),
        "focal_px": float(fit.state.focal()[0]),
        "focal_log_std": fit.focal_log_std if math.isfinite(fit.focal_log_std) else None,
        "focal_std_source": fit.focal_std_source,
        "part_iou_truth": truth_parts,  # per part, against the true geometry's parts (true_part_ious)
        "suspect": fit.suspect,  # the stage the no-harm guard faulted, why, and whether undone (None: none)
        "seconds": seconds,
        "stage_seconds": {k: v for k, v in fit.timings.items() if k.startswith("stage_")},
        **detail,
    }


DETAIL_BAND_TEXELS = 10.0  # displacement is compared after removing a Gaussian blur of this sigma (at 512)


def visible_texels(model: MorphableModel, prepared: PreparedCase, size: int) -> np.ndarray:
    """(size, size) bool: face-material texels whose surface point is seen in the case's image."""
    import cv2


    topo = model.topology
    tri = prepared.rendered.triangle_id
    covered = tri >= 0
    rows = appearance(model).triangles[tri[covered]]  # (N, 3) vertex ids (the mouth cap's centre is V)
    face = np.zeros(topo.num_vertices + 1, bool)
    face[topo.triangles[topo.material_triangles("M_Face")].reshape(-1)] = True
    ok = face[rows].all(1)
    bary = prepared.rendered.barycentrics[covered][ok]
    uv = (vertex_uvs(model)[rows[ok]] * bary[:, :, None]).sum(1)
    mask = np.zeros((size, size), np.uint8)
    mask[np.clip(((1 - uv[:, 1]) * size).astype(int), 0, size - 1),
         np.clip((uv[:, 0] * size).astype(int), 0, size - 1)] = 1
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0


def displacement_errors(model: MorphableModel, prepared: PreparedCase, fitted: np.ndarray) -> dict:
    """Mean |fitted - true| displacement (mm) in the detail band over seen face texels, and the same for a zero
    map (what a method without detail scores)."""
    import cv2

    truth = prepared.case.displacement
    size = truth.shape[0]
    if fitted.shape != truth.shape:
        fitted = cv2.resize(fitted, truth.shape[::-1], interpolation=cv2.INTER_LINEAR)
    sigma = DETAIL_BAND_TEXELS * size / 512.0

    def band(d: np.ndarray) -> np.ndarray:
        return d - cv2.GaussianBlur(d, (0, 0), sigma)

    seen = visible_texels(model, prepared, size)
    err = np.abs(band(fitted) - band(truth))[seen].mean() * 10.0
    zero = np.abs(band(truth))[seen].mean() * 10.0
    return {"displacement_error_mm": float(err), "displacement_zero_error_mm": float(zero),
            "displacement_texels_seen": int(seen.sum())}


def registered_errors(model: MorphableModel, prepared: PreparedCase, state, fitted: np.ndarray) -> dict:
    """Mean |fitted - truth| (mm) in the detail band, with the truth registered to the fitted mesh
    (:func:`registered_displacement`), over the texels where that is defined; and the same for a zero map.

    ``displacement_error_mm`` compares the maps texel by texel in the UV layout, so a coarse fit whose surface
    puts a UV a few texels (a few mm) away from where the true surface has it scores a perfectly fitted detail
    map as wrong (the wrinkle sits at the right place on the fitted mesh and in the photo, at the wrong UV):
    grooves are 2 to 8 texels wide, the coarse registration error is 2 to 10 texels (median over the face).
    This variant measures the detail alone. The band is mask-normalised (the registered truth exists only
    where the fitted texel is seen)."""
    import cv2

    truth, seen = registered_displacement(model, prepared, state)
    size = truth.shape[0]
    if fitted.shape != truth.shape:
        fitted = cv2.resize(fitted, truth.shape[::-1], interpolation=cv2.INTER_LINEAR)
    sigma = DETAIL_BAND_TEXELS * size / 512.0
    w = seen.astype(np.float32)
    norm = np.maximum(cv2.GaussianBlur(w, (0, 0), sigma), 1e-6)

    def band(d: np.ndarray) -> np.ndarray:
        return d - cv2.GaussianBlur(d * w, (0, 0), sigma) / norm

    err = np.abs(band(fitted) - band(truth))[seen].mean() * 10.0
    zero = np.abs(band(truth))[seen].mean() * 10.0
    return {"displacement_registered_error_mm": float(err), "displacement_registered_zero_error_mm": float(zero)}


REGISTRATION_SCALE = 2  # the registration renders are made at this multiple of the image size
DEPTH_TOLERANCE_CM = 0.3  # a fitted texel is visible when its depth is this close to the fitted render's


def registered_displacement(model: MorphableModel, prepared: PreparedCase, state) -> tuple[np.ndarray, np.ndarray]:
    """The true detail as the fitted mesh carries it: (truth resampled onto the fitted UV layout (S, S) cm,
    (S, S) bool texels where that is defined).

    Texel t of the fitted face lies at a 3D point of the fitted mesh; where that point is visible in the photo
    (depth test against the fitted render), the photo shows there the true surface point under the same pixel,
    whose UV is read from a render of the true mesh; the registered truth at t is the true map at that UV.
    A detail map fitted to the photo through the fitted mesh can at best reproduce this: the coarse fit's
    registration error (the fitted and true surfaces put the same UV a few texels apart) is the coarse
    metrics' business, not the detail's.
    """

    topo = model.topology
    truth = prepared.case.displacement
    size = truth.shape[0]
    h, w = prepared.case.image_size
    k = REGISTRATION_SCALE
    app = appearance(model)
    face_tris = np.zeros(len(topo.triangles), bool)
    face_tris[topo.material_triangles("M_Face")] = True
    with torch.no_grad():
        # the true surface's UV per pixel (the photo's occluders: eyes, mouth cap)
        _, true_cam = case_vertices(model, prepared.case)
        cap = true_cam[:, torch.as_tensor(app.mouth_loop)].mean(1, keepdim=True)
        cap = cap + 0.6 * cap / cap.norm(dim=-1, keepdim=True)  # as in render_case
        true_frags = rasterize(torch.cat([true_cam, cap], 1), app.triangles, case_K(prepared.case, k),
                               (h * k, w * k))
        tid = true_frags.triangle_id[0].numpy()
        n_model = len(topo.triangles)
        # appearance triangles = model triangles without the corneas, then the cap: map back to model ids

        keep = np.ones(n_model, bool)
        keep[cornea_triangles(model)] = False
        model_id = np.concatenate([np.flatnonzero(keep), np.full(len(app.triangles) - keep.sum(), -1)])
        tri_true = np.where(tid >= 0, model_id[np.maximum(tid, 0)], -1)
        is_face = (tri_true >= 0) & face_tris[np.maximum(tri_true, 0)]
        pix = true_frags.pix_index.numpy()
        pix_tri = tri_true.reshape(-1)[pix]
        sel = pix_tri >= 0
        corners = topo.uvs[topo.triangle_uvs[pix_tri[sel]]]  # (N, 3, 2)
        uv_true = np.zeros((h * k * w * k, 2), np.float32)
        uv_true[pix[sel]] = (corners * true_frags.pix_bary.numpy()[sel][..., None]).sum(1)
        uv_true = uv_true.reshape(h * k, w * k, 2)
        # the fitted mesh: each face texel's camera point, its pixel, and the fitted render's depth there
        scene = Scene(model, state.detached())
        cam = scene.camera_vertices()[0]
        K = scene.K()[0].clone()
        K[:2] *= k
        fit_frags = rasterize(cam[None], torch.as_tensor(topo.triangles), K[None], (h * k, w * k))
        depth = fit_frags.depth[0].numpy()
        uvf = uv_fragments(topo.triangle_uvs, topo.uvs, size, topo.material_triangles("M_Face"))
        ok = uvf.mask.numpy()
        tri = uvf.triangle_id.numpy()[ok]
        points = (cam[torch.as_tensor(topo.triangles[tri])] * uvf.bary[ok][..., None]).sum(1).numpy()
    pix = points @ K.numpy().T
    x, y, z = pix[:, 0] / pix[:, 2], pix[:, 1] / pix[:, 2], points[:, 2]
    col, row = np.floor(x).astype(int), np.floor(y).astype(int)
    inside = (col >= 0) & (col < w * k) & (row >= 0) & (row < h * k)
    col, row = np.clip(col, 0, w * k - 1), np.clip(row, 0, h * k - 1)
    visible = inside & (depth[row, col] > 0) & (np.abs(depth[row, col] - z) < DEPTH_TOLERANCE_CM) & is_face[row, col]
    # bilinear UV of the true surface where all four neighbours are face, else the pixel's own
    uv = uv_true[row, col]
    xs, ys = np.clip(x - 0.5, 0, w * k - 1.001), np.clip(y - 0.5, 0, h * k - 1.001)
    c0, r0 = xs.astype(int), ys.astype(int)
    fx, fy = (xs - c0)[:, None], (ys - r0)[:, None]
    quad = [uv_true[r0, c0], uv_true[r0, c0 + 1], uv_true[r0 + 1, c0], uv_true[r0 + 1, c0 + 1]]
    face4 = is_face[r0, c0] & is_face[r0, c0 + 1] & is_face[r0 + 1, c0] & is_face[r0 + 1, c0 + 1]
    spread = np.max([np.abs(q - quad[0]).max(1) for q in quad], axis=0) < 8.0 / size
    smooth = face4 & spread
    bil = (quad[0] * (1 - fx) * (1 - fy) + quad[1] * fx * (1 - fy) + quad[2] * (1 - fx) * fy + quad[3] * fx * fy)
    uv = np.where(smooth[:, None], bil, uv)
    values = _bilinear(truth, uv[:, 0] * size - 0.5, (1 - uv[:, 1]) * size - 0.5)
    registered = np.zeros((size, size), np.float32)
    seen = np.zeros((size, size), bool)
    idx = np.flatnonzero(ok.reshape(-1))[visible]
    registered.reshape(-1)[idx] = values[visible]
    seen.reshape(-1)[idx] = True
    return registered, seen


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of a (H, W) image at pixel-centre coordinates (x, y) (edge values repeat outside)."""
    h, w = image.shape
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.minimum(x.astype(int), w - 2), np.minimum(y.astype(int), h - 2)
    fx, fy = x - x0, y - y0
    return (image[y0, x0] * (1 - fx) * (1 - fy) + image[y0, x0 + 1] * fx * (1 - fy)
            + image[y0 + 1, x0] * (1 - fx) * fy + image[y0 + 1, x0 + 1] * fx * fy)


def case_header(prepared: PreparedCase) -> dict:
    """What every configuration reports about a case before its fit (the fit's errors are added)."""
    c = prepared.case
    occluded = prepared.rendered.occlusion
    face_px = int((prepared.rendered.triangle_id >= 0).sum())
    return {"index": c.index, "procrustes_error_mm": None, "mean_face_procrustes_error_mm": prepared.mean_face_error_mm,
            "yaw_deg": c.yaw_deg, "pitch_deg": c.pitch_deg, "roll_deg": c.roll_deg,
            "focal_true_px": c.focal, "expression_extreme": c.expression_extreme,
            "faces_detected": len(prepared.observation.faces), "appearance": c.appearance,
            "effects": [e["name"] for e in prepared.rendered.effects],
            "occluded_fraction": float(occluded.sum() / max(face_px, 1)) if occluded is not None else 0.0}


def case_effects(cases: list[PreparedCase]) -> list[dict]:
    """Per case: its index and the wild effects it was rendered with (empty for clean renders)."""
    return [{"index": p.case.index, "effects": p.rendered.effects} for p in cases]


MIN_FACE_IOU = 0.3  # a detection is of the rendered face when its box overlaps the true landmarks' box this much


def match_face(prepared: PreparedCase, model: MorphableModel | None = None):
    """The detection of the rendered face: of the detected faces whose box overlaps the true landmarks' box
    (IoU >= MIN_FACE_IOU), the one overlapping most; None when there is none (a wild render can make the
    detector see small false faces in a background, a lens or a hand). Without ``model`` the first detection."""
    faces = prepared.observation.faces
    if model is None:
        return faces[0] if faces else None
    lm = true_landmarks(model, prepared)
    truth = np.r_[lm.min(0), lm.max(0)]
    best = max(faces, key=lambda f: _iou(np.asarray(f.bbox, float), truth), default=None)
    return best if best is not None and _iou(np.asarray(best.bbox, float), truth) >= MIN_FACE_IOU else None


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def case_masks(model: MorphableModel, prepared: PreparedCase, face, kind: str | None, preset: dict):
    """Part masks of one case for a mask mode (see ABLATION_ROWS)."""
    if kind is None:
        return None
    if kind == "pipeline":

        cfg = preset.get("segmentation", {})
        image = LoadedImage.from_array(prepared.rendered.image)
        return segment_faces(image, [face], backend=cfg.get("backend", "auto"), cache=False)[0]
    oracle = oracle_masks(model, prepared.rendered, true_landmarks(model, prepared))
    if kind == "oracle":
        return oracle
    if kind == "corrupted":
        return corrupt_masks(oracle, seed=prepared.case.seed)
    raise ValueError(f"unknown mask mode {kind!r}")


def run_config(model: MorphableModel, cases: list[PreparedCase], preset: dict, masks: str | None = "pipeline",
               known_focal: bool = False, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Fit every case with one configuration; one row per case (``detected`` False where the detector
    found no face, its errors then None)."""

    if not uses_term(preset, "prdl"):
        masks = None
    rows = []
    for k, prepared in enumerate(cases):
        if progress:
            progress(k, len(cases))
        row = case_header(prepared)
        face = match_face(prepared, model)
        if face is None:
            rows.append({**row, "detected": False})
            continue
        t = time.perf_counter()
        if known_focal:  # the camera's focal length given, as EXIF or a calibration would
            preset = merge(preset, {"camera": {"focal_px": prepared.case.focal}, "focal_prior": {"log_sigma": 0.01}})
        part_masks = case_masks(model, prepared, face, masks, preset)
        photo = prepared.rendered.image.astype(np.float32) / 255.0
        try:
            fit = fit_face(model, face, prepared.case.image_size, preset, masks=part_masks, photo=photo)
        except NonFiniteFit as exc:  # one face that cannot be fitted is that face's row, not the end of the run
            rows.append({**row, "detected": True, "fitted": False, "error": str(exc)})
            continue
        seconds = time.perf_counter() - t + prepared.observe_seconds
        rows.append({**row, "detected": True, "fitted": True, **evaluate(model, prepared, fit, seconds),
                     "part_iou": fit.parts.get("iou"), "mask_source": part_masks.source if part_masks else None})
    if progress:
        progress(len(cases), len(cases))
    return rows


def aggregate(rows: list[dict]) -> dict:
    detected = [r for r in rows if r.get("detected")]
    ok = [r for r in detected if r.get("fitted", True)]  # a fit that ended non-finite has no errors to count

    def stat(key: str, subset: list[dict], fn) -> float | None:
        return _summary([r.get(key) for r in subset], fn)

    out = {
        "detected": len(detected),
        "detection_rate": len(detected) / max(len(rows), 1),
        "failed": len(detected) - len(ok),
        "vertex_error_mm_median": stat("vertex_error_mm", ok, np.median),
        "vertex_error_mm_mean": stat("vertex_error_mm", ok, np.mean),
        "procrustes_error_mm_median": stat("procrustes_error_mm", ok, np.median),
        "procrustes_error_mm_mean": stat("procrustes_error_mm", ok, np.mean),
        "landmark_rmse_px_median": stat("landmark_rmse_px", ok, np.median),
        "landmark_nme_median": stat("landmark_nme", ok, np.median),
        "landmark_true_rmse_px_median": stat("landmark_true_rmse_px", ok, np.median),
        "seconds_per_face_median": stat("seconds", ok, np.median),
        "mean_face_procrustes_error_mm_median": stat("mean_face_procrustes_error_mm", ok, np.median),
        "suspect_faces": sum(r.get("suspect") is not None for r in ok),
        # the mean over the parts, median over the faces: against the part masks the fit used (landmark-drawn
        # without parser weights; None for rows without masks) and against the true geometry's parts
        "part_iou_median": _summary([mean_part_iou(r.get("part_iou")) for r in ok]),
        "part_iou_truth_median": _summary([mean_part_iou(r.get("part_iou_truth")) for r in ok]),
    }
    detail = [r for r in ok if r.get("displacement_error_mm") is not None]
    if detail:
        for key in ("displacement_error_mm", "displacement_zero_error_mm", "displacement_registered_error_mm",
                    "displacement_registered_zero_error_mm"):
            out[f"{key}_median"] = stat(key, detail, np.median)
        out["displacement_ratio_median"] = float(np.median(
            [r["displacement_error_mm"] / max(r["displacement_zero_error_mm"], 1e-12) for r in detail]))
        out["displacement_registered_ratio_median"] = float(np.median(
            [r["displacement_registered_error_mm"] / max(r["displacement_registered_zero_error_mm"], 1e-12)
             for r in detail]))
    out["focal"] = focal_coverage(ok)
    extreme = [r for r in ok if r["expression_extreme"]]
    out["extreme"] = {
        "n": len(extreme),
        "procrustes_error_mm_median": stat("procrustes_error_mm", extreme, np.median),
        "vertex_error_mm_median": stat("vertex_error_mm", extreme, np.median),
    }
    return out


def focal_coverage(rows: list[dict]) -> dict:
    """How well report.json's focal uncertainty (``camera.focal_log_std``) covers the true focal length, over
    fitted cases: ``within_std`` the fraction whose |log(fitted / true focal)| is within one reported standard
    deviation (0.68 when calibrated), ``std_scale_68`` what the reported deviations would have to be multiplied by
    to make it so, ``with_std`` the cases with a figure; the same for each ``focal_std_source`` ("curvature": what
    [camera] focal_std_calibration scales; "prior": the curvature was flat)."""
    errors = [abs(math.log(r["focal_px"] / r["focal_true_px"])) for r in rows]
    out = {"n": len(rows), "log_error_median": float(np.median(errors)) if errors else None,
           **_coverage(errors, rows)}
    for source in ("curvature", "prior"):
        picked = [(e, r) for e, r in zip(errors, rows) if r.get("focal_std_source") == source]
        out[source] = _coverage([e for e, _ in picked], [r for _, r in picked])
    return out


def _coverage(errors: list[float], rows: list[dict]) -> dict:
    pairs = [(e, r["focal_log_std"]) for e, r in zip(errors, rows) if r.get("focal_log_std")]
    if not pairs:
        return {"with_std": 0, "std_median": None, "within_std": None, "std_scale_68": None}
    ratios = np.array([e / s for e, s in pairs])
    return {"with_std": len(pairs), "std_median": float(np.median([s for _, s in pairs])),
            "within_std": float(np.mean(ratios <= 1.0)), "std_scale_68": float(np.quantile(ratios, 0.68))}


def run_synthetic(out_dir: Path, count: int = 50, seed: int = 0, preset: dict | None = None,
                  size: int = 512, appearance: str = "clean", progress: Progress | None = None) -> dict:
    """Render ``count`` faces, fit them with ``preset``, write ``bench.json`` (and a few example images)."""
    out_dir = Path(out_dir)
    preset = preset or load_preset("default")
    model = load_ict()
    cases = prepare(model, count, seed, size, appearance, progress)
    name = preset.get("preset") or "preset"
    rows = run_config(model, cases, preset, progress=_row_progress(progress, name))
    result = {
        "n": count,
        "config": {"preset": preset.get("preset"), "seed": seed, "size": size, "region": REGION,
                   "appearance": appearance, "detector": "mediapipe", "facefit": __version__,
                   "stages": preset["stages"]},
        "aggregate": aggregate(rows),
        "cases": rows,
        "case_effects": case_effects(cases),
    }
    write_json(out_dir / "bench.json", result)
    _write_examples(out_dir, cases)
    return result


def run_ablation(out_dir: Path, count: int = 50, seed: int = 0, size: int = 512, config: Path | None = None,
                 rows: list[dict] | None = None, appearance: str = "clean", progress: Progress | None = None) -> dict:
    """Run the same faces under every ablation configuration; write ``ablation.json`` and ``bench.json``
    (the same content: every row with its aggregate and its per-case errors, and each case's effects)."""
    out_dir = Path(out_dir)
    model = load_ict()
    cases = prepare(model, count, seed, size, appearance, progress)
    table = []
    for spec in rows or ABLATION_ROWS:
        preset = row_preset(spec, config)
        result_rows = run_config(model, cases, preset, spec.get("masks"), bool(spec.get("known_focal")),
                                 progress=_row_progress(progress, spec["name"]))
        table.append({"name": spec["name"], "preset": spec["preset"], "masks": spec.get("masks"),
                      **aggregate(result_rows), "cases": result_rows})
    result = {"n": count, "seed": seed, "size": size, "appearance": appearance, "rows": table,
              "case_effects": case_effects(cases)}
    write_json(out_dir / "ablation.json", result)
    write_json(out_dir / "bench.json", result)
    _write_examples(out_dir, cases)
    return result


def _row_progress(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(name, done, total))


def _write_examples(out_dir: Path, cases: list[PreparedCase]) -> None:
    for prepared in cases[:EXAMPLE_IMAGES]:
        write_image(out_dir / "images" / f"case{prepared.case.index:03d}.png", prepared.rendered.image)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(json.dumps(run_synthetic(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)["aggregate"]))
