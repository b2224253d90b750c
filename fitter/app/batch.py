"""Batch fitting of many images: one folder per face, a summary, resumable, never losing other work.

Each image is processed on its own by :func:`process_image` (hash -> resume check -> load -> observe -> fit
and export each face); any error becomes one line in ``summary.json`` and the batch goes on. A face folder
appears only when complete (staged, then renamed) and its report.json records what it was fitted from
(input content and settings hashes), so a re-run skips exactly the faces that are done under the same
settings. The bookkeeping (resume decisions, the summary rewritten after every image) lives in
:mod:`fitter.app.ledger`, for any engine to use: :func:`run_batch` plans and records, an engine only runs
:func:`process_image` for each input (here in this process or a process pool; :mod:`fitter.app.ray_engine`
on a Ray cluster), and a shard (:mod:`fitter.app.shards`) narrows the plan to its part of the batch.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..common.arrays import nonfinite_problem
from ..common.errors import exception_line
from ..common.files import OutputFolderError, check_output_folder, staged_folder, write_json
from ..export.face import export_face
from ..export.overlay import MAX_SIDE
from ..io import ImageError, file_content_hash, image_header_size, load_image
from ..model import load_ict
from ..observe import observe_image, segment_faces
from ..observe.api import NO_FACE
from ..optimize.fit import fit_face, uses_term
from .subject import SubjectSettings, SubjectUnit, process_subject
from .ledger import (
    REPORT,
    SUMMARY,
    FaceOutcome,
    ImageOutcome,
    Ledger,
    earlier_outcome,
    effective_settings,
    face_folder_name,
    face_folder_stems,
    finished_faces,
    has_outputs,
    is_done,
    read_report,
    report_figures,
    resume_key,
    resume_record,
    settings_hash,
    why_refit,
)
from .shards import Shard, input_root

__all__ = ["BatchOptions", "CRASH_ONCE_ENV", "Engine", "FaceOutcome", "ImageOutcome", "SUMMARY",
           "estimate_output_bytes", "face_folder_name", "load_summary", "output_stems", "plan_batch",
           "process_image", "run_batch", "LocalEngine"]

# Disk space one fitted face takes, by preset, without overlay.png (which grows with the photo), measured
# with `facefit fit` on examples/images (Luciano.png, grace_hopper.jpg): fast 1.40 MB (mesh.obj 1.38 MB,
# params.npz, report.json); default 1.65-1.68 MB (+ albedo.png 1024 px, 0.25-0.28 MB); vfx 20.2-20.5 MB
# (+ mesh_detail.obj 15.9 MB, 2048 px albedo.png 0.64-0.72 MB, displacement.exr 1.03 MB, params.npz 1.02 MB,
# 512 px displacement/normal PNGs 0.15-0.2 MB, which grow to ~1.3 MB when the maps hold detail). Rounded up.
FACE_OUTPUT_BYTES = {"fast": 1_500_000, "default": 1_800_000, "vfx": 22_000_000}
OVERLAY_BYTES_PER_PIXEL = 1.9  # overlay.png of a photo: 1.75 (Luciano) and 1.88 (grace_hopper) bytes/pixel
# A subject (clip, photos of one person, capture): mesh.obj 1.4 MB, anim.usdc ~3 MB (53 blend shapes),
# params.npz, report.json, overlay.mp4 (~0.1-0.5 MB per second of 360p mp4v). Rounded up.
SUBJECT_OUTPUT_BYTES = 10_000_000
UNKNOWN_PHOTO_PIXELS = 1600 * 1200  # an unreadable header: assume the largest overlay (MAX_SIDE, 4:3)
SPACE_MARGIN = 1.25  # summary rewrites, staging copies during a rename, file system blocks
# Test hook, unset in normal use: the path of a marker file; see crash_once_for_test.
CRASH_ONCE_ENV = "FACEFIT_TEST_CRASH_ONCE"


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

    def settings(self) -> dict:
        """What a face fitted with these options depends on (hashed into its resume key)."""
        return effective_settings(self.preset, self.detector, self.largest, self.max_faces, self.segmentation,
                                  self.parser, self.parser_weights)


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """Folder stem per input: the file stem; when stems collide, ``<parent>_<stem>`` (then ``_2``, ``_3``). A
    stem that another input's face folders could take (``pair_face1`` beside ``pair``, whose second face is
    written to ``pair_face1``) gets ``_2`` too: two faces were written to one folder, and one was lost."""
    counts = Counter(p.stem for p in paths)
    bases = {p: p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}" for p in paths}
    stems: dict[Path, str] = {}
    used: set[str] = set()
    taken = set(bases.values())  # stems whose images may get <stem>_face<k> folders

    def free(name: str) -> bool:
        return name not in used and not (face_folder_stems(name) - {name}) & taken

    for p in paths:
        base = bases[p]
        name, k = base, 1
        while not free(name):
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        stems[p] = name
    return stems


def name_subjects(subjects: list[SubjectUnit], photo_stems: set[str]) -> None:
    """Give each subject a folder name no photo (nor a photo's face folders, ``<stem>_face<k>``) or earlier subject
    has: its own, else ``<parent>_<name>``, then ``_2``, ``_3`` (sets ``unit.folder`` where it differs)."""
    taken = set(photo_stems)
    for unit in subjects:
        longer = f"{unit.path.parent.name}_{unit.name}"
        names = [unit.name, longer] + [f"{longer}_{k}" for k in range(2, len(taken) + 3)]
        name = next(n for n in names if n not in taken and not (face_folder_stems(n) - {n}) & photo_stems)
        if name != unit.name:
            unit.folder = name
        taken.add(name)


def estimate_output_bytes(paths: list[Path], out_dir: Path, options: BatchOptions,
                          stems: dict[Path, str] | None = None) -> tuple[int, str]:
    """Disk space the batch will need (one face per image not fitted yet) and how that was estimated.
    ``stems``: the inputs' output stems when ``paths`` is part of a larger batch (a shard)."""

    name = str(options.preset.get("preset", "default"))
    per_face = FACE_OUTPUT_BYTES.get(name, FACE_OUTPUT_BYTES["default"])
    stems = stems or output_stems(paths)
    todo = [p for p in paths if not (options.resume and has_outputs(out_dir, stems[p]))]
    total = 0.0
    for p in todo:
        size = image_header_size(p)
        pixels = UNKNOWN_PHOTO_PIXELS
        if size:
            scale = min(1.0, MAX_SIDE / max(size))
            pixels = size[0] * size[1] * scale * scale
        total += per_face + OVERLAY_BYTES_PER_PIXEL * pixels
    need = int(total * SPACE_MARGIN)
    return need, f"{len(todo)} face(s) to fit with preset {name}, about {need / max(len(todo), 1) / 1e6:.1f} MB each"


_MODEL_CACHE: dict = {}


def _model(device: str):
    if device not in _MODEL_CACHE:

        _MODEL_CACHE[device] = load_ict(device)
    return _MODEL_CACHE[device]


def process_image(path: Path, stem: str, out_dir: Path, options: BatchOptions) -> ImageOutcome:
    """Fit every face of one image that is not done yet; never raises (errors become the outcome's reason).

    One unit of work for any engine: it reads only ``path`` and the face folders of ``stem`` in ``out_dir``,
    and writes only those face folders (each atomically).
    """

    start = time.perf_counter()
    out_dir = Path(out_dir)
    outcome = ImageOutcome(input=str(path))
    settings = options.settings()
    try:
        key = resume_key(file_content_hash(path), settings)
    except OSError:
        key = None  # unreadable: load_image below says why in its own words
    if options.resume and key is not None:
        done = finished_faces(out_dir, stem, str(path), key)
        if done is not None:
            outcome.faces, outcome.seconds = done, time.perf_counter() - start
            return outcome
    try:
        image = load_image(path)
        key = resume_key(image.content_hash, settings)
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
        others = [w for w in obs.warnings if not w.startswith(NO_FACE)]
        outcome.error = (f"{path}: no face found by {options.detector}"
                         + (f" ({'; '.join(others)})" if others else "")
                         + "; check that the photo shows a face that is not tiny, cut off or turned away"
                         + (", or try --landmarks fan" if options.detector != "fan" else ""))
        return outcome

    todo: dict[int, str] = {}  # face index -> why an earlier result is refitted ("" when there is none)
    for k in range(len(faces)):
        name = face_folder_name(stem, k, len(faces))
        report = read_report(out_dir / name)
        if options.resume and is_done(report, key):
            outcome.faces.append(earlier_outcome(report, str(path), k, name))
        else:
            todo[k] = f"{name}: {why_refit(report, key, settings)}; refitting" if options.resume and report else ""
    if not todo:
        outcome.seconds = time.perf_counter() - start
        return outcome

    model = _model(options.device)
    try:
        masks = segment(image, faces, options)
    except Exception as exc:  # e.g. --segmentation facer without its weights: one line, batch goes on
        outcome.error = f"{path}: segmentation failed ({exc})"
        return outcome
    for k, note in todo.items():
        job = _FaceJob(model, image, obs.warnings, len(faces), observe_seconds, key, settings)
        outcome.faces.append(_fit_one(job, faces[k], k, masks[k] if masks else None, out_dir / face_folder_name(
            stem, k, len(faces)), options, note))
    outcome.faces.sort(key=lambda f: f.face_index)
    outcome.seconds = time.perf_counter() - start
    return outcome


@dataclass
class _FaceJob:
    """What every face of one image shares."""

    model: object
    image: object  # LoadedImage
    warnings: list[str]
    face_count: int
    observe_seconds: float
    key: dict
    settings: dict


def _fit_one(job: _FaceJob, face, k: int, masks, folder: Path, options: BatchOptions, note: str) -> FaceOutcome:
    """Fit and export face ``k``: the face folder appears complete, or not at all."""

    path, model, image = str(job.image.path), job.model, job.image
    t = time.perf_counter()
    try:
        fit = fit_face(model, face, image.size, options.preset, image.exif_focal_35mm, masks=masks,
                       photo=image.rgb_float)
        problem = nonfinite_problem({"vertices": fit.vertices(model).cpu().numpy(), **fit.state.to_numpy(),
                                     "landmark RMSE": fit.rmse_px})
        if problem:
            return FaceOutcome(path, k, folder.name, "failed",
                               f"{path} face {k}: fitting failed (the fit went non-finite: {problem}); nothing was "
                               f"written for this face; try another --preset, and report it with this photo",
                               note=note)
        limit = float(options.preset["guard"]["max_nme"])
        if fit.nme > limit:  # finite but explaining nothing (e.g. an absurd camera): not a face to hand over
            return FaceOutcome(path, k, folder.name, "failed",
                               f"{path} face {k}: the fit does not explain the face: its landmarks end {fit.nme:.3g} "
                               f"eye distances from the detections (more than [guard] max_nme = {limit:g}); nothing "
                               f"was written for this face; check the detection (overlay of another preset) and the "
                               f"photo's EXIF, or try another --preset", note=note)
        fit.timings["observe"] = job.observe_seconds / job.face_count
        fit.timings["total"] += fit.timings["observe"]
        fit.warnings.extend(job.warnings)
        with staged_folder(folder, overwrite=True) as staging:
            crash_once_for_test()
            report = export_face(model, fit, image.rgb, staging, path, k, options.preset)
            write_json(staging / REPORT, {**report, **resume_record(job.key, job.settings, job.face_count)})
        return FaceOutcome(path, k, folder.name, "fitted", seconds=time.perf_counter() - t, note=note,
                           **report_figures(report))
    except Exception as exc:
        detail = exception_line(exc)
        return FaceOutcome(path, k, folder.name, "failed", f"{path} face {k}: fitting failed ({detail})", note=note)


def segment(image, faces: list, options: BatchOptions) -> list | None:
    """Part masks per face when the preset weighs PRDL (else None)."""

    if not uses_term(options.preset, "prdl"):
        return None
    cfg = options.preset.get("segmentation", {})
    return segment_faces(image, faces, backend=options.segmentation or cfg.get("backend", "auto"),
                         parser=options.parser or cfg.get("parser", "farl/lapa/448"),
                         parser_weights=Path(options.parser_weights) if options.parser_weights else None,
                         cache_dir=Path(options.cache_dir) / "masks" if options.cache_dir else None,
                         device=options.device)


def crash_once_for_test() -> None:
    """Test hook: with ``FACEFIT_TEST_CRASH_ONCE=<marker file>`` set, the first worker to reach a face's export
    creates the marker and dies on the spot (``os._exit``: no exception, no cleanup), as a worker killed
    mid-face would, its staging folder half written. Every later face finds the marker and goes on. The
    marker is created exclusively, so one worker dies even when many share the file system."""
    marker = os.environ.get(CRASH_ONCE_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)


def worker_init(threads: int) -> None:
    """Torch threads of a worker process (one of several sharing the machine's cores)."""
    import torch

    torch.set_num_threads(threads)


Jobs = list[tuple[Path, str]]  # (input, output stem), in the batch's order


class Engine(Protocol):
    """Runs :func:`process_image` for every job and calls ``done`` with each outcome as it comes (any order;
    the ledger sorts). Only the driver's process calls ``done``."""

    name: str

    def __call__(self, jobs: Jobs, out_dir: Path, options: BatchOptions,
                 done: Callable[[ImageOutcome], None]) -> None: ...


class LocalEngine:
    """This machine: in this process, or in ``options.jobs`` worker processes."""

    name = "local"

    def __call__(self, jobs: Jobs, out_dir: Path, options: BatchOptions,
                 done: Callable[[ImageOutcome], None]) -> None:
        if options.jobs <= 1 or len(jobs) <= 1:
            for p, stem in jobs:
                done(process_image(p, stem, out_dir, options))
            return
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // options.jobs)
        with ProcessPoolExecutor(options.jobs, mp_context=mp.get_context("spawn"), initializer=worker_init,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(process_image, p, stem, out_dir, options): p for p, stem in jobs}
            for fut in as_completed(futures):
                try:
                    outcome = fut.result()
                except Exception as exc:  # a worker that died
                    outcome = ImageOutcome(str(futures[fut]), error=f"{futures[fut]}: worker failed ({exc})")
                done(outcome)


@dataclass
class BatchPlan:
    """What one run fits and where it records it: the whole batch, or one shard of it."""

    jobs: Jobs
    failures: list[dict]
    skipped_inputs: list[dict]
    summary_name: str = SUMMARY
    belongs: Callable[[str], bool] | None = None  # which leftovers are this run's to tidy (None: any stale)


def plan_batch(paths: list[Path], failures: list[dict], skipped_inputs: list[dict],
               shard: Shard | None) -> BatchPlan:
    """The jobs and records of a run: the whole batch, or the part of it that belongs to ``shard``."""
    stems = output_stems(paths)  # of the whole batch: a shard makes the folders a single run would
    if shard is None:
        return BatchPlan([(p, stems[p]) for p in paths], failures, skipped_inputs)
    # inputs refused before the run (a mistyped path) do not move the root: fixing one keeps every image's shard
    root = input_root([*paths, *(Path(item["input"]) for item in skipped_inputs)] or
                      [Path(item["input"]) for item in failures])
    mine = [p for p in paths if shard.holds(p, root)]
    own_stems = {stems[p] for p in mine}

    def belongs(name: str) -> bool:
        return name == shard.summary_name or bool(face_folder_stems(name) & own_stems)

    return BatchPlan([(p, stems[p]) for p in mine], [f for f in failures if shard.holds(Path(f["input"]), root)],
                 [s for s in skipped_inputs if shard.holds(Path(s["input"]), root)], shard.summary_name, belongs)


def subject_settings(options: BatchOptions, progress=None) -> SubjectSettings:
    """What a subject unit (a clip, photos of one person, a multi-view capture) takes from the batch's options."""
    return SubjectSettings(options.preset, options.settings(), options.detector, options.device, options.resume,
                           options.cache_dir, options.segmentation, options.parser, options.parser_weights, progress)


def run_batch(paths: list[Path], out_dir: Path, options: BatchOptions,
              on_image: Callable[[ImageOutcome], None] | None = None,
              extra_failures: list[dict] | None = None, skipped_inputs: list[dict] | None = None,
              shard: Shard | None = None, engine: Engine | None = None,
              subjects: list[SubjectUnit] | None = None, on_subject_progress=None) -> dict:
    """Process every image; ``summary.json`` is rewritten after each one and marked complete at the end.

    ``extra_failures``: inputs refused earlier (``{"input", "reason"}``), listed under ``failed``;
    ``skipped_inputs``: files not read at all (unsupported types). ``shard``: fit only this shard's part of
    ``paths`` (and of the other lists), recorded in the shard's own summary file. ``engine``: where the images
    are fitted (default :class:`LocalEngine`). ``subjects``: clips, photo folders of one person and multi-view
    captures, each one unit (one folder, one summary line), fitted on this machine after the images
    (fitter.app.subject); ``on_subject_progress(name, phase, done, total)`` follows their phases. Raises
    :class:`fitter.common.files.OutputFolderError` before any work when ``out_dir`` cannot take the outputs.
    """
    out_dir = Path(out_dir)
    engine = engine or LocalEngine()
    plan = plan_batch(list(paths), list(extra_failures or []), list(skipped_inputs or []), shard)
    subjects = list(subjects or [])
    if shard is not None:
        root = input_root([*paths, *(u.path for u in subjects)])
        subjects = [u for u in subjects if shard.holds(u.path, root)]
    todo = [p for p, _ in plan.jobs]
    need, how = estimate_output_bytes(todo, out_dir, options, dict(plan.jobs)) if todo else (0, "")
    if subjects:
        need += SUBJECT_OUTPUT_BYTES * len(subjects)
        how = "; ".join(filter(None, [how, f"{len(subjects)} subject(s), about {SUBJECT_OUTPUT_BYTES / 1e6:.0f} MB "
                                            "each (more with --obj-sequence)"]))
    if (Path(out_dir) / REPORT).is_file():  # a refit of that face would delete whatever this run puts inside
        raise OutputFolderError(f"output folder {out_dir} is a face folder of an earlier run (it holds {REPORT}); "
                                f"pass its parent or a new folder with -o")
    check_output_folder(out_dir, need, how)
    info = {"preset": options.preset.get("preset"), "settings_hash": settings_hash(options.settings()),
            "detector": options.detector, "device": options.device, "engine": engine.name,
            **({"shard": shard.label} if shard else {})}
    ledger = Ledger(out_dir, todo + [u.path for u in subjects], info, plan.failures, plan.skipped_inputs,
                    plan.summary_name, plan.belongs)
    ledger.start()

    def done(outcome: ImageOutcome) -> None:
        ledger.record(outcome)
        if on_image:
            on_image(outcome)

    engine(plan.jobs, out_dir, options, done)
    if subjects:
        settings = subject_settings(options, on_subject_progress)
        name_subjects(subjects, {stem for _, stem in plan.jobs})
        for unit in subjects:
            done(process_subject(unit, out_dir, settings, _model(options.device)))
    ledger.tidy()
    return ledger.finish()


def load_summary(out_dir: Path) -> dict:
    return json.loads((Path(out_dir) / SUMMARY).read_text())
