"""facefit's own camera-rig file, ``rig.json``: what a multi-view capture's cameras are, in facefit's conventions.

Every calibration format (COLMAP text, NeRF ``transforms.json``, OpenCV YAML, or none) is converted once,
by :func:`fitter.io.rig_convert.convert_rig`, into this one description; the fitter reads only ``rig.json``
(docs/rig.md):

- per camera name: ``K`` (3x3, pixels, origin at the top-left pixel's *corner*; null when unknown),
  ``image_size`` [h, w], ``R`` (3x3) and ``t`` (3) mapping world to camera, ``x_cam = R @ x_world + t``, in
  OpenCV camera axes (x right, y down, z forward), ``t`` in centimetres;
- ``units: "cm"`` and ``scale``, the factor that was applied to the source's translations to make them cm;
- ``distortion`` as the source gave it (model name and named coefficients): facefit does not undistort yet.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.files import write_json
from .errors import ImageError

RIG_FORMAT = "facefit-rig"
RIG_VERSION = 1
# Largest deviation from orthonormality (|R^T R - I|) accepted in a source's rotation.
ROTATION_TOLERANCE = 1e-4


def intrinsic_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """The 3x3 pinhole K (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


class RigError(ImageError):
    """A rig or calibration file cannot be used; the message names the file, the problem and what to do."""


@dataclass
class RigCamera:
    """One calibrated view: ``x_cam = R @ x_world + t`` (OpenCV axes, cm), pixels ``K @ x_cam`` / z."""

    name: str
    image_size: tuple[int, int]  # (h, w) pixels
    K: np.ndarray | None  # (3, 3); None for an uncalibrated camera (the fitter guesses and fits it)
    R: np.ndarray = field(default_factory=lambda: np.eye(3))  # (3, 3) world -> camera
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) cm
    distortion: dict | None = None  # {"model": str, "params": {name: value}} as given; not applied
    image: str | None = None  # the source image this calibration came from, if any

    @property
    def centre(self) -> np.ndarray:
        """The camera's position in world coordinates (cm)."""
        return -self.R.T @ self.t

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> this camera's frame (N, 3)."""
        return np.asarray(points, np.float64) @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> pixels (N, 2), ignoring distortion (facefit's pixel convention)."""
        if self.K is None:
            raise ValueError(f"camera {self.name!r} has no intrinsics (uncalibrated rig)")
        cam = self.to_camera(points)
        uvw = cam @ self.K.T
        return uvw[:, :2] / uvw[:, 2:3]


@dataclass
class Rig:
    cameras: dict[str, RigCamera]
    calibrated: bool = True  # False: identity extrinsics (and maybe no K) that the fitter estimates
    scale: float = 1.0  # applied to the source's translations to make them centimetres
    source: dict = field(default_factory=dict)  # {"format", "path", "units"}
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.cameras)

    def to_json(self) -> dict:
        cams = {}
        for name, cam in self.cameras.items():
            cams[name] = {
                "K": None if cam.K is None else np.asarray(cam.K, float).tolist(),
                "image_size": [int(cam.image_size[0]), int(cam.image_size[1])],
                "R": np.asarray(cam.R, float).tolist(),
                "t": np.asarray(cam.t, float).tolist(),
                "distortion": cam.distortion,
                "image": cam.image,
            }
        return {
            "format": RIG_FORMAT,
            "version": RIG_VERSION,
            "units": "cm",
            "scale": self.scale,
            "calibrated": self.calibrated,
            "axes": "OpenCV camera axes (x right, y down, z forward); x_cam = R @ x_world + t",
            "pixels": "origin at the top-left corner of the top-left pixel",
            "distortion_applied": False,
            "source": self.source,
            "warnings": self.warnings,
            "cameras": cams,
        }


def save_rig(rig: Rig, path: str | Path) -> None:
    """Write ``rig.json`` atomically."""

    write_json(Path(path), rig.to_json())


def load_rig(path: str | Path) -> Rig:
    """Read and check a ``rig.json`` written by :func:`save_rig` (one :class:`RigError` line when unusable)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RigError(path, "rig file does not exist",
                       "convert a calibration into rig.json first (fitter.io.convert_rig, docs/rig.md)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RigError(path, f"is not readable JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != RIG_FORMAT:
        raise RigError(path, f"is not a facefit rig.json (no \"format\": \"{RIG_FORMAT}\")",
                       "convert COLMAP / NeRF / OpenCV calibrations with fitter.io.convert_rig first (docs/rig.md)")
    if data.get("version") != RIG_VERSION or data.get("units") != "cm":
        raise RigError(path, f"has version {data.get('version')!r} / units {data.get('units')!r}; this facefit "
                             f"reads version {RIG_VERSION} in cm")
    cameras = {}
    for name, cam in (data.get("cameras") or {}).items():
        try:
            K = None if cam.get("K") is None else _matrix(cam["K"], (3, 3))
            size = tuple(int(v) for v in cam["image_size"])
            R, t = _matrix(cam["R"], (3, 3)), _matrix(cam["t"], (3,))
        except (KeyError, TypeError, ValueError) as err:
            raise RigError(path, f"camera {name!r} is malformed ({err})") from None
        check_rotation(R, path, f"camera {name!r}")
        if len(size) != 2 or min(size) <= 0:
            raise RigError(path, f"camera {name!r} has image_size {list(size)}; expected [h, w] > 0")
        cameras[name] = RigCamera(name, size, K, R, t, cam.get("distortion"), cam.get("image"))
        check_camera(cameras[name], path)
    if not cameras:
        raise RigError(path, "lists no cameras")
    return Rig(cameras, bool(data.get("calibrated", True)), float(data.get("scale", 1.0)),
               dict(data.get("source") or {}), list(data.get("warnings") or []))


def _matrix(value, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, np.float64)
    if arr.shape != shape:
        raise ValueError(f"expected numbers of shape {shape}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"expected finite numbers, got {arr.tolist()}")
    return arr


# A face fills too few pixels beyond this (100 m) for any capture: a camera farther away means wrong units or data.
MAX_CAMERA_DISTANCE_CM = 1.0e4


def check_camera(camera: RigCamera, path: str | Path) -> None:
    """Raise when a camera cannot be a real one: numbers that are not finite, a focal length that is not
    positive, a K whose last row is not (0, 0, 1), or a camera too far for any capture (the units of the
    calibration were probably wrong). Every format is checked here, after conversion."""
    what = f"camera {camera.name!r}"
    for name, value in (("K", camera.K), ("R", camera.R), ("t", camera.t)):
        if value is not None and not np.isfinite(np.asarray(value, np.float64)).all():
            raise RigError(path, f"{what}: {name} holds numbers that are not finite ({np.asarray(value).tolist()})")
    if camera.K is not None:
        K = camera.K
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            raise RigError(path, f"{what}: focal lengths fx = {K[0, 0]:g}, fy = {K[1, 1]:g} px; both must be "
                                 "positive", "check the intrinsics K (a mirrored axis belongs in R, not in K)")
        if not np.allclose(K[2], [0.0, 0.0, 1.0]):
            raise RigError(path, f"{what}: K's last row is {K[2].tolist()}; expected [0, 0, 1]")
    distance = float(np.linalg.norm(camera.centre))
    if distance > MAX_CAMERA_DISTANCE_CM:
        raise RigError(path, f"{what} sits {distance:.3g} cm from the world origin, farther than any face "
                             f"capture ({MAX_CAMERA_DISTANCE_CM:g} cm)", "check the calibration's translations and "
                             "their units (fitter.io.convert_rig(units=...), docs/rig.md)")


def check_rotation(R: np.ndarray, path, what: str) -> None:
    """Raise when ``R`` is not a proper rotation (a scaled or mirrored matrix would distort every view)."""
    if R.shape != (3, 3) or not np.isfinite(R).all():
        raise RigError(path, f"{what}: rotation is not a finite 3x3 matrix")
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    if err > ROTATION_TOLERANCE or np.linalg.det(R) < 0:
        raise RigError(path, f"{what}: rotation is not orthonormal with det +1 (|R^T R - I| = {err:.2g}, "
                             f"det = {np.linalg.det(R):.3g})", "the file may store a scaled or mirrored matrix")


def check_image_size(rig: Rig, camera: str, size: tuple[int, int], path: str | Path) -> None:
    """Refuse an image (``size`` (h, w), upright as loaded) whose size is not the one its camera's intrinsics were
    calibrated for: K in pixels of other images would misplace every ray, and the fit would end far from the
    detections."""
    cam = rig.cameras[camera]
    if cam.K is None or tuple(cam.image_size) == tuple(size):
        return
    turned = tuple(cam.image_size) == tuple(size)[::-1]
    raise RigError(path, f"is {size[1]}x{size[0]} px (upright, EXIF orientation applied), but the rig calibrates "
                         f"camera {camera!r} for {cam.image_size[1]}x{cam.image_size[0]} px images",
                   "the calibration was made on the stored, unrotated pixels: save the images upright without an "
                   "EXIF orientation, or calibrate the upright images" if turned else
                   "give the calibration of these images, or the images at the calibrated size")

