"""Which detectors, weights and accelerators this machine has (for ``facefit doctor``), and the identity of a
detector backend (part of the observation cache key)."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import threading
import warnings
from pathlib import Path

from fitter.assets import asset_path

from . import fan_backend, mediapipe_backend
from .torchvision_shim import ensure_importable

DETECTORS = ("mediapipe", "fan")

# pyfacer's weight files (torch hub cache), by what they are; used by the segmentation backend
FACER_WEIGHTS = {
    "parser farl/lapa/448": "face_parsing.farl.lapa.main_ema_136500_jit191.pt",
    "parser farl/celebm/448": "face_parsing.farl.celebm.main_ema_181500_jit.pt",
    "detector retinaface/mobilenet": "mobilenet0.25_Final.pth",
    "detector retinaface/resnet50": "Resnet50_Final.pth",
}

_HASHES: dict[tuple, str] = {}
_HASH_LOCK = threading.Lock()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime) for the life of the process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if key not in _HASHES:
            _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return _HASHES[key]


def _file_id(path: Path) -> dict:
    st = path.stat()
    return {"name": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def fingerprint(detector: str, settings: dict) -> dict:
    """What identifies the backend that produced an observation: versions and model files."""


    fp: dict = {
        "mediapipe": _version("mediapipe"),
        "bundle_sha256": _file_sha256(asset_path(mediapipe_backend.BUNDLE)),
        "search_revision": mediapipe_backend.SEARCH_REVISION,  # cached observations of another search are stale
    }
    if detector == "fan":
        source = fan_backend.box_source(settings["boxes"])
        fp["face_alignment"] = _version("face-alignment") or _version("face_alignment")
        fp["boxes"] = source
        names = [fan_backend.FAN_WEIGHTS] + ([fan_backend.S3FD_WEIGHTS] if source == "s3fd" else [])
        for name in names:
            path = fan_backend.weight_path(name)
            fp[name] = _file_id(path) if path.is_file() else None
    return fp


def _try_import(module: str) -> tuple[bool, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation chatter of dependencies (timm via facer)
            importlib.import_module(module)
        return True, ""
    except Exception as exc:  # ImportError, or RuntimeError from a broken binary build
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _package_with_weights(*, package: str, dist: str, imported: tuple[bool, str], install: str, weights: dict,
                          missing_weights: str | None, ready: str) -> dict:
    """The report entry of a backend that needs a package (``imported``: whether it imports, and why not;
    ``dist``: its distribution, for the version) and weight files (``missing_weights``: what is missing, None
    when they are there). It is usable when both are; the detail names what is missing first (the package,
    then the weights), else what the backend offers."""
    ok, error = imported
    return {
        "available": bool(ok and missing_weights is None),
        "version": _version(dist),
        "weights": weights,
        "detail": f"{package} is not importable ({error}); {install}" if not ok else missing_weights or ready,
    }


def available(import_packages: bool = True) -> dict:
    """A description of every optional backend, e.g. for ``facefit doctor``.

    Each entry has ``available`` (usable right now), ``detail`` (one line for a human) and specifics:
    package versions, weight files with their expected path and ``present`` flag. With
    ``import_packages=False`` packages are only looked up, not imported (faster, less certain).
    """

    def importable(module: str) -> tuple[bool, str]:
        if not import_packages:
            ok = importlib.util.find_spec(module) is not None
            return ok, "" if ok else f"{module} is not installed"
        return _try_import(module)

    report: dict = {}

    # MediaPipe: package + the shipped bundle
    mp_ok, mp_err = importable("mediapipe")
    try:

        bundle = str(asset_path(mediapipe_backend.BUNDLE))
    except FileNotFoundError as exc:
        bundle, mp_err = None, mp_err or str(exc)
    report["mediapipe"] = {
        "available": bool(mp_ok and bundle),
        "version": _version("mediapipe"),
        "bundle": bundle,
        "detail": "478 landmarks, 52 blendshapes, face transform" if mp_ok and bundle
        else (mp_err or "mediapipe is not installed; pip install mediapipe"),
    }

    # face-alignment FAN: package + weights in the torch hub cache
    fa_ok, fa_err = importable("face_alignment")
    weights = {}
    for name in (fan_backend.FAN_WEIGHTS, fan_backend.S3FD_WEIGHTS):
        path = fan_backend.weight_path(name)
        weights[name] = {"path": str(path), "present": path.is_file(), "url": fan_backend.WEIGHT_URLS[name]}
    fan_present = weights[fan_backend.FAN_WEIGHTS]["present"]
    s3fd_present = weights[fan_backend.S3FD_WEIGHTS]["present"]
    fan = fan_backend.FAN_WEIGHTS
    fan_missing = f"no weights at {weights[fan]['path']} (download {fan_backend.WEIGHT_URLS[fan]} there)"
    report["fan"] = _package_with_weights(
        package="face-alignment", dist="face-alignment", imported=(fa_ok, fa_err),
        install="pip install face-alignment", weights=weights, missing_weights=None if fan_present else fan_missing,
        ready="68 iBUG landmarks; boxes from " + ("s3fd" if s3fd_present else "MediaPipe (no s3fd weights)"),
    )
    report["fan"]["boxes"] = ("s3fd" if s3fd_present else "mediapipe") if report["fan"]["available"] else None

    # pyfacer (segmentation; another package's backend): needs torchvision importable
    tv_state = ensure_importable()
    fc_ok, fc_err = importable("facer")
    hub = fan_backend.weights_dir()
    fweights = {what: {"path": str(hub / name), "present": (hub / name).is_file()}
                for what, name in FACER_WEIGHTS.items()}
    parser = any(v["present"] for k, v in fweights.items() if k.startswith("parser"))
    detector = any(v["present"] for k, v in fweights.items() if k.startswith("detector"))
    report["facer"] = _package_with_weights(
        package="facer", dist="pyfacer", imported=(fc_ok, fc_err),
        install="pip install pyfacer with torchvision pinned to torch", weights=fweights,
        missing_weights=None if parser else f"no face-parser weights in {hub} (put them there, or pass "
                                            f"--parser-weights FILE)",
        ready="face parsing available" + ("" if detector else " (no retinaface weights: boxes from MediaPipe)"),
    )
    report["facer"]["torchvision"] = tv_state

    # pytorch3d (optional renderer)
    p3_ok, p3_err = importable("pytorch3d")
    report["pytorch3d"] = {
        "available": p3_ok,
        "version": _version("pytorch3d"),
        "detail": "importable" if p3_ok else (p3_err or "not installed (optional; CUDA machines)"),
    }

    # torch / CUDA
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
        report["cuda"] = {
            "available": cuda,
            "torch": torch.__version__,
            "cuda_build": torch.version.cuda,
            "devices": devices,
            "detail": ", ".join(devices) if cuda else f"no CUDA device (torch {torch.__version__})",
        }
    except Exception as exc:
        report["cuda"] = {"available": False, "torch": None, "cuda_build": None, "devices": [],
                          "detail": f"torch is not importable ({exc})"}
    return report
