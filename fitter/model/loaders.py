"""Loading the morphable models users bring: FLAME, the Basel Face Model 2009, facefit's generic .npz.

``load_model("ict")`` is the shipped default; ``load_model(path, **options)`` picks the loader from the file:

============================  =======================  ==========================================
file                          loader                   notes
============================  =======================  ==========================================
``ict`` (a name)              :func:`load_ict`         shipped, no options but ``device``
``*.pkl``                     :func:`load_flame`       FLAME's generic_model.pkl (chumpy inside)
``*.npz`` with ``shapedirs``  :func:`load_flame`       FLAME converted to npz
``*.npz`` with ``mean``       :func:`load_npz`         facefit's generic format
``*.mat``                     :func:`load_bfm`         BFM 2009 / Deep3DFaceRecon's BFM_model_front
============================  =======================  ==========================================

``format=`` ("ict", "flame", "bfm", "npz") forces a loader. Every loader returns vertices in centimetres in
facefit's model frame, raises :class:`ModelFormatError` (file, problem, remedy) for a file it cannot use, and
sets three attributes on the model: ``warnings`` (list of str: what the conversion ignored or guessed, e.g.
FLAME's jaw rotation), ``source`` (dict: format, path, units converted, ...), ``extras`` (dict of arrays the
model does not use yet), plus ``has_uvs`` on the model and its topology. Format details: docs/models.md.
"""
from __future__ import annotations

import inspect
import zipfile
from pathlib import Path
from typing import Any

from .ict import load_ict
from .loader_bfm import load_bfm
from .loader_common import MODEL_FRAME, ModelFormatError
from .loader_flame import load_flame
from .loader_npz import load_npz
from .morphable import MorphableModel

__all__ = ["ModelFormatError", "load_model", "load_flame", "load_bfm", "load_npz", "has_uvs", "MODEL_NAMES"]

MODEL_NAMES = ("ict", "ict-face-light")
_LOADERS = {"flame": load_flame, "bfm": load_bfm, "npz": load_npz}


def has_uvs(model_or_topology: Any) -> bool:
    """Whether a model (or topology) has real UVs; loaded models without UVs carry placeholder ones."""
    return bool(model_or_topology.has_uvs)


def _load_ict(device: str = "cpu") -> MorphableModel:
    model = load_ict(device=device)
    model.source = {"format": "ict", "path": "facefit_assets/ict_face_light.npz", "units": "cm", "axes": MODEL_FRAME}
    return model


def _sniff_npz(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            keys = {Path(n).stem for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelFormatError(path, f"not a readable .npz archive ({err})") from None
    if {"v_template", "shapedirs"} <= keys:
        return "flame"
    if "mean" in keys:
        return "npz"
    raise ModelFormatError(
        path, f"an .npz that is neither FLAME ('v_template', 'shapedirs', 'f') nor facefit's generic format "
        f"('mean', 'identity_basis', 'triangles' or 'polygons'); it has: {', '.join(sorted(keys)) or 'nothing'}",
        "convert the model as described in docs/models.md",
    )


def detect_format(path: str | Path) -> str:
    """Which loader reads ``path``: 'flame', 'bfm' or 'npz' (by extension, and for .npz by its keys)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return "flame"
    if suffix == ".mat":
        return "bfm"
    if suffix == ".npz":
        return _sniff_npz(path)
    raise ModelFormatError(
        path, f"unknown model file type {suffix or '(no extension)'!r}",
        "facefit reads 'ict', FLAME .pkl/.npz, Basel Face Model .mat and its own .npz (docs/models.md); "
        "pass format= to force a loader",
    )


def load_model(path_or_name: str | Path | MorphableModel, *, format: str | None = None, **options: Any) -> MorphableModel:
    """A MorphableModel from a name ('ict') or a model file, dispatching on the file type.

    ``options`` go to the loader (e.g. ``n_shape``, ``n_exp``, ``uv_path``, ``device``); an option the loader
    does not take raises TypeError naming the options it does take.
    """
    if isinstance(path_or_name, MorphableModel):
        return path_or_name
    text = str(path_or_name)
    fmt = format.lower() if format else None
    if fmt == "ict" or (fmt is None and text.lower() in MODEL_NAMES):
        _check_options(_load_ict, "ict", options)
        return _load_ict(**options)
    path = Path(path_or_name).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"no model file {path}; give 'ict' (the shipped model) or the path to a FLAME .pkl/.npz, a Basel Face "
            "Model .mat or a facefit .npz"
        )
    if fmt is None:
        fmt = detect_format(path)
    if fmt not in _LOADERS:
        raise ValueError(f"unknown model format {format!r}; use one of {['ict', *_LOADERS]}")
    loader = _LOADERS[fmt]
    _check_options(loader, fmt, options)
    return loader(path, **options)


def _check_options(loader, fmt: str, options: dict) -> None:
    params = inspect.signature(loader).parameters
    accepted = [n for n, p in params.items() if p.kind == inspect.Parameter.KEYWORD_ONLY]
    if fmt == "ict":
        accepted = list(params)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"the {fmt} loader takes no option(s) {unknown}; it takes {accepted}")

