"""Make ``import torchvision`` work next to a CPU-only torch whose matching torchvision wheel is a CUDA build.

With torch 2.13.0+cpu and torchvision 0.28.0 from the index, torchvision's C++ extension cannot load and
``import torchvision`` fails with ``RuntimeError: operator torchvision::nms does not exist`` (its meta
registrations look the operators up). Declaring the two operator schemas first lets the import succeed;
the operators have no kernels, so calling ``torchvision.ops.nms`` still fails (facer and face-alignment's
detectors used here do not call it on CPU). ``torchvision.io`` does not work either: decode images with
OpenCV/Pillow. Where the extension loads (a matching build, e.g. on a CUDA machine) nothing is declared:
defining the namespace there would clash with the extension's own registration.

Call :func:`ensure_importable` before the first import of torchvision, facer, timm or lpips.
"""
from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

_LIB = None  # the torch.library.Library holding the schemas; must stay alive for the process
_STATE: str | None = None  # "native" | "shimmed" | "missing"
_LOCK = threading.Lock()

SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def ensure_importable() -> str:
    """Prepare torch so that ``import torchvision`` succeeds; idempotent and thread-safe.

    Returns ``"native"`` (torchvision's extension loads, nothing was changed, or torchvision was already
    imported), ``"shimmed"`` (the operator schemas were declared) or ``"missing"`` (torchvision is not
    installed). Never imports torchvision itself.
    """
    global _LIB, _STATE
    with _LOCK:
        if _STATE is not None:
            return _STATE
        if "torchvision" in sys.modules and getattr(sys.modules["torchvision"], "__version__", None):
            _STATE = "native" if _LIB is None else "shimmed"
            return _STATE
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            _STATE = "missing"
            return _STATE
        import torch

        if _extension_loads(Path(list(spec.submodule_search_locations)[0])):
            _STATE = "native"
            return _STATE
        if not _ops_defined(torch):
            lib = torch.library.Library("torchvision", "DEF")
            for schema in SCHEMAS:
                lib.define(schema)
            _LIB = lib
        _STATE = "shimmed"
        return _STATE


def _extension_loads(package_dir: Path) -> bool:
    """Whether torchvision's compiled operators (``_C``) load into this torch (they register nms etc.)."""
    import importlib.machinery

    import torch

    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        lib = package_dir / f"_C{suffix}"
        if lib.is_file():
            try:
                torch.ops.load_library(str(lib))
                return True
            except (OSError, RuntimeError, ImportError):
                return False
    return False


def _ops_defined(torch) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw("torchvision::nms", "")
        return True
    except RuntimeError:
        return False
