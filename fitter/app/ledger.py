"""The batch's bookkeeping, apart from the fitting: what is done, what to fit, what happened, the summary.

Any engine (the sequential loop, the process pool, a cluster) drives the same small functions:

- :func:`effective_settings` / :func:`resume_key`: a face's result depends on the input's bytes and on the
  settings it was fitted with; both hashes are stored in its report.json (``resume_key``) with the settings
  themselves (``settings``), so a resumed run skips a face only when neither changed, and can say why not;
- :func:`finished_faces` / :func:`read_report` / :func:`why_refit`: decide, per image and per face;
- :class:`Ledger`: records outcomes and rewrites summary.json atomically after each one (beyond
  THROTTLE_AFTER images, as often as WRITE_SHARE of the run's time allows), so a killed batch still has a
  summary (``"complete": false``); it removes the leftovers of killed runs when it starts and when it ends;
- :func:`summary_from_folders`: the faces of an output folder, rebuilt from their report.json files alone.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__
from ..common.files import OutputFolderError, remove_stale_leftovers, write_json
from ..observe.cache import canonical_json

SUMMARY = "summary.json"
REPORT = "report.json"
# summary.json costs about 0.05 ms per image to rewrite (measured: 0.045 s at 1,000 images, 0.48 s at 10,000).
# Up to THROTTLE_AFTER images it is rewritten after every image (< 0.1 s each); beyond, rewriting it after
# every image would cost more than the fits (100,000 images: 67 hours of writes), so progress rewrites then
# take at most WRITE_SHARE of the run's time (one every ~100 s at 100,000 images); the final one always happens.
THROTTLE_AFTER = 2000
WRITE_SHARE = 0.05
_DIFF_SHOWN = 2  # changed settings named in a refit line before "and N more"


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
    note: str = ""  # said to the user while the batch runs, e.g. why an earlier result is refitted
    iou: float | None = None  # mean part IoU of the final fit against the part masks
    outlier_fraction: float | None = None  # share of the segmented skin the photometric term did not explain
    suspect: str = ""  # the stage the no-harm guard faulted, "+ (kept)" when only flagged ("" when none)


@dataclass
class ImageOutcome:
    input: str
    faces: list[FaceOutcome] = field(default_factory=list)
    error: str = ""  # why the image produced no face at all
    seconds: float = 0.0


# -- what a result depends on --------------------------------------------------------------------------
def effective_settings(preset: dict, detector: str, largest: bool, max_faces: int, segmentation: str | None,
                       parser: str | None, parser_weights: str | None) -> dict:
    """Every choice a fitted face depends on: the preset after merging the config, the detector and the
    segmentation options (a None option means the preset's). The device, job count and cache folder are
    left out: they change speed, not the result."""
    seg = preset.get("segmentation", {})
    return {
        "preset": preset,
        "detector": detector,
        "largest": bool(largest),
        "max_faces": int(max_faces),
        "segmentation": segmentation or seg.get("backend", "auto"),
        "parser": parser or seg.get("parser", "farl/lapa/448"),
        "parser_weights": Path(parser_weights).name if parser_weights else None,
    }


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def resume_key(content_hash: str, settings: dict) -> dict:
    """What report.json stores as ``resume_key``: the input's content hash and the settings' hash."""
    return {"content": content_hash, "settings": settings_hash(settings)}


# -- what is done --------------------------------------------------------------------------------------
# The report.json fields a run or `summarize` reads, and their JSON types: a report holding another type (edited
# by hand, or not facefit's) is treated as unreadable, never trusted half-way.
REPORT_FIELDS = {"input": str, "face_index": int, "landmarks": dict, "agreement": dict, "timings_s": dict,
                 "suspect": dict, "settings": dict, "resume_key": dict}


def read_report(folder: Path) -> dict | None:
    """A face folder's report.json, or None when it is missing, unreadable or not shaped like facefit's (then the
    face is not done)."""
    try:
        report = json.loads((Path(folder) / REPORT).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    for key, kind in REPORT_FIELDS.items():
        value = report.get(key)
        if value is not None and (not isinstance(value, kind) or kind is int and isinstance(value, bool)):
            return None
    return report


def is_done(report: dict | None, key: dict) -> bool:
    return report is not None and report.get("resume_key") == key


def why_refit(report: dict, key: dict, settings: dict) -> str:
    """Why a face folder that exists does not count as done (``report`` fails :func:`is_done`)."""
    earlier = report.get("resume_key")
    if not isinstance(earlier, dict):
        return "fitted by an earlier facefit that did not record its settings"
    if earlier.get("content") != key["content"]:
        return "the input file changed since it was fitted"
    return f"settings changed since it was fitted ({settings_change(report.get('settings') or {}, settings)})"


def settings_change(before: dict, after: dict) -> str:
    """'preset default -> fast', or the first changed settings by name: 'photometric.crop_size 256 -> 512'."""
    b_preset, a_preset = before.get("preset", {}), after.get("preset", {})
    b_name = b_preset.get("preset") if isinstance(b_preset, dict) else None
    a_name = a_preset.get("preset") if isinstance(a_preset, dict) else None
    if b_name != a_name:
        return f"preset {b_name or '?'} -> {a_name or '?'}"
    b_flat, a_flat = _flatten(before), _flatten(after)
    changed = sorted(k for k in set(b_flat) | set(a_flat) if b_flat.get(k) != a_flat.get(k))
    if not changed:
        return "details not recorded"
    shown = [f"{k.removeprefix('preset.')} {_short(b_flat.get(k))} -> {_short(a_flat.get(k))}"
             for k in changed[:_DIFF_SHOWN]]
    more = len(changed) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _short(value) -> str:
    if value is None:
        return "(unset)"
    text = json.dumps(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _number(value) -> float | None:
    """A finite number from a report, else None (a report may hold null, or something edited by hand)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) else None


def report_figures(report: dict) -> dict:
    """The per-face figures a summary lists, read from a face's report.json."""
    marks = report.get("landmarks") or {}
    agreement = report.get("agreement") or {}
    suspect = report.get("suspect") or {}
    stage = suspect.get("stage", "") if isinstance(suspect, dict) else ""
    stage = stage if isinstance(stage, str) else ""
    if stage and suspect.get("action") == "kept":  # flagged, not undone (an IoU fall on landmark-drawn masks)
        stage += " (kept)"
    return {"rmse_px": _number(marks.get("rmse_px")), "nme": _number(marks.get("nme")),
            "iou": _number(agreement.get("iou")), "outlier_fraction": _number(agreement.get("outlier_fraction")),
            "suspect": stage}


def earlier_outcome(report: dict, input_path: str, face_index: int, folder: str) -> FaceOutcome:
    """A face kept from an earlier run, with the figures that run measured."""
    return FaceOutcome(input_path, face_index, folder, "skipped", "already fitted (resume)",
                       seconds=_number((report.get("timings_s") or {}).get("total")), **report_figures(report))


def face_folder_name(stem: str, face_index: int, face_count: int) -> str:
    return stem if face_count == 1 else f"{stem}_face{face_index}"


def face_folder_stems(name: str) -> set[str]:
    """The stems a face folder (or a leftover of one) of this name can belong to: ``x_face1`` -> x_face1, x."""
    m = re.fullmatch(r"(?P<stem>.+)_face\d+", name)
    return {name, m.group("stem")} if m else {name}


def finished_faces(out_dir: Path, stem: str, input_path: str, key: dict) -> list[FaceOutcome] | None:
    """Outcomes of every face of the image with folder stem ``stem`` when all were fitted under ``key``
    (then the image need not even be decoded); None when any face is missing or stale."""
    single = read_report(Path(out_dir) / stem)
    if is_done(single, key) and single.get("face_count", 1) == 1:
        return [earlier_outcome(single, input_path, 0, stem)]
    first = read_report(Path(out_dir) / face_folder_name(stem, 0, 2))
    count = first.get("face_count") if first else None
    if not is_done(first, key) or not isinstance(count, int) or count < 2:
        return None
    outcomes = []
    for k in range(count):
        name = face_folder_name(stem, k, count)
        report = first if k == 0 else read_report(Path(out_dir) / name)
        if not is_done(report, key):
            return None
        outcomes.append(earlier_outcome(report, input_path, k, name))
    return outcomes


def has_outputs(out_dir: Path, stem: str) -> bool:
    """Whether a face folder of this stem holds a report (cheap: no hashing, no parsing)."""
    out_dir = Path(out_dir)
    return (out_dir / stem / REPORT).exists() or (out_dir / face_folder_name(stem, 0, 2) / REPORT).exists()


def resume_record(key: dict, settings: dict, face_count: int) -> dict:
    """The keys a face's report.json gains so later runs can resume from it."""
    return {"resume_key": key, "settings": settings, "face_count": int(face_count)}


# -- the run's record ----------------------------------------------------------------------------------
class Ledger:
    """summary.json of one run, rewritten atomically after every image (``"complete": false`` until the end;
    beyond THROTTLE_AFTER images, as often as WRITE_SHARE of the run's time allows).

    ``planned``: the inputs of this run, in order; ``failures``: inputs refused before fitting (e.g. videos),
    ``skipped_inputs``: files not read at all (unsupported types), each ``{"input", "reason"}``.
    ``summary_name``: the file it writes (a shard writes its own, so shards sharing a folder never clobber
    each other's); ``belongs``: which leftovers (by the name of the output they were for) are this run's to
    tidy, None = every stale one in the folder.
    """

    def __init__(self, out_dir: Path, planned: list[Path], info: dict, failures: list[dict] | None = None,
                 skipped_inputs: list[dict] | None = None, summary_name: str = SUMMARY,
                 belongs: Callable[[str], bool] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.summary_name = summary_name
        self.belongs = belongs
        self.order = {str(p): i for i, p in enumerate(planned)}
        self.info = dict(info)
        self.failures = list(failures or [])
        self.skipped_inputs = list(skipped_inputs or [])
        self.outcomes: list[ImageOutcome] = []
        self.removed: list[Path] = []
        self.write_error: OSError | None = None
        self._start = time.perf_counter()
        self._next_write = 0.0  # perf_counter time before which a progress rewrite is skipped (large batches)

    def start(self) -> list[Path]:
        """Remove the leftovers of killed runs and write the (empty, incomplete) summary."""
        self.removed = remove_stale_leftovers(self.out_dir, self.belongs)
        self._write(complete=False)
        return self.removed

    def tidy(self) -> None:
        """Remove what workers that died during this run left behind (their staging folders)."""
        self.removed += remove_stale_leftovers(self.out_dir, self.belongs)

    def record(self, outcome: ImageOutcome) -> None:
        self.outcomes.append(outcome)
        self.outcomes.sort(key=lambda o: self.order.get(o.input, len(self.order)))
        if len(self.outcomes) <= THROTTLE_AFTER or time.perf_counter() >= self._next_write:
            self._write(complete=False)

    def finish(self) -> dict:
        summary = self.summary(complete=True)
        try:
            write_json(self.out_dir / self.summary_name, summary)
        except OSError as exc:
            where = self.out_dir / self.summary_name
            raise OutputFolderError(f"{where} cannot be written ({exc.strerror or exc}); the face folders are "
                                    f"complete, free space or fix permissions and re-run to get the summary") from exc
        return summary

    def summary(self, complete: bool) -> dict:
        summary = summarise(self.outcomes, self.info, time.perf_counter() - self._start)
        summary["failed"] = self.failures + summary["failed"]
        summary.update(complete=complete, images_planned=len(self.order), skipped_inputs=self.skipped_inputs,
                       removed_leftovers=[p.name for p in self.removed],
                       updated=datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
        return summary

    def _write(self, complete: bool) -> None:
        began = time.perf_counter()
        try:
            write_json(self.out_dir / self.summary_name, self.summary(complete))
            self.write_error = None
        except OSError as exc:  # a full disk: the face folders say what is done; finish() reports it
            self.write_error = exc
        now = time.perf_counter()
        self._next_write = now + (now - began) / WRITE_SHARE


def summarise(outcomes: list[ImageOutcome], info: dict, seconds: float) -> dict:
    """The summary.json of these outcomes: counts, per-face rows, failures with their reasons."""
    faces = [f for o in outcomes for f in o.faces]
    fitted = [f for f in faces if f.status == "fitted"]
    failed = [{"input": o.input, "reason": o.error} for o in outcomes if o.error]
    failed += [{"input": f.input, "face_index": f.face_index, "reason": f.reason}
               for f in faces if f.status == "failed"]
    times = sorted(f.seconds for f in fitted if f.seconds is not None)
    return {
        "fitted": len(fitted),
        "skipped": len([f for f in faces if f.status == "skipped"]),
        "failed": failed,
        "images": len(outcomes),
        "faces": [asdict(f) for f in faces],
        **info,
        "seconds": seconds,
        "seconds_per_face_median": times[len(times) // 2] if times else None,
        "version": __version__,
    }


def face_reports(out_dir: Path) -> list[tuple[Path, dict | None]]:
    """Every face folder of ``out_dir`` (a folder holding a report.json), in folder-name order, with its report
    (None: it cannot be read, see :func:`read_report`); read once for everything a summary derives from them."""
    folders = sorted(p for p in Path(out_dir).iterdir() if p.is_dir() and not p.name.startswith("."))
    return [(folder, read_report(folder)) for folder in folders if (folder / REPORT).exists()]


def settings_of_folders(reports: list[tuple[Path, dict | None]]) -> dict[str, list[str]]:
    """The face folders (:func:`face_reports`) by the hash of the settings they were fitted with (``resume_key``):
    more than one key means the output folder mixes fits of different presets or configs."""
    groups: dict[str, list[str]] = {}
    for folder, report in reports:
        key = (report or {}).get("resume_key") or {}
        if report is not None and report.get("input") and isinstance(key.get("settings"), str):
            groups.setdefault(key["settings"], []).append(folder.name)
    return groups


def summary_from_folders(out_dir: Path, reports: list[tuple[Path, dict | None]] | None = None) -> list[FaceOutcome]:
    """Every face folder of ``out_dir`` as an outcome, in folder-name order: what an engine that lost its own
    records can still say about a run. A complete one is ``fitted`` (figures from its report); one whose
    report.json exists but cannot be read, or names no input, is ``failed`` with a reason (never dropped
    silently, never counted as fitted); folders without a report.json are not face folders. ``reports``: the
    folder's :func:`face_reports`, when the caller has read them already."""
    faces = []
    for folder, report in face_reports(out_dir) if reports is None else reports:
        if report is None or not report.get("input"):
            faces.append(FaceOutcome(str(folder), 0, folder.name, "failed",
                                     f"{folder / REPORT}: cannot be read or is not a facefit report; delete "
                                     f"{folder.name}/ and re-run `facefit fit` to refit that face"))
            continue
        face = earlier_outcome(report, report["input"], int(report.get("face_index") or 0), folder.name)
        face.status, face.reason = "fitted", ""
        faces.append(face)
    return faces

