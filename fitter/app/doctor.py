"""``facefit doctor``: one row per component saying whether it is usable here, and what to do if not."""
from __future__ import annotations

from .. import __version__
from ..model import load_ict
from ..observe import backends, seg_parser


def diagnose() -> list[dict]:
    """Rows {component, status: ok|missing|error, detail} for detectors, parsers, renderers, devices."""

    rows = [{"component": "facefit", "status": "ok", "detail": __version__}]
    try:

        model = load_ict()
        emb = "with" if "mediapipe478" in model.topology.embeddings else "WITHOUT"
        rows.append({"component": "model ict-face-light", "status": "ok",
                     "detail": f"{model.num_vertices} vertices, {model.num_identity} identity / "
                               f"{model.num_expression} expression modes, {emb} MediaPipe embedding"})
    except Exception as exc:  # the asset is missing or unreadable
        rows.append({"component": "model ict-face-light", "status": "error", "detail": str(exc)})
    found = backends.available()
    labels = {"mediapipe": "landmarks: mediapipe", "fan": "landmarks: fan (face-alignment)",
              "facer": "segmentation: facer (FaRL)", "pytorch3d": "renderer: pytorch3d", "cuda": "device: cuda"}
    for key, label in labels.items():
        info = found.get(key, {})
        ok = bool(info.get("available"))
        rows.append({"component": label, "status": "ok" if ok else "missing", "detail": str(info.get("detail", ""))})
    present = seg_parser.WEIGHTS.is_file()
    rows.append({"component": "segmentation: facefit parser", "status": "ok" if present else "error",
                 "detail": f"{seg_parser.WEIGHTS} (used when facer cannot run)" if present
                 else f"{seg_parser.WEIGHTS} is missing: reinstall facefit"})
    rows.append({"component": "renderer: builtin (numba)", "status": "ok", "detail": "always available (CPU and CUDA tensors)"})
    return rows
