"""One subject of many frames as one unit of a batch: a clip, a folder of photos of one person, or a multi-view
capture folder (with its rig) -> observations -> one fit with one identity -> ``OUT/<name>/``.

:func:`process_subject` is to a subject what :func:`fitter.app.batch.process_image` is to a photo: it never
raises (an error is the outcome's one-line reason), resumes when ``report.json`` says the same input was
fitted with the same settings, and the subject's folder appears complete or not at all (staged).

Frames are decoded once: a clip's frames (and a multi-view capture's camera videos) are kept as 8-bit RGB on
disk beside the outputs (fitter.io.FrameStore, memory-mapped; removed when the subject is done) for the phases
that need photos or part masks and for overlay.mp4; photos are read again from their files when needed.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..common.errors import exception_line
from ..common.files import staged_folder, write_json
from ..evidence import Evidence, FrameEvidence, undetected_face
from ..export.subject import export_subject
from ..io import ImageError, LoadedImage, convert_rig, discover_multiview, file_content_hash, find_images, load_image
from ..io import FrameStore, load_rig, open_video, require_space, save_rig, video_info
from ..io.multiview import RIG_FILE
from ..io.rig import RIG_FORMAT, check_image_size
from ..io.shots import colour_change, colour_signature
from ..model.morphable import MorphableModel
from ..observe import follow_one_person, observe_image, quarter_turns, segment_faces
from ..observe.types import FaceObservation
from ..optimize.photo_faces import choose_faces
from ..optimize.subject import FrameSource, face_sharpness, fit_sequence
from .ledger import REPORT, FaceOutcome, ImageOutcome, earlier_outcome, is_done, read_report, resume_key
from .ledger import resume_record, why_refit

KINDS = ("video", "photos", "multiview")
RIG_NONE = "none"  # --rig none: an uncalibrated rig whose extrinsics the fitter estimates


@dataclass
class SubjectUnit:
    """One subject: ``kind`` video (``path`` a clip), photos (a folder of photos of one person) or multiview
    (a capture folder; ``rig`` a calibration file/folder, ``none``, or None for the folder's own rig.json)."""

    kind: str
    path: Path
    rig: str | None = None
    every: int = 1
    start: float = 0.0
    end: float | None = None
    fps: float | None = None
    obj_sequence: bool = False
    folder: str | None = None  # output folder name (default: the clip's stem or the folder's name)

    @property
    def name(self) -> str:
        if self.folder:
            return self.folder
        return self.path.stem if self.kind == "video" else self.path.name

    def options(self) -> dict:
        """What the result depends on beyond the preset (hashed into the resume key)."""
        return {"kind": self.kind, "rig": self.rig, "every": self.every, "start": self.start, "end": self.end,
                "fps": self.fps, "obj_sequence": self.obj_sequence}


@dataclass
class SubjectSettings:
    """What a batch passes to a subject (from its BatchOptions)."""

    preset: dict
    settings: dict  # the batch's effective settings (hashed into the resume key)
    detector: str = "mediapipe"
    device: str = "cpu"
    resume: bool = True
    cache_dir: str | None = None
    segmentation: str | None = None
    parser: str | None = None
    parser_weights: str | None = None
    progress: Callable[[str, str, int, int], None] | None = None  # (subject, phase, done, total)


@dataclass
class LoadedSubject:
    """A subject's evidence and how to get its pixels back."""

    evidence: Evidence
    image: Callable[[int], LoadedImage]  # image k (decoded frame or re-read photo)
    view_names: list[str]
    frame_index: list[int]  # per instant: the source frame number (photos: their order)
    fps: float | None
    rig: object | None = None  # fitter.io.Rig for a multi-view capture
    warnings: list[str] = field(default_factory=list)
    observe_seconds: float = 0.0
    store: FrameStore | None = None  # where a clip's frames are kept (removed by close())
    faces: list[list[tuple[FaceObservation, float]]] | None = None  # photos: every face found in each, largest first

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def instant_images(self, table: list[list[int]]) -> Callable[[], Iterator[list[np.ndarray]]]:
        """A fresh iterator over the instants' RGB images per view (``table``: image index per instant and view)."""
        def images() -> Iterator[list[np.ndarray]]:
            for row in table:
                yield [self.image(k).rgb if k >= 0 else None for k in row]
        return images


# -- what the subject is -----------------------------------------------------------------------------------
def content_hash(unit: SubjectUnit) -> str:
    """The clip's bytes, or every file of the folder (names and bytes) and the rig's."""
    if unit.kind == "video":
        return file_content_hash(unit.path)
    digest = hashlib.sha256()
    files = sorted(p for p in unit.path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if unit.rig and unit.rig != RIG_NONE:
        rig = Path(unit.rig)
        files += sorted(p for p in rig.rglob("*") if p.is_file()) if rig.is_dir() else [rig]
    for p in files:
        digest.update(str(p.relative_to(unit.path) if p.is_relative_to(unit.path) else p.name).encode())
        digest.update(file_content_hash(p).encode())
    return digest.hexdigest()


class Observer:
    """Observes images for one subject, cached as photos are: the largest face of an image, or every face the
    whole-image pass finds (a clip's frame: one person is followed through them afterwards, :func:`follow`; a
    folder's photo: the person is picked among them, :func:`pick_people`)."""

    def __init__(self, settings: SubjectSettings) -> None:
        self.settings = settings
        self.seconds = 0.0
        self.turned: list[int] = []  # per call: quarter turns its face was found turned by (2 upside down, 1/3 sideways)

    def __call__(self, image: LoadedImage, every_face: bool = False) -> list[tuple[FaceObservation, float]]:
        """The faces found with their sharpness, largest first: the largest only, or with ``every_face`` every face
        the whole-image pass finds (observe_image's ``prominent``)."""
        t = time.perf_counter()
        cache = Path(self.settings.cache_dir) if self.settings.cache_dir else None
        obs = observe_image(image, detector=self.settings.detector, largest=not every_face, cache_dir=cache,
                            prominent=every_face)
        self.seconds += time.perf_counter() - t
        self.turned.append(quarter_turns(obs.warnings))
        return [(face, face_sharpness(image.rgb, face.landmarks, face.landmark_weights)) for face in obs.faces]


def largest(found: list[tuple[FaceObservation, float]]) -> tuple[FaceObservation | None, float | None]:
    """The largest face of an observation and its sharpness, or (None, None)."""
    return found[0] if found else (None, None)


def follow(records: list[dict], found: list[list[tuple[FaceObservation, float]]], labels: list,
           over: str = "the clip") -> list[str]:
    """Sets each record's ``face`` and ``sharpness`` to the person followed through the frames (``found``: each
    frame's faces, in order; fitter.observe.follow_one_person), and says when anyone else is seen (``labels``: the
    frames' names in warnings; ``over``: what the frames are, e.g. one camera's)."""
    following = follow_one_person([[face.bbox for face, _ in faces] for faces in found])
    for record, faces, k in zip(records, found, following.chosen):
        record["face"], record["sharpness"] = faces[k] if k is not None else (None, None)
    if not following.others or following.first is None:
        return []
    t0, box = following.first
    alone = [t for t in following.others if following.chosen[t] is None]
    instead = (f"; in {spans(alone, labels)} only someone else is seen, which counts as no face there"
               if alone else "")
    return [f"{len(following.others)} of {len(records)} frames show someone besides the person fitted (frames "
            f"{spans(following.others, labels)}): facefit follows one person, the face seen largest over {over} "
            f"(in frame {labels[t0]} at {np.round(box).astype(int).tolist()}){instead}; to fit someone else, crop "
            f"the frames to them"]


def frames_evidence(records: list[dict]) -> Evidence:
    """FrameEvidence of every record (``face`` None: a placeholder slot, not detected)."""
    found = next((r["face"] for r in records if r["face"] is not None), None)
    if found is None:
        raise ValueError("no face was detected in any frame (check that it shows a face large enough to see)")
    frames = []
    for r in records:
        face = r["face"]
        frames.append(FrameEvidence(face if face is not None else undetected_face(found), r["size"],
                                    exif_focal_35mm=r.get("exif"), view=r.get("view", 0), time_s=r.get("time"),
                                    detected=face is not None, instant=r.get("instant"),
                                    frame_index=r.get("index"), sharpness=r.get("sharpness"),
                                    colour_change=r.get("colour_change")))
    return Evidence(frames)


def spans(positions: list[int], labels: list) -> str:
    """Runs of consecutive positions named by their labels: positions ``[0, 1, 2, 5]`` with labels
    ``[10, 12, 14, 20]`` (frame numbers of a clip read ``--every 2``) -> ``"10-14, 20"``."""
    runs: list[list[int]] = []
    for k in positions:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return ", ".join(f"{labels[r[0]]}" if len(r) == 1 else f"{labels[r[0]]}-{labels[r[-1]]}" for r in runs)


def missing_faces(records: list[dict], names: list[str] | None = None) -> list[str]:
    """One warning naming the images without a detected face (a user should know what was not seen): frame
    numbers for a clip, file names for photos and cameras."""
    missing = [k for k, r in enumerate(records) if r["face"] is None]
    if not missing or len(missing) == len(records):
        return []
    if names is not None:
        which = ", ".join(names[k] for k in missing[:8]) + (", ..." if len(missing) > 8 else "")
        return [f"{len(missing)} of {len(records)} images have no detected face ({which}): they are left out of "
                f"the fit; check them or remove them"]
    return [f"{len(missing)} of {len(records)} frames have no detected face (frames "
            f"{spans(missing, [r['index'] for r in records])}): their pose and expression are interpolated between "
            f"the detected frames around them, or held from the nearest one across a cut or a gap longer than "
            f"[video] max_gap_s"]


def turned_images(turned: list[int], labels: list, kind: str) -> list[str]:
    """One warning for the images found upside down and one for those found on their side (``turned``: quarter
    turns per record, in order): a user should know the detector saw them turned back, and can rotate the file
    to make it explicit."""
    fix = "its rotation metadata" if kind == "frames" else "their EXIF orientation"
    out = []
    for what, turns, degrees in (("upside down", (2,), "180 degrees"), ("on their side", (1, 3), "90 degrees")):
        which = [k for k, t in enumerate(turned) if t in turns]
        if which:
            out.append(f"{len(which)} of {len(turned)} {kind} are {what} ({spans(which, labels)}): their faces were "
                       f"found in them turned {degrees}; rotate the file (or fix {fix}) to make this explicit")
    return out


def other_people(rows: list[dict], names: list[str], limit: float) -> list[str]:
    """One warning naming the photos of a folder whose own face lies further than ``limit`` mm from the other
    photos' (``rows``: fitter.optimize.subject.SubjectFitter.photo_identities; docs/video.md has the measured
    distances: one person's photos 0.11-0.70 mm, a photo of someone else median 1.0 mm)."""
    far = [r for r in rows if r["identity_distance_mm"] > limit]
    if not far:
        return []
    how = (f"(one person's photos differ by less than {limit:g} mm, [video] photo_identity_mm); the folder is fitted "
           "with one identity: remove the photos of anyone else")
    if len(rows) == 2:  # two photos: which one is the other person cannot be told
        distance = max(r["identity_distance_mm"] for r in rows)
        return [f"{names[rows[0]['image']]} and {names[rows[1]['image']]} may show two people: their faces differ by "
                f"{distance:.2f} mm {how}"]
    which = ", ".join(names[r["image"]] for r in far)
    distances = ", ".join(format(r["identity_distance_mm"], ".2f") for r in far)
    differ = "its face differs" if len(far) == 1 else "their faces differ"
    return [f"{which} may show another person than the other photos: {differ} from theirs by {distances} mm {how}"]


def load_video(unit: SubjectUnit, observe: Observer, scratch: Path | None = None) -> LoadedSubject:
    """The clip's frames (kept in a FrameStore in ``scratch``) and the person followed through them."""
    clip = open_video(unit.path, every=unit.every, start=unit.start, end=unit.end, fps=unit.fps)
    if scratch is not None:
        require_space(unit.path, [video_info(unit.path)], scratch, unit.every, unit.start, unit.end)
    store = FrameStore(scratch)
    try:
        records, found, previous = [], [], None
        for frame in clip:
            found.append(observe(frame.image, every_face=True))
            store.append(frame.image)
            signature = colour_signature(frame.rgb)
            records.append({"size": frame.image.size, "time": frame.time, "index": frame.index,
                            "colour_change": None if previous is None else colour_change(previous, signature)})
            previous = signature
        labels = [r["index"] for r in records]
        people = follow(records, found, labels)
        return LoadedSubject(frames_evidence(records), store.__getitem__, ["camera"], labels, clip.fps,
                             warnings=list(clip.warnings) + people + missing_faces(records)
                             + turned_images(observe.turned, labels, "frames"), observe_seconds=observe.seconds,
                             store=store)
    except BaseException:
        store.close()
        raise


def load_photos(unit: SubjectUnit, observe: Observer, scratch: Path | None = None) -> LoadedSubject:
    """Every readable photo of the folder; one that cannot be read is left out with a warning (the others still
    make the subject), and only a folder with no readable photo fails."""
    paths, records, unreadable, faces = [], [], [], []
    for p in find_images([unit.path]):
        try:
            image = load_image(p)
        except ImageError as exc:
            unreadable.append(str(exc))
            continue
        found = observe(image, every_face=True)  # the largest is the same face either way (prominent)
        face, sharp = largest(found)
        paths.append(p)
        faces.append(found)
        records.append({"face": face, "size": image.size, "view": len(records), "exif": image.exif_focal_35mm,
                        "sharpness": sharp})
    if not paths:
        raise ImageError(unit.path, f"no photo of the folder can be read ({'; '.join(unreadable)})")
    names = [p.name for p in paths]
    warnings = ([f"left out, cannot be read: {why}" for why in unreadable] + missing_faces(records, names)
                + turned_images(observe.turned, names, "photos"))
    return LoadedSubject(frames_evidence(records), lambda k: load_image(paths[k]), names, list(range(len(paths))),
                         None, warnings=warnings, observe_seconds=observe.seconds, faces=faces)


def pick_people(loaded: LoadedSubject, model: MorphableModel, preset: dict) -> list[str]:
    """In a photo folder with group photos, fit each photo's face that looks like the folder's person
    (fitter.optimize.photo_faces); one warning per photo whose largest face was passed over."""
    if not loaded.faces or all(len(found) < 2 for found in loaded.faces):
        return []
    frames = loaded.evidence.frames
    limit = float(preset["video"]["photo_identity_mm"])
    choice = choose_faces(model, preset, [[face for face, _ in found] for found in loaded.faces],
                          [f.image_size for f in frames], [f.exif_focal_35mm for f in frames], limit)
    warnings, changed = [], list(frames)
    for k, j in enumerate(choice.chosen):
        if j == 0:
            continue
        face, sharp = loaded.faces[k][j]
        changed[k] = replace(frames[k], face=face, sharpness=sharp)
        d = choice.distances[k]
        warnings.append(f"{loaded.view_names[k]} shows {len(d)} faces: fitted the one at "
                        f"{np.round(face.bbox).astype(int).tolist()} ({d[j]:.2f} mm from the other photos' mean "
                        f"face), not the largest ({d[0]:.2f} mm; one person's photos differ by less than {limit:g} "
                        f"mm, [video] photo_identity_mm)")
    loaded.evidence = Evidence(changed)
    return warnings


def subject_rig(unit: SubjectUnit):
    """The capture's rig: converted from the calibration given (or ``none``), else the folder's rig.json."""
    if unit.rig is None:
        if (unit.path / RIG_FILE).exists():
            return load_rig(unit.path / RIG_FILE)
        raise ImageError(unit.path, "a multi-view subject needs a rig", f"pass --rig CALIBRATION (COLMAP, NeRF "
                         f"transforms.json, OpenCV YAML), --rig {RIG_NONE}, or put a {RIG_FILE} in the folder")
    if unit.rig == RIG_NONE:
        return convert_rig(unit.path, "none")
    source = Path(unit.rig)
    if source.suffix == ".json" and source.is_file() and RIG_FORMAT in source.read_text(errors="ignore")[:200]:
        return load_rig(source)
    return convert_rig(source)


def load_multiview(unit: SubjectUnit, observe: Observer, scratch: Path | None = None) -> LoadedSubject:
    """The capture's images (camera videos' frames kept in a FrameStore in ``scratch``), each camera following its
    one person."""
    rig = subject_rig(unit)
    capture = discover_multiview(unit.path, rig)
    store, clips = None, []
    if capture.kind == "videos":
        clips = [open_video(capture.videos[c], every=unit.every, start=unit.start, end=unit.end, fps=unit.fps)
                 for c in capture.cameras]
        if scratch is not None:
            require_space(unit.path, [video_info(capture.videos[c]) for c in capture.cameras], scratch, unit.every,
                          unit.start, unit.end)
        store = FrameStore(scratch)
    try:
        return _load_multiview(unit, observe, rig, capture, clips, store)
    except BaseException:
        if store is not None:
            store.close()
        raise


def _load_multiview(unit: SubjectUnit, observe: Observer, rig, capture, clips: list, store: FrameStore | None
                    ) -> LoadedSubject:
    cams = capture.cameras
    paths: list[Path] = []
    records, found = [], []  # found: each record's faces
    fps = None
    if capture.kind == "videos":
        fps = clips[0].fps
        for i, frames in enumerate(zip(*clips)):
            for v, frame in enumerate(frames):
                if i == 0:
                    check_image_size(rig, cams[v], frame.image.size, capture.videos[cams[v]])
                found.append(observe(frame.image, every_face=True))
                store.append(frame.image)
                records.append({"size": frame.image.size, "view": v, "instant": i, "time": frames[0].time,
                                "index": frames[0].index})
    else:
        for i, key in enumerate(capture.frames):
            for v, cam in enumerate(cams):
                path = capture.images[cam][key]
                image = load_image(path)
                check_image_size(rig, cam, image.size, path)
                found.append(observe(image, every_face=True))
                paths.append(path)
                records.append({"size": image.size, "view": v, "instant": i, "exif": image.exif_focal_35mm,
                                "index": key if isinstance(key, int) else i})
    people = []
    for v, cam in enumerate(cams):  # each camera follows its one person through its frames
        own = [k for k, r in enumerate(records) if r["view"] == v]
        people += follow([records[k] for k in own], [found[k] for k in own], [records[k]["index"] for k in own],
                         f"camera {cam}'s frames")
    get = store.__getitem__ if store is not None else (lambda k: load_image(paths[k]))
    index = [r["index"] for r in records if r["view"] == 0]
    names = [f"{cams[r['view']]}/{r['index']}" for r in records]
    clip_warnings = list(dict.fromkeys(w for c in clips for w in c.warnings)) if capture.kind == "videos" else []
    return LoadedSubject(frames_evidence(records), get, cams, index, fps, rig, list(capture.warnings) + clip_warnings
                         + list(rig.warnings) + people + missing_faces(records, names)
                         + turned_images(observe.turned, names, "frames" if capture.kind == "videos" else "images"),
                         observe.seconds, store)


def view_misfit(fit, view_names: list[str], limit: float) -> str:
    """'' when every camera's fitted landmarks lie near its detections, else one line naming the worst camera.

    A rig's extrinsics are shared by all its instants, so a wrong calibration leaves a view that no head pose
    explains; such a fit is not a face capture and fails instead of being written. The error of an image is its
    landmark RMSE over the size of its detected landmarks' box (sqrt of the area): unlike NME (eye-corner
    distance) it does not blow up on a camera that sees the face in profile; a good fit is ~0.01-0.03."""
    views = np.array([f.view for f in fit.evidence.frames])
    error = np.asarray(fit.rmse_px, np.float64) / fit.evidence.face_sizes()  # NaN where nothing was detected
    worst, name = 0.0, ""
    for v in np.unique(views):
        values = error[(views == v) & np.isfinite(error)]
        if values.size and float(np.median(values)) > worst:
            worst, name = float(np.median(values)), view_names[v]
    if worst <= limit:
        return ""
    return (f"the fit does not explain camera {name!r}: its fitted landmarks lie {worst:.2f} face sizes from the "
            f"detections (median RMS over the landmarks' box; limit {limit:g}, [video] max_view_error), so nothing "
            f"is written; check the rig's calibration of that camera (image size, K, R, t, units)")


LOADERS = {"video": load_video, "photos": load_photos, "multiview": load_multiview}


# -- one unit of a batch -----------------------------------------------------------------------------------
def process_subject(unit: SubjectUnit, out_dir: Path, settings: SubjectSettings, model: MorphableModel) -> ImageOutcome:
    """Fit one subject into ``out_dir/<unit.name>/``; never raises (errors become the outcome's reason)."""
    start = time.perf_counter()
    outcome = ImageOutcome(input=str(unit.path))
    folder = Path(out_dir) / unit.name
    all_settings = {**settings.settings, "subject": unit.options()}
    try:
        key = resume_key(content_hash(unit), all_settings)
    except OSError as exc:
        outcome.error = f"{unit.path}: cannot be read ({exc.strerror or exc})"
        return outcome
    report = read_report(folder)
    note = ""
    if settings.resume and is_done(report, key):
        outcome.faces.append(earlier_outcome(report, str(unit.path), 0, unit.name))
        outcome.seconds = time.perf_counter() - start
        return outcome
    if settings.resume and report:
        note = f"{unit.name}: {why_refit(report, key, all_settings)}; refitting"
    try:
        loaded = LOADERS[unit.kind](unit, Observer(settings), Path(out_dir))
    except (ImageError, ValueError) as exc:
        outcome.error = str(exc) if str(unit.path) in str(exc) else f"{unit.path}: {exc}"
        return outcome
    except Exception as exc:  # a detector failure must not stop the batch
        outcome.error = f"{unit.path}: reading or detection failed ({type(exc).__name__}: {exc})"
        return outcome
    try:
        return _fit_and_write(unit, settings, model, loaded, outcome, folder, key, all_settings, note, start)
    finally:
        loaded.close()  # a clip's frames leave the disk whatever happened


def _fit_and_write(unit: SubjectUnit, settings: SubjectSettings, model: MorphableModel, loaded: LoadedSubject,
                   outcome: ImageOutcome, folder: Path, key: str, all_settings: dict, note: str,
                   start: float) -> ImageOutcome:
    t = time.perf_counter()
    try:
        picked = pick_people(loaded, model, settings.preset) if unit.kind == "photos" else []
        picking = time.perf_counter() - t
        fit = fit_sequence(model, loaded.evidence, settings.preset, loaded.rig if unit.kind == "multiview" else None,
                           loaded.view_names if unit.kind == "multiview" else None,
                           progress=_progress(settings, unit.name), source=frame_source(loaded, settings))
        misfit = view_misfit(fit, loaded.view_names, float(settings.preset["video"].get("max_view_error", 0.5))) \
            if unit.kind == "multiview" else ""
        if misfit:
            outcome.faces.append(FaceOutcome(str(unit.path), 0, unit.name, "failed", f"{unit.path}: {misfit}",
                                             note=note))
            return outcome
        fit.timings["observe"] = loaded.observe_seconds
        fit.timings["group_photos"] = picking  # choosing the person's face in group photos (0 without any)
        fit.timings["seconds_per_frame_fit"] = (time.perf_counter() - t) / max(fit.num_instants, 1)
        others = other_people(fit.photos, loaded.view_names, float(settings.preset["video"]["photo_identity_mm"])) \
            if unit.kind == "photos" else []
        fit.warnings[:0] = loaded.warnings + picked + others
        table = [[-1] * len(loaded.view_names) for _ in range(fit.num_instants)]
        for k, f in enumerate(fit.evidence.frames):
            instant = int(fit.state.instants()[k])
            table[instant][min(f.view, len(loaded.view_names) - 1)] = k
        views = loaded.view_names if unit.kind == "multiview" else (["camera"] if unit.kind == "video" else
                                                                      loaded.view_names)
        with staged_folder(folder, overwrite=True) as staging:
            report = export_subject(model, fit, staging, str(unit.path), settings.preset, fps=loaded.fps,
                                    frame_index=loaded.frame_index, view_names=views,
                                    images=loaded.instant_images(table) if unit.kind != "photos" else
                                    loaded.instant_images([[k] for k in range(len(loaded.evidence.frames))]),
                                    obj_sequence=unit.obj_sequence, extra={"kind": unit.kind,
                                                                           "subject_options": unit.options()})
            if loaded.rig is not None:
                save_rig(loaded.rig, staging / RIG_FILE)
                report["outputs"].append(RIG_FILE)
            report["timings_s"]["total_with_observe"] = time.perf_counter() - start
            write_json(staging / REPORT, {**report, **resume_record(key, all_settings, 1)})
    except Exception as exc:
        detail = exception_line(exc)
        outcome.faces.append(FaceOutcome(str(unit.path), 0, unit.name, "failed",
                                         f"{unit.path}: fitting failed ({detail})", note=note))
        return outcome
    shown = [note] if note else []  # the subject's warnings on the terminal too, not only in report.json
    shown += [f"{unit.name}: {w}" for w in report.get("warnings", [])]
    outcome.faces.append(FaceOutcome(str(unit.path), 0, unit.name, "fitted", rmse_px=report["landmarks"]["rmse_px"],
                                     nme=report["landmarks"]["nme"], seconds=time.perf_counter() - start,
                                     note="\n".join(shown)))
    outcome.seconds = time.perf_counter() - start
    return outcome


def frame_source(loaded: LoadedSubject, settings: SubjectSettings) -> FrameSource:
    """Photos and part masks of image k, on demand."""
    preset = settings.preset
    cfg = preset.get("segmentation", {})

    def masks(k: int):
        frame = loaded.evidence.frames[k]
        return segment_faces(loaded.image(k), [frame.face], backend=settings.segmentation or cfg.get("backend", "auto"),
                             parser=settings.parser or cfg.get("parser", "farl/lapa/448"),
                             parser_weights=Path(settings.parser_weights) if settings.parser_weights else None,
                             cache_dir=Path(settings.cache_dir) / "masks" if settings.cache_dir else None,
                             device=settings.device)[0]

    def photo(k: int) -> np.ndarray:
        image = loaded.image(k)  # 8-bit frames are kept: convert without caching a float copy on them
        return image.rgb_float if image.bit_depth > 8 else image.rgb.astype(np.float32) / 255.0

    return FrameSource(photo=photo, masks=masks)


def _progress(settings: SubjectSettings, name: str):
    if settings.progress is None:
        return None
    return lambda phase, done, total: settings.progress(name, phase, done, total)

