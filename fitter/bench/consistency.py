"""``facefit bench consistency``: does a preset read identity from real pixels? One person per clip or folder.

Each frame (evenly spaced frames of a video, or each photo of a folder) is fitted as a separate photo. Each
fit's identity is rebuilt at neutral expression (the model's face region), and the faces are aligned by
similarity transforms (generalised Procrustes). Then
- ``within``: RMS distance (mm) of a frame's face to its person's mean face: the noise of the identity;
- ``between``: RMS distance (mm) between two people's mean faces (mean over pairs): the signal.
A fit that reads identity from the pixels has within << between; a fit that only follows the landmark
detector's idea of the face, or that reads noise, does not. ``consistency.json`` holds both per preset, and
each frame's own distance to its person's mean (``distance_mm`` on its row: which frames make ``within``);
``identities.npz`` holds every fit's identity coefficients (``PRESET/PERSON``: frames x K).
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..common.files import write_json
from ..io import ImageError, LoadedImage, find_images, is_video_path, load_image, open_video, video_info
from ..metrics import rms_mm, similarity_align
from ..model import load_ict
from ..model.morphable import MorphableModel, neutral_face
from ..observe import observe_image, segment_faces
from ..optimize.fit import fit_face, uses_term
from ..optimize.presets import load_preset
from .agreement import mask_backend

ALIGN_ROUNDS = 5  # generalised Procrustes iterations (converges in 2-3)


def person_frames(source: Path, frames: int) -> list[LoadedImage]:
    """``frames`` evenly spaced frames of a video, or every image of a folder (sorted by name)."""
    if is_video_path(source):
        count = video_info(source).frame_count
        every = max(1, count // frames)
        clip = open_video(source, every=every)
        return [f.image for _, f in zip(range(frames), clip)]
    return [load_image(p) for p in find_images([source])]


def aligned_mean(faces: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Generalised Procrustes: faces aligned by similarity to their (re-estimated) mean, and the mean."""
    mean = faces[0]
    for _ in range(ALIGN_ROUNDS):
        aligned = [similarity_align(f, mean) for f in faces]
        mean = np.mean(aligned, 0)
    return mean, aligned


def consistency(people: dict[str, list[np.ndarray]]) -> dict:
    """within / between figures from each person's per-frame neutral faces, and each frame's own distance to
    its person's mean face (``frame_mm``, in the order given: which frames make ``within``)."""
    means, within, per_frame = {}, {}, {}
    for name, faces in people.items():
        mean, aligned = aligned_mean(faces)
        means[name] = mean
        per_frame[name] = [float(rms_mm(a, mean)) for a in aligned]
        within[name] = float(np.sqrt(np.mean(np.square(per_frame[name]))))
    pairs = [rms_mm(similarity_align(means[a], means[b]), means[b]) for a, b in itertools.combinations(means, 2)]
    w = float(np.sqrt(np.mean([v**2 for v in within.values()])))
    between = float(np.mean(pairs)) if pairs else None
    return {"within_mm": w, "between_mm": between, "ratio": w / between if between else None,
            "within_per_person_mm": within, "frame_mm": per_frame}


def run_consistency(sources: list[Path], out_dir: Path, presets: list[str], frames: int = 8,
                    config: Path | None = None, on_frame=None) -> dict:
    model = load_ict()
    region = model.topology.region("face")
    loaded = {name: load_preset(name, config) for name in presets}
    backends = {name: mask_backend(preset) for name, preset in loaded.items()}
    faces: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in presets}
    identities: dict[str, list[np.ndarray]] = {}  # "preset/person": each frame's identity coefficients
    rows = []
    notes = []
    for source in sources:
        person = Path(source).stem
        try:
            images = person_frames(Path(source), frames)
        except ImageError as exc:  # one unreadable photo or clip: said, and the other people still measured
            notes.append(f"{person} left out: {exc}")
            continue
        for image in images:
            obs = observe_image(image, largest=True, cache=False)
            if not obs.faces:
                rows.append({"person": person, "frame": image.source, "detected": False})
                continue
            face = obs.faces[0]
            masks = {backend: segment_faces(image, [face], backend=backend, cache=False)[0]
                     for backend in set(backends.values())}
            row = {"person": person, "frame": image.source, "detected": True}
            for name, preset in loaded.items():
                t = time.perf_counter()
                fit = fit_face(model, face, image.size, preset, image.exif_focal_35mm,
                               masks=masks[backends[name]] if uses_term(preset, "prdl") else None,
                               photo=image.rgb_float)
                faces[name].setdefault(person, []).append(neutral_face(model, fit.state.identity, region))
                identities.setdefault(f"{name}/{person}", []).append(fit.state.identity.detach().cpu().numpy())
                iou = fit.parts.get("iou") or {}
                row[name] = {"nme": fit.nme, "iou": float(np.mean(list(iou.values()))) if iou else None,
                             "suspect": fit.suspect, "seconds": time.perf_counter() - t}
            rows.append(row)
            if on_frame:
                on_frame(row)
    detected = {r["person"]: 0 for r in rows}
    for r in rows:
        detected[r["person"]] += bool(r.get("detected"))
    few = sorted(p for p, n in detected.items() if n < 2)
    measured = set(presets) if detected and not few else set()
    if not measured:
        notes.append("no within/between figures: every person needs at least 2 frames with a detected face"
                     + (f" (fewer: {', '.join(few)})" if few else " (no frame was read)"))
    summary = {name: consistency(faces[name]) | {
                   "nme_median": float(np.median([r[name]["nme"] for r in rows if r.get("detected")]))}
               for name in presets if name in measured}
    for name, figures in summary.items():  # each frame's own distance to its person's mean, on its row
        for person, distances in figures["frame_mm"].items():
            for row, mm in zip([r for r in rows if r["person"] == person and r.get("detected")], distances):
                row[name]["distance_mm"] = mm
    result = {"presets": presets, "frames_per_person": frames, "facefit": __version__,
              "people": sorted({r["person"] for r in rows}), "summary": summary, "rows": rows, "notes": notes}
    write_json(Path(out_dir) / "consistency.json", result)
    if identities:  # the fits' identity coefficients, for analyses the summary does not make
        np.savez(Path(out_dir) / "identities.npz", **{k: np.stack(v) for k, v in identities.items()})
    return result
