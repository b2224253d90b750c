"""summary.json rebuilt from an output folder after shards or a cluster run (``facefit summarize OUT``).

The face folders are the truth about what was fitted (a folder exists only when complete; its report.json
has the figures). What failed has no folder, so failures come from the run summaries found in the folder
(``summary.json`` and every shard's ``summary.shard-K-of-N.json``), minus those fitted since. The result is
complete when every shard of the batch has written a complete summary.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..common.files import write_json
from .ledger import (SUMMARY, FaceOutcome, ImageOutcome, face_reports, settings_of_folders, summarise,
                     summary_from_folders)
from .shards import Shard, parse_summary_name


class NothingToSummarise(ValueError):
    """The folder holds no face folder and no summary. ``str(err)`` is one line."""


def run_summaries(out_dir: Path) -> dict[str, dict]:
    """The readable run summaries of ``out_dir`` by file name: shards' first (in shard order), summary.json last."""
    out_dir = Path(out_dir)
    names = sorted((p.name for p in out_dir.glob("summary.shard-*-of-*.json") if parse_summary_name(p.name)),
                   key=lambda n: (parse_summary_name(n).count, parse_summary_name(n).index))
    found = {}
    for name in [*names, SUMMARY]:
        try:
            data = json.loads((out_dir / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found[name] = data
    return found


def rebuild_summary(out_dir: Path) -> dict:
    """The summary of everything in ``out_dir``: every complete face folder as ``fitted``, every failure of
    the runs' summaries that no face folder has made good since, and which shards have not finished."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise NothingToSummarise(f"{out_dir} is not a folder; pass the -o folder of `facefit fit`")
    runs = run_summaries(out_dir)
    reports = face_reports(out_dir)
    fitted = summary_from_folders(out_dir, reports)
    if not fitted and not runs:
        raise NothingToSummarise(f"{out_dir} holds no face folder (with report.json) and no summary; pass the "
                                 f"-o folder of `facefit fit`")
    outcomes = _with_failures(fitted, runs.values())
    shards = {name: parse_summary_name(name) for name in runs if parse_summary_name(name)}
    unreadable = sorted((parse_summary_name(p.name) for p in out_dir.glob("summary.shard-*-of-*.json")
                         if parse_summary_name(p.name) and p.name not in runs), key=lambda s: (s.count, s.index))
    missing = [s for s in _missing_shards(set(shards.values()) | set(unreadable)) if s not in unreadable]
    last = runs.get(SUMMARY) or next(iter(runs.values()), {})
    info = {key: last.get(key) for key in ("preset", "detector", "device")}
    summary = summarise(outcomes, {**info, "engine": "summarize"}, max((r.get("seconds") or 0.0 for r in runs.values()),
                                                                         default=0.0))
    shard_runs = [runs[name] for name in shards]
    summary.update(
        complete=(all(r.get("complete") for r in shard_runs) and not missing and not unreadable) if shard_runs
        else bool(last.get("complete", True)),
        images_planned=sum(r.get("images_planned", 0) for r in shard_runs) if shard_runs
        else last.get("images_planned", summary["images"]),
        skipped_inputs=_unique(item for r in runs.values() for item in r.get("skipped_inputs", [])),
        removed_leftovers=[],
        shards={shard.label: {"complete": bool(runs[name].get("complete")), "images": runs[name].get("images", 0),
                              "images_planned": runs[name].get("images_planned", 0)}
                for name, shard in shards.items()},
        shards_missing=[shard.label for shard in missing],
        shards_unreadable=[shard.label for shard in unreadable],
        settings_groups={key[:12]: folders for key, folders in settings_of_folders(reports).items()},
        rebuilt_from=sorted(runs),
        updated=last.get("updated"),
    )
    return summary


def write_rebuilt_summary(out_dir: Path) -> dict:
    """:func:`rebuild_summary`, written to ``out_dir/summary.json``. Raises OSError with one line when it
    cannot be written."""
    summary = rebuild_summary(out_dir)
    try:
        write_json(Path(out_dir) / SUMMARY, summary)
    except OSError as exc:
        raise OSError(f"{Path(out_dir) / SUMMARY} cannot be written ({exc.strerror or exc}); fix the folder's "
                      f"permissions or free space and run `facefit summarize` again") from exc
    return summary


def _with_failures(fitted: list[FaceOutcome], runs) -> list[ImageOutcome]:
    """``fitted`` grouped by input, with the runs' failures that no face folder has made good since."""
    images: dict[str, ImageOutcome] = {}
    for face in fitted:
        images.setdefault(face.input, ImageOutcome(face.input)).faces.append(face)
    done = {(f.input, f.face_index) for f in fitted}
    for run in runs:
        for row in run.get("faces", []):  # a face that failed: its row (a failure line has no folder name)
            if row.get("status") == "failed" and (row.get("input"), row.get("face_index")) not in done:
                done.add((row["input"], row["face_index"]))
                images.setdefault(row["input"], ImageOutcome(row["input"])).faces.append(FaceOutcome(**row))
        for item in run.get("failed", []):  # an image that gave no face at all (or an input refused before)
            if "face_index" not in item and item.get("input") not in images:
                images[item["input"]] = ImageOutcome(item["input"], error=item.get("reason", ""))
    return [images[k] for k in sorted(images)]


def _missing_shards(found: set[Shard]) -> list[Shard]:
    """Shards of a batch whose summary is not in the folder (not started, or another N's leftovers)."""
    counts = {s.count for s in found}
    return [Shard(k, n) for n in sorted(counts) for k in range(n) if Shard(k, n) not in found]


def _unique(items) -> list[dict]:
    seen, out = set(), []
    for item in items:
        if item.get("input") not in seen:
            seen.add(item.get("input"))
            out.append(item)
    return out
