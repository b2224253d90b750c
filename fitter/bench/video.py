"""``facefit bench video``: synthetic clips and multi-view captures of known geometry, fitted from pixels.

Clips (fitter.synth.clips: smooth head motion, eased expressions, blinks, speech-like jaw) are rendered frame
by frame (``clean`` or ``wild`` appearance), seen by the real detector, and fitted as one subject
(fitter.optimize.subject) and, for comparison, as independent photos (the photo pipeline on every frame).
``video.json`` holds, per clip and aggregated:

- ``identity_error_mm``: the fitted neutral face (identity, zero expression) against the true one, after the
  best similarity (Procrustes), face region; the independent fits' per-frame values and their median (the
  single-image figure of the same preset on the same frames); aggregated, both the pooled median of every
  clip's frames and, paired, how many clips' identities are below the median of their own frames
  (``clips_identity_below_own_frames``);
- ``frame_error_mm``: per frame, the posed face in the camera against the truth after Procrustes;
- ``jitter_mm_s2``: RMS vertex acceleration (second difference per second squared) of the face region in the
  camera, of the fit, of the truth and of the independent fits; ``jitter_ratio`` = independent / fit;
- ``jaw_lag_frames``: the lag maximising the cross-correlation of fitted and true ``jawOpen`` (positive: the
  fit is late);
- ``blink_recall``: true blinks (those whose sampled closure reaches BLINK_VISIBLE) during which the fitted
  ``eyeBlink_L/R`` rise above the clip's median by at least BLINK_FRACTION of the true peak;
- ``seconds_per_frame``: the subject fit per frame, with the keyframe phase apart (``keyframe_seconds``).

``--multiview`` (``multiview.json``): 3-5 cameras around a head seen at a few instants, fitted through the
calibrated rig, through an uncalibrated one (extrinsics fitted, the first camera the world, intrinsics known),
and each camera alone: identity errors, and the uncalibrated rig's recovered relative rotations (degrees)
and scale (the fitted camera baselines against the true ones). ``--pose-start`` (``pose_start.json``): the
starting head rotation error (degrees) of single synthetic photos with each starting-rotation source.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from .. import __version__
from ..camera import MODEL_TO_OPENCV, model_to_camera
from ..common.files import write_image, write_json
from ..energy.landmarks import landmark_embedding
from ..energy.pose_guidance import embedded_mean, guide_rotation
from ..evidence import Evidence, FrameEvidence, undetected_face
from ..io import LoadedImage, Rig, RigCamera
from ..metrics import MM_PER_CM, procrustes_error
from ..model import load_ict
from ..model.morphable import MorphableModel, neutral_face
from ..observe import observe_image, segment_faces
from ..optimize.fit import fit_face, focal_guess, uses_term
from ..optimize.init import InitSettings, initialise
from ..optimize.presets import load_preset
from ..optimize.subject import FrameSource, SubjectFit, face_sharpness, fit_sequence
from ..optimize.views import off_axis_deg as view_off_axis_deg
from ..state import FitState
from ..synth.cases import render_case, sample_case
from ..synth.clips import BLINK_NAMES, JAW_NAME, render_clip, sample_clip, sample_multiview, view_case
from ..synth.clips import with_look
from .synthetic import PreparedCase, match_face

REGION = "face"
MAX_LAG_FRAMES = 5  # jaw lag searched within +-5 frames (200 ms at 25 fps: any tracking delay shows well inside)
BLINK_VISIBLE = 0.5  # a true blink counts when its sampled closure reaches half-closed (visible at this fps)
BLINK_FRACTION = 0.5  # ... and is found when the fit rises above its median by half of the true peak
MULTIVIEW_YAW_DEG, MULTIVIEW_PITCH_DEG, MULTIVIEW_ROLL_DEG = 20.0, 10.0, 8.0  # extra instants' head poses
MULTIVIEW_SHIFT_CM = 1.0
EXAMPLE_FRAMES = 4  # frames of the first clip written as images

Progress = Callable[[str, int, int], None]


# -- shared pieces --------------------------------------------------------------------------------------------
def observe_rendered(image: np.ndarray, case, model: MorphableModel, rendered, label: str):
    """The detection of the rendered face (the one overlapping the truth), the observation time and sharpness."""
    t = time.perf_counter()
    obs = observe_image(LoadedImage.from_array(image, path=label), largest=False, cache=False)
    seconds = time.perf_counter() - t
    face = match_face(PreparedCase(case, rendered, obs, seconds), model)
    sharp = face_sharpness(image, face.landmarks, face.landmark_weights) if face is not None else None
    return face, seconds, sharp


def frame_source(images: list[np.ndarray], evidence: Evidence, preset: dict) -> FrameSource:
    backend = preset.get("segmentation", {}).get("backend", "auto")

    def masks(k: int):
        return segment_faces(LoadedImage.from_array(images[k]), [evidence.frames[k].face], backend=backend,
                             cache=False)[0]

    return FrameSource(photo=lambda k: images[k].astype(np.float32) / 255.0, masks=masks)


def identity_error(model: MorphableModel, identity, truth_identity, region: np.ndarray) -> float:
    return procrustes_error(neutral_face(model, identity, region),
                            neutral_face(model, truth_identity, region)) * MM_PER_CM


def jitter(vertices: np.ndarray, times: np.ndarray, valid: np.ndarray | None = None) -> float | None:
    """RMS acceleration (mm/s^2) of vertex tracks (T, N, 3) in cm, over triples of valid frames."""
    if len(vertices) < 3:
        return None
    dt1, dt2 = np.diff(times)[:-1], np.diff(times)[1:]
    a = ((vertices[2:] - vertices[1:-1]) / dt2[:, None, None] - (vertices[1:-1] - vertices[:-2]) / dt1[:, None, None]) \
        / (0.5 * (dt1 + dt2))[:, None, None]
    ok = np.ones(len(a), bool) if valid is None else valid[:-2] & valid[1:-1] & valid[2:]
    if not ok.any():
        return None
    return float(np.sqrt((a[ok] ** 2).sum(-1).mean()) * MM_PER_CM)


def lag_frames(fitted: np.ndarray, truth: np.ndarray, max_lag: int = MAX_LAG_FRAMES) -> int | None:
    """The shift (frames) of ``fitted`` against ``truth`` with the highest correlation (positive: fit late)."""
    a, b = fitted - fitted.mean(), truth - truth.mean()
    if len(a) <= 2 * max_lag or not b.std() > 0:
        return None
    scores = {}
    for lag in range(-max_lag, max_lag + 1):
        x = a[lag:] if lag >= 0 else a[:lag]
        y = b[: len(b) - lag] if lag >= 0 else b[-lag:]
        scores[lag] = float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-12))
    return max(scores, key=scores.get)


def blink_recall(fitted: np.ndarray, truth: np.ndarray, windows: np.ndarray, times: np.ndarray) -> tuple[int, int]:
    """(found, counted) true blinks: counted when the sampled truth reaches BLINK_VISIBLE, found when the fitted
    closure rises above its median by BLINK_FRACTION of the true peak within the blink."""
    base = float(np.median(fitted))
    found = counted = 0
    for start, end in windows:
        inside = (times >= start) & (times <= end)
        if not inside.any() or truth[inside].max() < BLINK_VISIBLE:
            continue
        counted += 1
        found += int(fitted[inside].max() - base >= BLINK_FRACTION * truth[inside].max())
    return found, counted


def camera_vertices(model: MorphableModel, identity, expression, rotation, translation) -> np.ndarray:
    """(T, V, 3) camera-space vertices of per-frame parameters."""
    with torch.no_grad():
        v = model.vertices(torch.as_tensor(np.asarray(identity), dtype=torch.float32),
                           torch.as_tensor(np.asarray(expression), dtype=torch.float32))
        return model_to_camera(v, torch.as_tensor(np.asarray(rotation), dtype=torch.float32),
                               torch.as_tensor(np.asarray(translation), dtype=torch.float32)).numpy()


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation, None when either series is constant (no jaw movement in a short clip)."""
    if not (np.std(a) > 0 and np.std(b) > 0):
        return None
    return float(np.corrcoef(a, b)[0, 1])


def median(values) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(vals)) if vals else None


# -- clips ------------------------------------------------------------------------------------------------------
def run_clip(model: MorphableModel, preset: dict, seed: int, seconds: float, fps: float, size: int, appearance: str,
             independent: bool = True, progress: Progress | None = None, examples: Path | None = None) -> dict:
    """Render, detect and fit one clip as a subject and as independent photos; its row of video.json."""
    clip = sample_clip(model, seed, fps=fps, duration=seconds, size=size, appearance=appearance)
    images, frames, cases, detect_seconds = [], [], [], 0.0
    for k, rendered in enumerate(render_clip(model, clip)):
        case = clip.case(k)
        face, secs, sharp = observe_rendered(rendered.image, case, model, rendered, f"<clip {seed}:{k}>")
        detect_seconds += secs
        images.append(rendered.image)
        cases.append(case)
        frames.append((face, sharp))
        if examples is not None and k < EXAMPLE_FRAMES:
            write_image(examples / f"clip{seed}_frame{k:03d}.png", rendered.image)
        if progress:
            progress("render", k + 1, len(clip))
    found = next((f for f, _ in frames if f is not None), None)
    row = {"seed": seed, "frames": len(clip), "fps": fps, "seconds": seconds, "appearance": appearance,
           "detected": int(sum(f is not None for f, _ in frames))}
    if found is None:
        return {**row, "fitted": False}
    evidence = Evidence([FrameEvidence(f if f is not None else undetected_face(found), (size, size),
                                       time_s=float(clip.times[k]), detected=f is not None, frame_index=k,
                                       sharpness=s) for k, (f, s) in enumerate(frames)])
    source = frame_source(images, evidence, preset)
    t = time.perf_counter()
    fit = fit_sequence(model, evidence, preset, source=source,
                       progress=(lambda phase, d, n: progress(phase, d, n)) if progress else None)
    fit_seconds = time.perf_counter() - t
    row.update(fitted=True, **clip_metrics(model, clip, fit, fit_seconds, detect_seconds))
    if independent:
        row["independent"] = independent_fits(model, clip, evidence, source, preset, progress)
        fit_jitter, ind_jitter = row["jitter_mm_s2"]["fit"], row["independent"]["jitter_mm_s2"]
        row["jitter_ratio"] = ind_jitter / fit_jitter if fit_jitter and ind_jitter else None
        row["nme_ratio"] = (row["nme_mean"] / row["independent"]["nme_mean"]
                            if row["independent"]["nme_mean"] else None)
    return row


def clip_metrics(model: MorphableModel, clip, fit: SubjectFit, fit_seconds: float, detect_seconds: float) -> dict:
    region = model.topology.region(REGION)
    s = fit.state
    fitted = camera_vertices(model, s.identity.numpy(), s.expression.numpy(), s.rotation.numpy(),
                             s.translation.numpy())[:, region]
    truth = camera_vertices(model, clip.identity, clip.expression, clip.rotation, clip.translation)[:, region]
    names = model.expression_names
    jaw = names.index(JAW_NAME)
    blinks = [names.index(n) for n in BLINK_NAMES]
    fitted_blink = s.expression[:, blinks].mean(1).numpy()
    true_blink = clip.expression[:, blinks].mean(1)
    found, counted = blink_recall(fitted_blink, true_blink, clip.blinks, clip.times)
    keyframe_s = float(fit.timings.get("keyframes", 0.0))
    frames = len(clip)
    return {
        "identity_error_mm": identity_error(model, s.identity.numpy(), clip.identity, region),
        "frame_error_mm": [procrustes_error(f, t) * MM_PER_CM for f, t in zip(fitted, truth)],
        "frame_error_mm_median": float(np.median([procrustes_error(f, t) * MM_PER_CM for f, t in zip(fitted, truth)])),
        "jitter_mm_s2": {"fit": jitter(fitted, clip.times), "truth": jitter(truth, clip.times)},
        "jaw_lag_frames": lag_frames(s.expression[:, jaw].numpy(), clip.expression[:, jaw]),
        "jaw_correlation": correlation(s.expression[:, jaw].numpy(), clip.expression[:, jaw]),
        "blinks_found": found, "blinks_counted": counted,
        "blink_recall": found / counted if counted else None,
        "nme_mean": float(np.nanmean(fit.nme)),
        "keyframes": fit.keyframes,
        "keyframe_seconds": keyframe_s,
        "seconds_per_frame": fit_seconds / frames,
        "seconds_per_frame_after_keyframes": (fit_seconds - keyframe_s) / frames,
        "detect_seconds_per_frame": detect_seconds / frames,
        "timings_s": fit.timings,
        "suspects": fit.suspects,
    }


def independent_fits(model: MorphableModel, clip, evidence: Evidence, source: FrameSource, preset: dict,
                     progress: Progress | None) -> dict:
    """Every detected frame fitted alone as a photo with the same preset: its identity errors and jitter."""
    region = model.topology.region(REGION)
    masks = uses_term(preset, "prdl")
    rows, cams, valid, nmes = [], [], [], []
    names = model.expression_names
    blinks = [names.index(n) for n in BLINK_NAMES]
    blink = np.zeros(len(evidence.frames))
    t = time.perf_counter()
    for k, frame in enumerate(evidence.frames):
        if not frame.detected:
            rows.append(None)
            cams.append(None)
            valid.append(False)
            continue
        fit = fit_face(model, frame.face, frame.image_size, preset, masks=source.masks(k) if masks else None,
                       photo=source.photo(k))
        s = fit.state
        rows.append(identity_error(model, s.identity.numpy(), clip.identity, region))
        cams.append(camera_vertices(model, s.identity.numpy(), s.expression.numpy(), s.rotation.numpy(),
                                    s.translation.numpy())[0][region])
        valid.append(True)
        nmes.append(fit.nme)
        blink[k] = float(s.expression[0, blinks].mean())
        if progress:
            progress("independent", k + 1, len(evidence.frames))
    found, counted = blink_recall(blink, clip.expression[:, blinks].mean(1), clip.blinks, clip.times)
    shape = next(c.shape for c in cams if c is not None)
    cams = [c if c is not None else np.zeros(shape) for c in cams]  # frames without a fit: left out of jitter
    return {"identity_error_mm": rows, "identity_error_mm_median": median(rows),
            "jitter_mm_s2": jitter(np.stack(cams), clip.times, np.array(valid)),
            "nme_mean": float(np.mean(nmes)) if nmes else None,
            "blinks_found": found, "blink_recall": found / counted if counted else None,
            "seconds_per_frame": (time.perf_counter() - t) / max(len(nmes), 1)}


def paired_clips(rows: list[dict]) -> list[dict]:
    """The fitted clips that have both a clip identity error and a median over their frames fitted one by one."""
    return [r for r in rows if r.get("identity_error_mm") is not None and r.get("independent")
            and r["independent"].get("identity_error_mm_median") is not None]


def aggregate_clips(rows: list[dict]) -> dict:
    ok = [r for r in rows if r.get("fitted")]
    paired = paired_clips(ok)

    def med(key, sub=None):
        return median([(r[sub] if sub else r).get(key) if (not sub or r.get(sub)) else None for r in ok])

    out = {
        "clips": len(rows), "fitted": len(ok),
        "identity_error_mm_median": med("identity_error_mm"),
        "single_image_identity_error_mm_median": median([v for r in ok if r.get("independent")
                                                         for v in r["independent"]["identity_error_mm"]]),
        # Paired, clip by clip: the pooled median above mixes clips of different difficulty (with two clips it
        # lands between them, wherever their tails meet), so each clip's identity is also set against the
        # median of its own frames fitted one by one.
        "single_image_identity_error_mm_median_of_clips": median([r["independent"]["identity_error_mm_median"]
                                                                  for r in ok if r.get("independent")]),
        "clips_identity_below_own_frames": sum(
            1 for r in paired if r["identity_error_mm"] < r["independent"]["identity_error_mm_median"]),
        "frame_error_mm_median": med("frame_error_mm_median"),
        "jitter_fit_mm_s2_median": median([r["jitter_mm_s2"]["fit"] for r in ok]),
        "jitter_truth_mm_s2_median": median([r["jitter_mm_s2"]["truth"] for r in ok]),
        "jitter_independent_mm_s2_median": median([r["independent"]["jitter_mm_s2"] for r in ok
                                                   if r.get("independent")]),
        "jitter_ratio_median": med("jitter_ratio"),
        "jaw_lag_frames": [r["jaw_lag_frames"] for r in ok],
        "blink_recall": (sum(r["blinks_found"] for r in ok) / max(sum(r["blinks_counted"] for r in ok), 1)
                         if any(r["blinks_counted"] for r in ok) else None),
        "blink_recall_independent": (sum(r["independent"]["blinks_found"] for r in ok if r.get("independent"))
                                     / max(sum(r["blinks_counted"] for r in ok), 1)
                                     if any(r["blinks_counted"] for r in ok) and any(r.get("independent") for r in ok)
                                     else None),
        "nme_ratio_median": med("nme_ratio"),
        "seconds_per_frame_median": med("seconds_per_frame"),
        "seconds_per_frame_after_keyframes_median": med("seconds_per_frame_after_keyframes"),
        "keyframe_seconds_median": med("keyframe_seconds"),
    }
    fit_j, truth_j = out["jitter_fit_mm_s2_median"], out["jitter_truth_mm_s2_median"]
    out["jitter_over_truth"] = fit_j / truth_j if fit_j and truth_j else None
    out["targets"] = {
        "identity_below_single_image_median": (out["identity_error_mm_median"] < out["single_image_identity_error_mm_median"]
                                               if out["identity_error_mm_median"] is not None and
                                               out["single_image_identity_error_mm_median"] is not None else None),
        "identity_below_own_frames_every_clip": (out["clips_identity_below_own_frames"] == len(paired)
                                                 if paired else None),
        "jitter_at_most_1.5x_truth": out["jitter_over_truth"] <= 1.5 if out["jitter_over_truth"] else None,
        "jitter_3x_below_independent": out["jitter_ratio_median"] >= 3.0 if out["jitter_ratio_median"] else None,
        "no_jaw_lag": all(lag == 0 for lag in out["jaw_lag_frames"] if lag is not None),
    }
    return out


def run_video_bench(out_dir: Path, preset: dict | None = None, count: int = 3, seconds: float = 2.0,
                    fps: float = 25.0, seed: int = 0, size: int = 256, appearance: str = "clean",
                    independent: bool = True, progress: Progress | None = None) -> dict:
    """Fit ``count`` synthetic clips; write ``video.json``."""
    out_dir = Path(out_dir)
    preset = preset or load_preset("default")
    model = load_ict()
    rows = []
    for i in range(count):
        rows.append(run_clip(model, preset, seed + i, seconds, fps, size, appearance, independent, progress,
                             examples=out_dir / "images" if i == 0 else None))
        if progress:
            progress("clips", i + 1, count)
    result = {"config": {"preset": preset.get("preset"), "n": count, "seconds": seconds, "fps": fps, "seed": seed,
                         "size": size, "appearance": appearance, "independent": independent, "facefit": __version__,
                         "video": preset["video"], "temporal": preset["temporal"]},
              "aggregate": aggregate_clips(rows), "clips": rows}
    write_json(out_dir / "video.json", result)
    return result


# -- multi-view -----------------------------------------------------------------------------------------------
def multiview_instants(scene, seed: int, instants: int) -> list:
    """The scene's head and ``instants - 1`` more poses of it (same face and expression) in the rig's world."""
    rng = np.random.default_rng([seed, 7])
    heads = [scene.head]
    for _ in range(instants - 1):
        ypr = rng.uniform(-1, 1, 3) * [MULTIVIEW_YAW_DEG, MULTIVIEW_PITCH_DEG, MULTIVIEW_ROLL_DEG]
        heads.append(dataclasses.replace(scene.head, rotation=Rotation.from_euler("YXZ", ypr, degrees=True).as_rotvec(),
                                         translation=rng.uniform(-MULTIVIEW_SHIFT_CM, MULTIVIEW_SHIFT_CM, 3)))
    return heads


def uncalibrated(rig: Rig) -> Rig:
    """The rig without its extrinsics (intrinsics kept), as ``--rig none`` with a known focal length."""
    cams = {n: RigCamera(n, c.image_size, c.K) for n, c in rig.cameras.items()}
    return Rig(cams, False, 1.0, {"format": "none", "units": "cm"})


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1.0, 1.0))))


@dataclasses.dataclass
class ViewImage:
    """One camera's image of one instant of a multi-view scene: the case rendered, and what the detector saw."""

    case: object  # SyntheticCase in the camera's frame
    rendered: object  # RenderedCase
    face: object | None  # the matched detection (None: not detected)
    sharpness: float | None
    view: int
    instant: int


def render_scene_views(model: MorphableModel, scene, seed: int, instants: int, appearance: str) -> list[ViewImage]:
    """Every instant of the scene (its head and ``instants - 1`` more poses) seen by every camera, rendered with
    the appearance and detected, instant by instant."""
    look = with_look(model, scene.head, appearance)
    out = []
    for i, head in enumerate(multiview_instants(scene, seed, instants)):
        for v, (name, camera) in enumerate(scene.rig.cameras.items()):
            case = dataclasses.replace(view_case(dataclasses.replace(head, appearance=look.appearance,
                                                                     effects=look.effects), camera), index=i)
            rendered = render_case(model, case)
            face, _, sharp = observe_rendered(rendered.image, case, model, rendered, f"<multiview {seed}:{i}:{name}>")
            out.append(ViewImage(case, rendered, face, sharp, v, i))
    return out


def run_scene(model: MorphableModel, preset: dict, seed: int, cameras: int | None, instants: int, size: int,
              appearance: str, progress: Progress | None = None) -> dict:
    scene = sample_multiview(model, seed, n_cameras=cameras, size=size)
    names = list(scene.rig.cameras)
    views = render_scene_views(model, scene, seed, instants, appearance)
    found = next((im.face for im in views if im.face is not None), None)
    row = {"seed": seed, "cameras": len(names), "instants": instants,
           "detected": int(sum(im.face is not None for im in views)), "images": len(views)}
    if found is None:
        return {**row, "fitted": False}
    evidence = Evidence([FrameEvidence(im.face if im.face is not None else undetected_face(found), (size, size),
                                       view=im.view, instant=im.instant, detected=im.face is not None,
                                       sharpness=im.sharpness) for im in views])
    source = frame_source([im.rendered.image for im in views], evidence, preset)
    region = model.topology.region(REGION)
    truth = scene.head.identity
    out = dict(row, fitted=True)
    t = time.perf_counter()
    calibrated = fit_sequence(model, evidence, preset, scene.rig, names, source=source)
    out["calibrated"] = {"identity_error_mm": identity_error(model, calibrated.state.identity.numpy(), truth, region),
                         "seconds": time.perf_counter() - t}
    t = time.perf_counter()
    free = fit_sequence(model, evidence, preset, uncalibrated(scene.rig), names, source=source)
    errors = rig_errors(scene.rig, free, names)
    out["uncalibrated"] = {"identity_error_mm": identity_error(model, free.state.identity.numpy(), truth, region),
                           "seconds": time.perf_counter() - t, **errors,
                           **head_scale(model, free.state.identity.numpy(), truth, region, errors["baseline_ratio"])}
    singles, turns = [], []
    for k, frame in enumerate(evidence.frames):
        if frame.instant != 0 or not frame.detected:
            continue
        fit = fit_face(model, frame.face, frame.image_size, preset,
                       masks=source.masks(k) if uses_term(preset, "prdl") else None, photo=source.photo(k))
        singles.append(identity_error(model, fit.state.identity.numpy(), truth, region))
        turns.append(off_axis_deg(views[k].case))
        if progress:
            progress("single views", len(singles), len(names))
    out["single_view_identity_error_mm"] = singles
    out["single_view_off_axis_deg"] = turns
    out["best_single_view_mm"] = min(singles) if singles else None
    out["median_single_view_mm"] = float(np.median(singles)) if singles else None
    out["frontal_single_view_mm"] = singles[int(np.argmin(turns))] if singles else None
    return out


def off_axis_deg(case) -> float:
    """How far a view is turned from the face (degrees): the fitter's own measure (fitter.optimize.views) for the
    case's true pose."""
    state = FitState.single(1, 1, (1, 1), 1.0)
    state.rotation = torch.as_tensor(case.rotation, dtype=torch.float64).reshape(1, 3)
    state.translation = torch.as_tensor(case.translation, dtype=torch.float64).reshape(1, 3)
    return float(view_off_axis_deg(state)[0])


def head_scale(model: MorphableModel, identity, truth_identity, region: np.ndarray, baseline_ratio: list) -> dict:
    """The fitted neutral face's size over the true one's (RMS distance of the face region from its centroid),
    and the rig's scale error against it: the only scale an uncalibrated rig can know (images are unchanged when
    the head and the cameras are scaled together)."""
    def size(ident) -> float:
        face = neutral_face(model, ident, region)
        return float(np.sqrt(((face - face.mean(0)) ** 2).sum(1).mean()))

    ratio = size(identity) / size(truth_identity)
    return {"head_size_ratio": ratio,
            "scale_error_vs_head_pct": float(abs(np.mean(baseline_ratio) / ratio - 1) * 100) if baseline_ratio else None}


def rig_errors(rig: Rig, fit: SubjectFit, names: list[str]) -> dict:
    """Recovered relative rotations (deg) and baselines (scale) of the views against the first one."""
    with torch.no_grad():
        R, t = (m.numpy().astype(np.float64) for m in fit.state.view_extrinsics())
    true = [rig.cameras[n] for n in names]
    angles, ratios = [], []
    c_fit = [-R[v].T @ t[v] for v in range(len(names))]
    for v in range(1, len(names)):
        rel_true = true[v].R @ true[0].R.T
        rel_fit = R[v] @ R[0].T
        angles.append(rotation_angle(rel_true, rel_fit))
        base_true = np.linalg.norm(true[v].centre - true[0].centre)
        base_fit = np.linalg.norm(c_fit[v] - c_fit[0])
        ratios.append(base_fit / base_true)
    return {"relative_rotation_error_deg": angles, "relative_rotation_error_deg_max": max(angles, default=None),
            "baseline_ratio": ratios,
            "scale_error_pct": float(abs(np.mean(ratios) - 1.0) * 100) if ratios else None}


def run_multiview_bench(out_dir: Path, preset: dict | None = None, count: int = 3, cameras: int | None = None,
                        instants: int = 3, seed: int = 0, size: int = 256, appearance: str = "clean",
                        progress: Progress | None = None) -> dict:
    out_dir = Path(out_dir)
    preset = preset or load_preset("default")
    model = load_ict()
    rows = []
    for i in range(count):
        rows.append(run_scene(model, preset, seed + i, cameras, instants, size, appearance, progress))
        if progress:
            progress("scenes", i + 1, count)
    ok = [r for r in rows if r.get("fitted")]
    aggregate = {
        "scenes": len(rows), "fitted": len(ok),
        "calibrated_identity_error_mm_median": median([r["calibrated"]["identity_error_mm"] for r in ok]),
        "uncalibrated_identity_error_mm_median": median([r["uncalibrated"]["identity_error_mm"] for r in ok]),
        "best_single_view_mm_median": median([r["best_single_view_mm"] for r in ok]),
        "median_single_view_mm_median": median([r["median_single_view_mm"] for r in ok]),
        "frontal_single_view_mm_median": median([r["frontal_single_view_mm"] for r in ok]),
        "calibrated_below_frontal_single_view": [r["calibrated"]["identity_error_mm"] < r["frontal_single_view_mm"]
                                                 for r in ok if r["frontal_single_view_mm"] is not None],
        "calibrated_below_best_single_view": [r["calibrated"]["identity_error_mm"] < r["best_single_view_mm"]
                                              for r in ok if r["best_single_view_mm"] is not None],
        "uncalibrated_rotation_error_deg_max": max((r["uncalibrated"]["relative_rotation_error_deg_max"] for r in ok
                                                    if r["uncalibrated"]["relative_rotation_error_deg_max"] is not None),
                                                   default=None),
        "uncalibrated_scale_error_pct_max": max((r["uncalibrated"]["scale_error_pct"] for r in ok
                                                 if r["uncalibrated"]["scale_error_pct"] is not None), default=None),
        "uncalibrated_scale_error_vs_head_pct_max": max((r["uncalibrated"]["scale_error_vs_head_pct"] for r in ok
                                                         if r["uncalibrated"]["scale_error_vs_head_pct"] is not None),
                                                        default=None),
    }
    result = {"config": {"preset": preset.get("preset"), "n": count, "cameras": cameras, "instants": instants,
                         "seed": seed, "size": size, "appearance": appearance, "facefit": __version__},
              "aggregate": aggregate, "scenes": rows}
    write_json(out_dir / "multiview.json", result)
    return result


# -- starting pose ----------------------------------------------------------------------------------------------
START_SOURCES = ("pnp", "transform", "landmarks3d")


def run_pose_start(out_dir: Path, preset: dict | None = None, count: int = 20, seed: int = 0, size: int = 512,
                   appearance: str = "clean", progress: Progress | None = None) -> dict:
    """Starting rotation error (deg) of single synthetic photos: the closed-form start with each rotation source
    (``pnp``: EPnP alone, ``transform``: MediaPipe's facial transform, ``landmarks3d``: the 3D landmarks' guide),
    and the raw guides before the PnP refinement."""
    out_dir = Path(out_dir)
    preset = preset or load_preset("default")
    model = load_ict()
    fmt = "mediapipe478"
    embedding = landmark_embedding(model, fmt)
    points = embedded_mean(model, fmt)
    flip = MODEL_TO_OPENCV.numpy().astype(np.float64)
    rows = []
    for i in range(count):
        case = sample_case(model, i, seed, size, detail=False, appearance=appearance)
        rendered = render_case(model, case)
        face, _, _ = observe_rendered(rendered.image, case, model, rendered, f"<pose {seed}:{i}>")
        row = {"index": i, "yaw_deg": case.yaw_deg, "pitch_deg": case.pitch_deg, "roll_deg": case.roll_deg,
               "detected": face is not None}
        if face is not None:
            truth = Rotation.from_rotvec(case.rotation).as_matrix()
            focal = focal_guess(case.image_size, preset)
            K = np.array([[focal, 0, size / 2.0], [0, focal, size / 2.0], [0, 0, 1.0]])
            settings = InitSettings(**preset["init"], sigma=float(preset["landmarks"]["sigma"]))
            for source in START_SOURCES:
                kwargs = {}
                if source == "landmarks3d":  # as fitter.optimize.subject starts a frame: the guide's rotation kept
                    guide = guide_rotation(face, points, K, "landmarks3d")
                    kwargs["rotation"] = Rotation.from_matrix(guide @ flip).as_rotvec() if guide is not None else None
                    kwargs["fix_rotation"] = guide is not None
                st = initialise(model, embedding, face.landmarks, face.landmark_weights, case.image_size, focal,
                                blendshapes=face.blendshapes, transform=face.transform if source != "pnp" else None,
                                settings=dataclasses.replace(settings, use_transform=source != "pnp"), **kwargs)
                row[f"start_{source}_deg"] = rotation_angle(Rotation.from_rotvec(st.rotation[0].numpy()).as_matrix(),
                                                            truth)
            for source in ("transform", "landmarks3d"):
                guide = guide_rotation(face, points, K, source)
                row[f"guide_{source}_deg"] = rotation_angle(guide @ flip, truth) if guide is not None else None
        rows.append(row)
        if progress:
            progress("faces", i + 1, count)
    keys = [f"start_{s}_deg" for s in START_SOURCES] + ["guide_transform_deg", "guide_landmarks3d_deg"]
    aggregate = {k: {"median": median([r.get(k) for r in rows]),
                     "mean": float(np.mean([r[k] for r in rows if r.get(k) is not None]))
                     if any(r.get(k) is not None for r in rows) else None} for k in keys}
    result = {"config": {"n": count, "seed": seed, "size": size, "appearance": appearance,
                         "focal": "the preset's guess (as a photo without EXIF)"},
              "aggregate": aggregate, "faces": rows}
    write_json(out_dir / "pose_start.json", result)
    return result
