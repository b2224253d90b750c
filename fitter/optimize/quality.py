"""How well a fit agrees with the image evidence, and the no-harm guard that acts on it.

After every stage the driver measures, per frame, the landmark NME (RMSE over the inter-ocular distance)
and the mean part IoU (rendered part labels against the part masks), plus what the stage's terms report
(e.g. the photometric residual and outlier fraction). A later stage must never leave a face worse on that
evidence than an earlier one: when a stage lowers the IoU or raises the NME beyond the preset's [guard]
thresholds, the driver restores the geometry from before the stage and flags the face as suspect. Part masks
drawn from the landmarks (``weak``: no parser weights) are polygons around the same landmarks the NME judges,
not separate image evidence: with ``weak_masks = "flag"`` an IoU fall on them flags the face but keeps the stage.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..crop import FitCrop
from ..evidence import Evidence
from ..model.morphable import MorphableModel
from ..observe.segmentation import PART_NAMES, PartMasks
from ..render import rasterize, render_labels
from ..scene import Scene
from ..state import FitState

# The parameters that place the face in the image (restored when a stage is rejected). Lighting, albedo and
# the displacement map stay as the stage left them: they do not move the face.
GEOMETRY = ("identity", "expression", "rotation", "translation", "log_focal")


@torch.no_grad()
def rendered_part_labels(model: MorphableModel, cam: torch.Tensor, K: torch.Tensor, crop: FitCrop) -> np.ndarray:
    """(size, size) uint8 part label of each crop pixel (1 + the index into PART_NAMES; 0 where no part is seen)
    for the camera-frame vertices ``cam`` (1, V, 3) of one image seen through its intrinsics ``K`` (1, 3, 3)."""
    topo = model.topology
    frags = rasterize(cam, topo.triangles, crop.K(K), (crop.size, crop.size))
    return render_labels(frags, topo.vertex_labels["parts"], len(PART_NAMES) + 1, soft=False)[0].cpu().numpy()


@torch.no_grad()
def part_ious(model: MorphableModel, scene: Scene, masks: PartMasks, crop: FitCrop, frame: int = 0) -> dict[str, float]:
    """IoU per part between the rendered part labels of the fit (one frame) and the masks, inside the crop."""
    rendered = rendered_part_labels(model, scene.camera_vertices()[frame : frame + 1],
                                    scene.K()[frame : frame + 1], crop)
    origin = (float(masks.region[0]), float(masks.region[1]))
    return label_ious(rendered, lambda part: crop.mask(masks.mask(part), origin))


def label_ious(rendered: np.ndarray, target: Callable[[str], np.ndarray]) -> dict[str, float]:
    """IoU per part between rendered part labels (``rendered_part_labels``) and ``target(part)``, a boolean mask
    of the same shape; parts whose target is empty are left out."""
    out = {}
    for k, part in enumerate(PART_NAMES):
        seen = target(part)
        if seen.sum() == 0:
            continue
        drawn = rendered == k + 1
        out[part] = float((seen & drawn).sum() / max((seen | drawn).sum(), 1))
    return out


@torch.no_grad()
def measure(model: MorphableModel, state: FitState, evidence: Evidence, landmarks, crops: list[FitCrop],
            terms: dict) -> dict:
    """Per-frame agreement of ``state`` with the evidence: ``nme`` and ``iou`` lists (None where a frame has no
    masks), their means, and each term's diagnostics."""
    scene = Scene(model, state)
    if getattr(landmarks, "contour", None) and not landmarks.chosen:
        landmarks.update(scene)
    rmse = landmarks.rmse_px(scene).cpu().numpy()
    nme = [float(r / max(f.face.inter_ocular, 1e-6)) for r, f in zip(rmse, evidence.frames)]
    labelled = "parts" in model.topology.vertex_labels
    iou = []
    for k, (frame, crop) in enumerate(zip(evidence.frames, crops)):
        if frame.masks is None or not labelled:
            iou.append(None)
            continue
        values = part_ious(model, scene, frame.masks, crop, k).values()
        iou.append(float(np.mean(list(values))) if values else None)
    out = {"nme": nme, "iou": iou, "nme_mean": float(np.mean(nme)),
           "iou_mean": float(np.mean([v for v in iou if v is not None])) if any(v is not None for v in iou) else None}
    diagnostics = {name: term.diagnostics(scene) for name, term in terms.items()}
    diagnostics = {name: d for name, d in diagnostics.items() if d}
    if diagnostics:
        out["terms"] = diagnostics
    return out


def restore_geometry(state: FitState, snapshot: dict[str, torch.Tensor]) -> None:
    for name, value in snapshot.items():
        setattr(state, name, value.clone())


@dataclass(frozen=True)
class Verdict:
    """Why a stage moved the face away from the evidence, and whether its geometry is put back (``revert``) or
    kept with the face flagged (an IoU fall on masks drawn from the landmarks, ``weak_masks = "flag"``)."""

    reason: str
    revert: bool = True

    def suspect(self, stage: str) -> dict:
        """The report's ``suspect`` entry."""
        return {"stage": stage, "reason": self.reason, "action": "reverted" if self.revert else "kept"}


@dataclass
class Guard:
    """The no-harm rule. A stage is rejected when the mean part IoU ends more than ``max_iou_drop`` (absolute)
    below the best IoU of the stages kept so far (``best_iou``: a run of small falls cannot add up to a large
    one), or when it raises the mean landmark NME by more than ``max_nme_rise`` (relative). ``weak_masks``:
    ``"flag"`` keeps a stage whose only fault is an IoU fall on masks drawn from the landmarks."""

    enabled: bool = True
    max_iou_drop: float = 0.03
    max_nme_rise: float = 0.1
    weak_masks: str = "revert"

    @classmethod
    def from_preset(cls, preset: dict) -> "Guard":
        cfg = preset["guard"]
        return cls(bool(cfg["enabled"]), float(cfg["max_iou_drop"]), float(cfg["max_nme_rise"]),
                   str(cfg["weak_masks"]))

    @staticmethod
    def judges(stage: dict) -> bool:
        """Whether the guard may reject ``stage`` (its ``guarded`` key); a stage it may not reject is what the
        stages after it are judged against."""
        return bool(stage.get("guarded", True))

    def check(self, stage: dict, before: dict, after: dict, best_iou: float | None = None,
              weak: bool = False) -> Verdict | None:
        """What the stage did wrong, or None. ``before``: the measures of the state the stage started from;
        ``best_iou``: the best mean IoU of the states kept so far (default: ``before``'s); ``weak``: the part
        masks were drawn from the landmarks. An NME rise is judged before an IoU fall (it always reverts)."""
        if not self.enabled:
            return None
        if not np.isfinite(after["nme_mean"]):  # a non-finite result is never kept, guarded stage or not
            return Verdict("landmark NME is not finite")
        if not self.judges(stage):
            return None
        if after["nme_mean"] / max(before["nme_mean"], 1e-9) - 1.0 > self.max_nme_rise:
            return Verdict(f"landmark NME rose from {before['nme_mean']:.4f} to {after['nme_mean']:.4f}")
        if before["iou_mean"] is not None and after["iou_mean"] is not None:
            best = before["iou_mean"] if best_iou is None else max(best_iou, before["iou_mean"])
            if best - after["iou_mean"] > self.max_iou_drop:
                return Verdict(f"part IoU fell from {best:.3f} to {after['iou_mean']:.3f}",
                               revert=not (weak and self.weak_masks == "flag"))
        return None


def weak_masks(evidence: Evidence) -> bool:
    """Whether every frame's part masks that exist were drawn from the landmarks (and some exist)."""
    masks = [f.masks for f in evidence.frames if f.masks is not None]
    return bool(masks) and all(m.weak for m in masks)
