"""What a `facefit fit` command line asks for, found before any image is decoded: the photos, the subjects
(clips, photo folders, multi-view captures with their rigs) and the inputs that cannot be used.

An input that cannot be used fails on its own line and never stops the others; only when nothing usable is left
does the run refuse to start (the caller's choice). A subject's rig is read and checked here, so a wrong
calibration is named before any fitting."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import exception_line
from ..io import ImageError, Inputs, discover_inputs, discover_multiview
from .subject import RIG_FILE, RIG_NONE, SubjectUnit, subject_rig


@dataclass
class FitPlan:
    photos: list[Path] = field(default_factory=list)
    subjects: list[SubjectUnit] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"input", "reason"}: refused before the run
    skipped: list[dict] = field(default_factory=list)  # {"input", "reason"}: files of unsupported types in folders
    hint: str = ""  # what the refused inputs have in common to do (the supported types), "" when nothing

    def usable(self) -> bool:
        return bool(self.photos or self.subjects)

    def refusal(self) -> str:
        """Why nothing can be fitted: one line for one input, else one line per input."""
        reasons = [f["reason"] for f in self.failed]
        if len(reasons) == 1:
            return reasons[0] + (f" ({self.hint})" if self.hint else "")
        lines = reasons + ([self.hint] if self.hint else [])
        return f"none of the {len(reasons)} inputs can be used:\n  " + "\n  ".join(lines)


def plan_inputs(inputs: list[str], subject_folders: list[Path], rig: str | None, clip: dict,
                recursive: bool = False) -> FitPlan:
    """INPUTS (photos, folders, patterns, videos) and --subject folders resolved and checked; ``clip``: the
    SubjectUnit options of videos and subjects (every, start, end, fps, obj_sequence)."""
    found = discover_inputs(inputs, recursive=recursive, videos=True, strict=False) if inputs else Inputs()
    plan = FitPlan(photos=found.images, hint=found.hint,
                   failed=[{"input": label, "reason": f"{label}: {problem}"} for label, problem in found.problems],
                   skipped=[{"input": str(p), "reason": f"{p}: {why}"} for p, why in found.skipped])
    plan.subjects = [SubjectUnit("video", v, **clip) for v in found.videos]
    for folder in subject_folders:
        kind = "multiview" if rig or (Path(folder) / RIG_FILE).exists() else "photos"
        unit = SubjectUnit(kind, Path(folder), rig=rig, **clip)
        problem = subject_problem(unit)
        if problem:
            plan.failed.append({"input": str(folder), "reason": problem})
        else:
            plan.subjects.append(unit)
    return plan


def subject_problem(unit: SubjectUnit) -> str | None:
    """Why a subject cannot be fitted (one line), or None: a photo folder without photos (or one that looks like
    a multi-view capture given without a rig), a capture whose rig cannot be read, or whose cameras the rig does
    not name."""
    try:
        if unit.kind == "photos":
            found = discover_inputs([unit.path], videos=False, strict=False)
            if not found.images:
                if any(p.is_dir() and discover_inputs([p], videos=False, strict=False).images
                       for p in unit.path.iterdir()):
                    return (f"{unit.path}: the --subject folder holds no photos, only subfolders with images: "
                            f"give the subfolder itself, or for a multi-view capture (a subfolder per camera) add "
                            f"--rig (a calibration, or none) or a {RIG_FILE} in the folder")
                return f"{unit.path}: the --subject folder holds no photos ({found.hint or 'put the photos in it'})"
        elif unit.kind == "multiview":
            discover_multiview(unit.path, subject_rig(unit))
    except ImageError as exc:  # RigError too: the message names its file
        return str(exc)
    except Exception as exc:  # a calibration reader's own failure (e.g. OpenCV's parser): one line, no traceback
        source = unit.rig if unit.kind == "multiview" and unit.rig and unit.rig != RIG_NONE else unit.path
        return f"{source}: cannot be read ({exception_line(exc)})"
    return None
