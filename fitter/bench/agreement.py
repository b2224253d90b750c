"""``facefit bench photos``: how well each preset's fits agree with real photos (no ground truth needed).

Real photos have no true geometry, so the fit is judged by its agreement with what the detectors saw: the
mean part IoU of the rendered part labels against the part masks, and the landmark NME. Every face of every
photo is fitted with each preset from the same observations; ``agreement.json`` holds per-face and median
figures, the faces a later preset leaves worse than an earlier one, and which of those were flagged suspect
by the no-harm guard.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..common.files import write_json
from ..io import ImageError, load_image
from ..model import load_ict
from ..observe import observe_image, segment_faces
from ..optimize.fit import fit_face, uses_term
from ..optimize.presets import load_preset

IOU_TOLERANCE = 0.05  # a face whose IoU under a preset is this much below the reference's needs a suspect flag


def mask_backend(preset: dict) -> str:
    """The segmentation backend a preset asks for (its own masks are what its part IoU is scored against)."""
    return preset.get("segmentation", {}).get("backend", "auto")


def fit_photos(paths: list[Path], presets: list[str], config: Path | None = None, on_face=None) -> list[dict]:
    """One row per (photo, face): per preset the final IoU and NME, the IoU before PRDL, seconds, suspect."""
    model = load_ict()
    loaded = {name: load_preset(name, config) for name in presets}
    backends = {name: mask_backend(preset) for name, preset in loaded.items()}
    rows = []
    for path in paths:
        try:
            image = load_image(path)
        except ImageError as exc:  # one unreadable file costs its own row, not the benchmark
            rows.append({"input": str(path), "error": str(exc)})
            continue
        obs = observe_image(image, cache=False)
        if not obs.faces:
            rows.append({"input": str(path), "error": f"{path}: no face found"})
        masks = {backend: segment_faces(image, obs.faces, backend=backend, cache=False) if obs.faces else []
                 for backend in set(backends.values())}
        for k, face in enumerate(obs.faces):
            row = {"input": str(path), "face_index": k, "mask_source": masks[backends[presets[0]]][k].source}
            for name, preset in loaded.items():
                t = time.perf_counter()
                face_masks = masks[backends[name]][k]
                fit = fit_face(model, face, image.size, preset, image.exif_focal_35mm,
                               masks=face_masks if uses_term(preset, "prdl") else None, photo=image.rgb_float)
                iou = fit.parts.get("iou") or {}
                row[name] = {"iou": float(np.mean(list(iou.values()))) if iou else None,
                             "iou_parts": iou, "nme": fit.nme, "rmse_px": fit.rmse_px,
                             "seconds": time.perf_counter() - t, "suspect": fit.suspect,
                             "quality": {s: {"iou": q["iou_mean"], "nme": q["nme_mean"]} for s, q in fit.quality.items()}}
            rows.append(row)
            if on_face:
                on_face(row)
    return rows


def paired(rows: list[dict], name: str, reference: str) -> dict:
    """Face by face against the reference preset: the median IoU difference, the faces whose IoU is higher, and
    the median NME ratio. A median of a dozen faces moves with the face that happens to sit in the middle; the
    paired figures say whether a preset agrees better with the same faces."""
    both = [r for r in rows if r[name]["iou"] is not None and r[reference]["iou"] is not None]
    diff = [r[name]["iou"] - r[reference]["iou"] for r in both]
    ratio = [r[name]["nme"] / r[reference]["nme"] for r in rows if r[reference]["nme"] > 0]
    return {"iou_paired_median": float(np.median(diff)) if diff else None,
            "iou_higher_faces": sum(1 for d in diff if d > 0),
            "nme_ratio_paired_median": float(np.median(ratio)) if ratio else None}


def summarise(rows: list[dict], presets: list[str]) -> dict:
    """Medians per preset over the fitted rows; per later preset the paired figures against the first preset
    and the faces whose IoU fell below it."""
    out = {}
    reference = presets[0]
    for name in presets:
        iou = [r[name]["iou"] for r in rows if r[name]["iou"] is not None]
        nme = [r[name]["nme"] for r in rows]
        worse = [{"input": r["input"], "face_index": r["face_index"], "iou": r[name]["iou"],
                  "reference_iou": r[reference]["iou"], "suspect": r[name]["suspect"]}
                 for r in rows if name != reference and r[name]["iou"] is not None
                 and r[reference]["iou"] is not None and r[name]["iou"] < r[reference]["iou"] - IOU_TOLERANCE]
        out[name] = {"iou_median": float(np.median(iou)) if iou else None,
                     "nme_median": float(np.median(nme)) if nme else None,
                     "seconds_median": float(np.median([r[name]["seconds"] for r in rows])) if rows else None,
                     "suspect_faces": sum(1 for r in rows if r[name]["suspect"]),
                     f"worse_than_{reference}": worse,
                     "worse_unflagged": sum(1 for w in worse if not w["suspect"])}
        if name != reference:
            out[name] |= {f"vs_{reference}": paired(rows, name, reference)}
    return out


def run_agreement(paths: list[Path], out_dir: Path, presets: list[str], config: Path | None = None,
                  on_face=None) -> dict:
    rows = fit_photos(paths, presets, config, on_face)
    fitted = [r for r in rows if "error" not in r]
    result = {"faces": len(fitted), "presets": presets, "facefit": __version__, "iou_tolerance": IOU_TOLERANCE,
              "summary": summarise(fitted, presets), "rows": fitted,
              "failed": [{"input": r["input"], "reason": r["error"]} for r in rows if "error" in r]}
    write_json(Path(out_dir) / "agreement.json", result)
    return result
