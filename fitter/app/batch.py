"""Batch fitting of many images: one folder per face, a summary, resumable, never losing other work.

Each image is processed on its own (load -> observe -> fit and export each face); any error becomes one
line in ``summary.json`` and the batch goes on. A face folder appears only when complete (staged, then
renamed), so a re-run with ``resume`` skips exactly the faces that are done.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__
from ..common.files import staged_folder, write_json

SUMMARY = "summary.json"


@dataclass
class BatchOptions:
    preset: dict
    detector: str = "mediapipe"
    largest: bool = False
    device: str = "cpu"
    jobs: int = 1
    resume: bool = True  # False = overwrite existing face folders
    cache_dir: str | None = None
    max_faces: int = 20
    segmentation: str | None = None  # None: the preset's [segmentation] backend
    parser: str | None = None
    parser_weights: str | None = None


@dataclass
class FaceOutcome:
    input: str
    face_index: int
    folder: str
    status: str  # fitted | skipped | failed
    reason: str = ""
    rmse_px: float | None = None
    nme: float | None = None
    seconds: float | None = None


@dataclass
class ImageOutcome:
    input: str
    faces: list[FaceOutcome] = field(default_factory=list)
    error: str = ""  # why the image produced no face at all
    seconds: float = 0.0


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """Folder stem per input: the file stem; when stems collide, ``<parent>_<stem>`` (then ``_2``, ``_3``)."""
    counts = Counter(p.stem for p in paths)
    stems: dict[Path, str] = {}
    used: set[str] = set()
    for p in paths:
        base = p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}"
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        stems[p] = name
    return stems


def face_folder_name(stem: str, face_index: int, face_count: int) -> str:
    return stem if face_count == 1 else f"{stem}_face{face_index}"


_MODEL_CACHE: dict = {}


def _model(device: str):
    if device not in _MODEL_CACHE:
        from ..model import load_ict

        _MODEL_CACHE[device] = load_ict(device)
    return _MODEL_CACHE[device]


def process_image(path: Path, stem: str, out_dir: Path, options: BatchOptions) -> ImageOutcome:
    """Fit every face of one image; never raises (errors become the outcome's reason)."""
    from ..export.face import export_face
    from ..optimize.fit import fit_face
    from ..io import ImageError, load_image
    from ..observe import observe_image

    start = time.perf_counter()
    outcome = ImageOutcome(input=str(path))
    try:
        image = load_image(path)
        t = time.perf_counter()
        obs = observe_image(image, detector=options.detector, largest=options.largest,
                            cache_dir=Path(options.cache_dir) if options.cache_dir else None)
        observe_seconds = time.perf_counter() - t
    except ImageError as exc:
        outcome.error = str(exc)
        return outcome
    except Exception as exc:  # a detector failure must not stop the batch
        outcome.error = f"{path}: detection failed ({type(exc).__name__}: {exc})"
        return outcome
    faces = obs.faces[: options.max_faces]
    if not faces:
        outcome.error = f"{path}: no face found" + (f" ({'; '.join(obs.warnings)})" if obs.warnings else "")
        return outcome
    model = _model(options.device)
    try:
        masks = segment(image, faces, options)
    except Exception as exc:  # e.g. --segmentation facer without its weights: one line, batch goes on
        outcome.error = f"{path}: segmentation failed ({exc})"
        return outcome
    for k, face in enumerate(faces):
        name = face_folder_name(stem, k, len(faces))
        folder = out_dir / name
        if options.resume and (folder / "report.json").exists():
            outcome.faces.append(FaceOutcome(str(path), k, name, "skipped", "already fitted (resume)"))
            continue
        t = time.perf_counter()
        try:
            fit = fit_face(model, face, image.size, options.preset, image.exif_focal_35mm,
                           masks=masks[k] if masks else None, photo=image.rgb_float)
            fit.timings["observe"] = observe_seconds / len(faces)
            fit.timings["total"] += fit.timings["observe"]
            fit.warnings.extend(obs.warnings)
            with staged_folder(folder, overwrite=True) as staging:
                report = export_face(model, fit, image.rgb, staging, str(path), k, options.preset)
            outcome.faces.append(FaceOutcome(str(path), k, name, "fitted", rmse_px=report["landmarks"]["rmse_px"],
                                             nme=report["landmarks"]["nme"], seconds=time.perf_counter() - t))
        except Exception as exc:
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            outcome.faces.append(FaceOutcome(str(path), k, name, "failed", f"{path} face {k}: fitting failed ({detail})"))
    outcome.seconds = time.perf_counter() - start
    return outcome


def segment(image, faces: list, options: BatchOptions) -> list | None:
    """Part masks per face when the preset weighs PRDL (else None)."""
    from ..optimize.fit import uses_term
    from ..observe import segment_faces

    if not uses_term(options.preset, "prdl"):
        return None
    cfg = options.preset.get("segmentation", {})
    return segment_faces(image, faces, backend=options.segmentation or cfg.get("backend", "auto"),
                         parser=options.parser or cfg.get("parser", "farl/lapa/448"),
                         parser_weights=Path(options.parser_weights) if options.parser_weights else None,
                         cache_dir=Path(options.cache_dir) / "masks" if options.cache_dir else None,
                         device=options.device)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_batch(paths: list[Path], out_dir: Path, options: BatchOptions,
              on_image: Callable[[ImageOutcome], None] | None = None,
              extra_failures: list[dict] | None = None) -> dict:
    """Process every image and write ``summary.json`` (plus ``extra_failures``, inputs refused earlier)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = output_stems(paths)
    start = time.perf_counter()
    outcomes: list[ImageOutcome] = []
    if options.jobs <= 1 or len(paths) <= 1:
        for p in paths:
            outcomes.append(process_image(p, stems[p], out_dir, options))
            if on_image:
                on_image(outcomes[-1])
    else:
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // options.jobs)
        with ProcessPoolExecutor(options.jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(process_image, p, stems[p], out_dir, options): p for p in paths}
            for fut in as_completed(futures):
                try:
                    outcomes.append(fut.result())
                except Exception as exc:  # a worker that died
                    outcomes.append(ImageOutcome(str(futures[fut]), error=f"{futures[fut]}: worker failed ({exc})"))
                if on_image:
                    on_image(outcomes[-1])
        order = {str(p): i for i, p in enumerate(paths)}
        outcomes.sort(key=lambda o: order.get(o.input, 0))
    summary = summarise(outcomes, options, time.perf_counter() - start)
    summary["failed"] = list(extra_failures or []) + summary["failed"]
    write_json(out_dir / SUMMARY, summary)
    return summary


def summarise(outcomes: list[ImageOutcome], options: BatchOptions, seconds: float) -> dict:
    faces = [f for o in outcomes for f in o.faces]
    fitted = [f for f in faces if f.status == "fitted"]
    failed = [{"input": o.input, "reason": o.error} for o in outcomes if o.error]
    failed += [{"input": f.input, "face_index": f.face_index, "reason": f.reason} for f in faces if f.status == "failed"]
    times = sorted(f.seconds for f in fitted if f.seconds is not None)
    return {
        "fitted": len(fitted),
        "skipped": len([f for f in faces if f.status == "skipped"]),
        "failed": failed,
        "images": len(outcomes),
        "faces": [asdict(f) for f in faces],
        "preset": options.preset.get("preset"),
        "detector": options.detector,
        "device": options.device,
        "seconds": seconds,
        "seconds_per_face_median": times[len(times) // 2] if times else None,
        "version": __version__,
    }


def load_summary(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / SUMMARY).read_text())
