"""Everything written for one subject of many frames (a clip, photos of one person, a multi-view capture):
``params.npz``, ``mesh.obj`` (the neutral face), ``anim.usdc``, ``overlay.mp4``, ``report.json`` and, on
request, one posed OBJ per frame (``frames/``). See docs/video.md for every array and its units.

Frames of the outputs are the subject's time instants (T). A multi-view capture's per-image arrays carry a
view axis after the instant's: (T, V, ...).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..camera import MODEL_TO_OPENCV, axis_angle_to_matrix
from ..common.files import write_json, write_npz, write_text
from ..evidence import Evidence
from ..model.morphable import MorphableModel
from ..optimize.result import FaceFit
from ..optimize.subject import SubjectFit
from .face import make_overlay, versions
from .obj import obj_text, write_obj
from .material import mtl_text
from .overlay import MAX_SIDE
from .usd import pose_to_stage, write_anim_usd
from .video_overlay import VideoOutput

# Photos of one person have no frame rate: the animation and the overlay show one photo per second.
PHOTO_FPS = 1.0
FRAMES_FOLDER = "frames"
CAMERA_CONVENTION = ("OpenCV: x right, y down, z forward; X_cam = R @ X_model + t (one camera), or "
                     "X_world = R @ X_model + t and X_cam = view_R @ X_world + view_t (multi-view); "
                     "pixel origin at the top-left pixel's corner")

# Frames (T,) -> images: a list with one RGB image per view, in view order (None: not available).
FrameImages = Callable[[], Iterator[list[np.ndarray | None]]]


def instant_images(fit: SubjectFit) -> np.ndarray:
    """(T, V) image index of each instant and view (-1 where an instant has no image of that view)."""
    views = fit.state.log_focal.shape[0]
    out = np.full((fit.num_instants, views), -1, np.int64)
    instants = fit.state.instants().cpu().numpy()
    for k, (i, v) in enumerate(zip(instants, fit.state.frame_view.cpu().numpy())):
        out[i, v] = k
    return out


def per_image(values: np.ndarray, table: np.ndarray, fill=np.nan) -> np.ndarray:
    """Per-image values (F, ...) as (T, V, ...) through ``table`` (T, V), ``fill`` where there is no image."""
    out = np.full(table.shape + values.shape[1:], fill, dtype=np.result_type(values.dtype, np.asarray(fill).dtype))
    ok = table >= 0
    out[ok] = values[table[ok]]
    return out


def squeeze_views(values: np.ndarray, single: bool) -> np.ndarray:
    """(T, V, ...) -> (T, ...) for a subject seen by one view."""
    return values[:, 0] if single else values


def head_pose(fit: SubjectFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per instant: axis-angle (T, 3), the full model -> camera (one camera) or world (rig) rotation (T, 3, 3),
    axis convention included, and translation (T, 3)."""
    s = fit.state
    with torch.no_grad():
        R = (axis_angle_to_matrix(s.rotation) @ MODEL_TO_OPENCV.to(s.rotation)).cpu().numpy()
    return s.rotation.detach().cpu().numpy(), R, s.translation.detach().cpu().numpy()


def landmark_arrays(fit: SubjectFit, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed (NaN where undetected) and fitted landmarks, (T, V, N, 2)."""
    observed = np.stack([f.face.landmarks if d else np.full_like(f.face.landmarks, np.nan)
                         for f, d in zip(fit.evidence.frames, fit.detected)]).astype(np.float32)
    return per_image(observed, table), per_image(fit.landmarks_fitted.astype(np.float32), table)


def acceleration_px(points: np.ndarray, times: np.ndarray | None,
                    segments: np.ndarray | None = None) -> float | None:
    """RMS second difference per second^2 of landmark tracks (T, N, 2) in pixels (NaN-free triples only, each
    within one segment: a cut is not motion)."""
    if times is None or len(points) < 3:
        return None
    dt1, dt2 = np.diff(times)[:-1], np.diff(times)[1:]
    v1 = (points[1:-1] - points[:-2]) / dt1[:, None, None]
    v2 = (points[2:] - points[1:-1]) / dt2[:, None, None]
    a = (v2 - v1) / (0.5 * (dt1 + dt2))[:, None, None]
    ok = np.isfinite(a).all(axis=(1, 2))
    if segments is not None:
        ok &= (segments[:-2] == segments[1:-1]) & (segments[1:-1] == segments[2:])
    if not ok.any():
        return None
    return float(np.sqrt((a[ok] ** 2).sum(-1).mean()))


def params_arrays(model: MorphableModel, fit: SubjectFit, frame_index: np.ndarray, time_s: np.ndarray,
                  view_names: list[str]) -> dict[str, np.ndarray]:
    s = fit.state
    table = instant_images(fit)
    rotation, R, t = head_pose(fit)
    observed, fitted = landmark_arrays(fit, table)
    with torch.no_grad():
        K = torch.stack([s.K()[int(np.flatnonzero(s.frame_view.cpu().numpy() == v)[0])]
                         for v in range(s.log_focal.shape[0])]).cpu().numpy()
        view_R, view_t = (m.cpu().numpy() for m in s.view_extrinsics())
    one_view = table.shape[1] == 1
    arrays = {
        "identity": s.identity.detach().cpu().numpy(),
        "expression": s.expression.detach().cpu().numpy(),
        "rotation": rotation,
        "R": R.astype(np.float32),
        "t": t,
        "K": K,
        "focal_px": s.log_focal.exp().detach().cpu().numpy(),
        "image_size": s.image_size.cpu().numpy(),
        "view_names": np.asarray(view_names),
        "frame_index": frame_index,
        "time_s": time_s,
        "detected": squeeze_views(per_image(fit.detected, table, False), one_view),
        "keyframe": np.isin(np.arange(fit.num_instants), fit.keyframes),
        "segment": fit.segments,
        "landmarks_observed": squeeze_views(observed, one_view),
        "landmarks_fitted": squeeze_views(fitted, one_view),
        "rmse_px": squeeze_views(per_image(fit.rmse_px, table), one_view),
        "units": np.asarray(model.units),
        "model": np.asarray(model.name),
        "expression_names": np.asarray(model.expression_names),
        "camera_convention": np.asarray(CAMERA_CONVENTION),
    }
    if s.multiview:
        arrays.update(view_R=view_R, view_t=view_t)
    return arrays


def neutral_vertices(model: MorphableModel, fit: SubjectFit) -> np.ndarray:
    return fit.vertices(model).cpu().numpy()


def write_animation(model: MorphableModel, fit: SubjectFit, path: Path, fps: float, frame_times: np.ndarray) -> dict:
    """anim.usdc: the neutral mesh, 53 blend shapes, per-frame weights and head pose (see fitter.export.usd)."""
    s = fit.state
    topo = model.topology
    deltas = model.expression_basis.detach().cpu().numpy().reshape(model.num_expression, -1, 3)
    with torch.no_grad():
        rotations = axis_angle_to_matrix(s.rotation).cpu().numpy()
    camera = {}
    if not s.multiview:  # the stage is the capture camera's frame: show it
        h, w = (int(v) for v in s.image_size[0].tolist())
        camera = {"camera_K": s.K()[0].detach().cpu().numpy(), "image_size": (h, w)}
    return write_anim_usd(path, neutral_vertices(model, fit), topo.polygons, deltas, model.expression_names,
                          s.expression.detach().cpu().numpy(), rotations, s.translation.detach().cpu().numpy(),
                          fps, frame_times, uvs=topo.uvs, polygon_uvs=topo.polygon_uvs, **camera)


def write_obj_sequence(model: MorphableModel, fit: SubjectFit, folder: Path, frame_index: np.ndarray) -> list[str]:
    """One posed OBJ per instant in the frame of anim.usdc (y up, the capture camera's or the rig's world),
    sharing one material file; names carry the source frame numbers."""
    folder = Path(folder) / FRAMES_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    topo = model.topology
    write_text(folder / "frames.mtl", mtl_text(topo.material_names))
    s = fit.state
    with torch.no_grad():
        verts = model.vertices(s.identity, s.expression).cpu().numpy()
        head = axis_angle_to_matrix(s.rotation).cpu().numpy()
    rot, trans = pose_to_stage(head, s.translation.detach().cpu().numpy())  # the joint's (F R F, F t)
    names = []
    for i in range(fit.num_instants):
        posed = verts[i] @ rot[i].T + trans[i]
        name = f"frame_{int(frame_index[i]):06d}.obj"
        write_text(folder / name, obj_text(posed, topo, "frames.mtl",
                                           f"facefit {__version__}: instant {i}, source frame {int(frame_index[i])}"))
        names.append(f"{FRAMES_FOLDER}/{name}")
    return names


def overlay_frames(model: MorphableModel, fit: SubjectFit, images: FrameImages) -> Iterator[np.ndarray]:
    """The fit drawn over every instant's images (views side by side at a common height)."""
    import cv2

    table = instant_images(fit)
    for i, rgbs in enumerate(images()):
        tiles = []
        for v, rgb in enumerate(rgbs):
            k = table[i, v]
            if rgb is None or k < 0:
                continue
            tiles.append(overlay_image(model, fit, int(k), rgb))
        if not tiles:
            continue
        height = min(min(t.shape[0] for t in tiles), MAX_SIDE)
        tiles = [t if t.shape[0] == height else
                 cv2.resize(t, (max(1, round(t.shape[1] * height / t.shape[0])), height), interpolation=cv2.INTER_AREA)
                 for t in tiles]
        yield np.concatenate(tiles, axis=1)


def overlay_image(model: MorphableModel, fit: SubjectFit, image: int, rgb: np.ndarray) -> np.ndarray:
    """One image's overlay, drawn by the photo exporter (fitter.export.face.make_overlay) on a one-image fit."""
    instant = int(fit.state.instants()[image])
    one = fit.state.select([instant], [image])
    frame = fit.evidence.frames[image]
    if not fit.detected[image]:  # no detection (or no usable start): nothing observed to draw
        frame = dataclasses.replace(frame, detected=False, face=dataclasses.replace(
            frame.face, landmarks=np.full_like(frame.face.landmarks, np.nan)))
    single = FaceFit(state=one, evidence=Evidence([frame]), landmarks_fitted=fit.landmarks_fitted[image])
    drawn = make_overlay(model, single, rgb)
    if not fit.detected[image]:  # the mesh there is interpolated or held, not fitted: say so on the frame
        import cv2

        size = max(drawn.shape[0] / 600.0, 0.4)
        cv2.putText(drawn, "no face detected: pose held / interpolated", (8, int(24 * size) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, size, (255, 64, 64), max(1, int(2 * size)), cv2.LINE_AA)
    return drawn


def sequence_metrics(fit: SubjectFit, observed: np.ndarray, fitted: np.ndarray) -> dict:
    """Per-sequence figures: landmark agreement and how much the landmark tracks shake (px/s^2)."""
    ok = np.isfinite(fit.rmse_px)
    out = {
        "frames": int(fit.num_instants),
        "images": int(len(fit.detected)),
        "detected_images": int(fit.detected.sum()),
        "rmse_px_mean": float(np.nanmean(fit.rmse_px)) if ok.any() else None,
        "nme_mean": float(np.nanmean(fit.nme)) if ok.any() else None,
        "nme_median": float(np.nanmedian(fit.nme)) if ok.any() else None,
        "keyframes": [int(k) for k in fit.keyframes],
        "segments": int(len(np.unique(fit.segments))),
    }
    if fit.shots:
        out["shots"] = fit.shots
    if fit.photos:
        out["photos"] = fit.photos
    if fit.ordered and fit.times is not None and observed.ndim == 3:
        out["landmark_acceleration_px_s2"] = {"observed": acceleration_px(observed, fit.times, fit.segments),
                                              "fitted": acceleration_px(fitted, fit.times, fit.segments)}
    return out


def export_subject(model: MorphableModel, fit: SubjectFit, folder: Path, input_path: str, preset: dict, *,
                   fps: float | None, frame_index: Iterable[int] | None = None, view_names: list[str] | None = None,
                   images: FrameImages | None = None, obj_sequence: bool = False, extra: dict | None = None) -> dict:
    """Write a subject's outputs into ``folder`` (a staging folder); returns the report (also written).

    ``fps``: the source's frame rate (None for photos: PHOTO_FPS); ``frame_index`` (T,): source frame numbers
    (the USD time codes and OBJ names); ``images``: a fresh iterator of each instant's RGB images per view,
    for overlay.mp4 (none without)."""
    start = time.perf_counter()
    folder = Path(folder)
    views = fit.state.log_focal.shape[0]
    view_names = view_names or [f"view{v}" for v in range(views)]
    index = np.arange(fit.num_instants) if frame_index is None else np.asarray(list(frame_index), np.int64)
    rate = float(fps) if fps else PHOTO_FPS
    times = fit.times if fit.times is not None else index / rate
    header = (f"facefit {__version__}: fitted {model.name}, neutral expression of {Path(input_path).name}\n"
              f"units: {model.units}; axes: x right, y up, z towards the viewer (model frame); "
              f"per-frame pose and expression in params.npz and anim.usdc")
    write_obj(folder, "mesh", neutral_vertices(model, fit), model.topology, header=header)
    params = params_arrays(model, fit, index, np.asarray(times, np.float64), view_names)
    write_npz(folder / "params.npz", **params)
    outputs = ["mesh.obj", "mesh.mtl", "params.npz"]
    anim = write_animation(model, fit, folder / "anim.usdc", rate, np.asarray(index / rate, np.float64))
    outputs.append("anim.usdc")
    overlay = None
    if images is not None:
        step = np.median(np.diff(times)) if len(times) > 1 and fit.times is not None else 1.0 / rate
        with VideoOutput(folder / "overlay.mp4", round(1.0 / max(step, 1e-6), 6)) as out:
            for frame in overlay_frames(model, fit, images):
                out.write(frame)
        overlay = {"file": "overlay.mp4", "frames": out.frames, "fps": out.fps}
        outputs.append("overlay.mp4")
    if obj_sequence:
        outputs += write_obj_sequence(model, fit, folder, index)
    one_view = views == 1
    table = instant_images(fit)
    observed, fitted = landmark_arrays(fit, table)
    per_frame = []
    for i in range(fit.num_instants):
        row = {"instant": i, "frame_index": int(index[i]), "time_s": float(times[i]),
               "keyframe": i in fit.keyframes, "segment": int(fit.segments[i]),
               "detected": bool(fit.instant_detected[i])}
        ks = [int(k) for k in table[i] if k >= 0]
        rm = [None if not np.isfinite(fit.rmse_px[k]) else float(fit.rmse_px[k]) for k in ks]
        nm = [None if not np.isfinite(fit.nme[k]) else float(fit.nme[k]) for k in ks]
        row.update(rmse_px=rm[0] if one_view else rm, nme=nm[0] if one_view else nm)
        per_frame.append(row)
    fit.timings["export"] = time.perf_counter() - start
    detected = fit.detected
    report = {
        "input": input_path,
        "face_index": 0,
        "kind": extra.get("kind") if extra else None,
        "landmarks": {"rmse_px": float(np.nanmean(fit.rmse_px)) if detected.any() else None,
                      "nme": float(np.nanmean(fit.nme)) if detected.any() else None,
                      "format": fit.evidence.landmark_format},
        "sequence": sequence_metrics(fit, squeeze_views(observed, one_view), squeeze_views(fitted, one_view)),
        "frames": per_frame,
        "views": view_names,
        "fps": rate,
        "rig": fit.rig,
        "animation": anim,
        "overlay": overlay,
        "timings_s": {**fit.timings, "seconds_per_frame": fit.timings.get("total", 0.0) / max(fit.num_instants, 1)},
        "energies": {phase: [{"stage": log.name, **log.energies, "total": log.total, "evaluations": log.evaluations,
                              "line_search_failures": log.line_search_failures, "seconds": log.seconds} for log in logs] for phase, logs in fit.phases.items()},
        "warnings": fit.warnings,
        "suspect": fit.suspects or None,
        "preset": preset.get("preset"),
        "model": model.name,
        "units": model.units,
        "outputs": outputs + ["report.json"],
        "versions": versions(),
        **(extra or {}),
    }
    write_json(folder / "report.json", report)
    return report
