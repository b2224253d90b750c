"""Converting calibrations into facefit's :class:`~fitter.io.rig.Rig` (rig.json): :func:`convert_rig` and
one reader per format.

Each reader states its source's conventions and converts them (docs/rig.md):
- COLMAP text: world -> camera, OpenCV axes, rotation as a quaternion (qw, qx, qy, qz); pixel centres at
  +0.5 (as facefit). Nothing to flip.
- NeRF / Blender ``transforms.json``: ``transform_matrix`` is camera -> world with OpenGL camera axes (x right,
  y up, z backwards): inverted and its y and z axes flipped.
- OpenCV YAML/XML (cv2.FileStorage): world -> camera (solvePnP / calibrateCamera rvec, tvec); pixel
  centres at integer coordinates, so the principal point moves by +0.5 px.
"""
from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import numpy as np

from .images import upright_size
from .inputs import _natural_key
from .multiview import discover_multiview
from .rig import Rig, RigCamera, RigError, check_camera, check_rotation, intrinsic_matrix

RIG_FORMATS = ("colmap", "nerf", "opencv", "none")
# Source length units the user may name instead of a bare scale factor (to centimetres).
UNIT_TO_CM = {"m": 100.0, "cm": 1.0, "mm": 0.1}

# OpenGL camera axes (y up, z backwards) -> OpenCV camera axes (y down, z forward), and back.
GL_TO_CV = np.diag([1.0, -1.0, -1.0])
# OpenCV calibrations put pixel centres at integer coordinates; facefit at +0.5 (origin at the pixel corner).
OPENCV_PIXEL_SHIFT = 0.5

# COLMAP camera models: (focal parameter names, distortion parameter names) after cx, cy.
# Single-focal models list "f"; the order is COLMAP's (src/colmap/sensor/models.h).
COLMAP_MODELS = {
    "SIMPLE_PINHOLE": (("f",), ()),
    "PINHOLE": (("fx", "fy"), ()),
    "SIMPLE_RADIAL": (("f",), ("k",)),
    "RADIAL": (("f",), ("k1", "k2")),
    "OPENCV": (("fx", "fy"), ("k1", "k2", "p1", "p2")),
    "FULL_OPENCV": (("fx", "fy"), ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")),
    "OPENCV_FISHEYE": (("fx", "fy"), ("k1", "k2", "k3", "k4")),
    "SIMPLE_RADIAL_FISHEYE": (("f",), ("k",)),
    "RADIAL_FISHEYE": (("f",), ("k1", "k2")),
    "FOV": (("fx", "fy"), ("omega",)),
    "THIN_PRISM_FISHEYE": (("fx", "fy"), ("k1", "k2", "p1", "p2", "k3", "k4", "sx1", "sy1")),
}
# OpenCV's distortion vector order (cv2.calibrateCamera), 4 to 14 entries.
OPENCV_DISTORTION = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6", "s1", "s2", "s3", "s4", "tauX", "tauY")
# NeRF transforms.json distortion keys (instant-ngp / nerfstudio).
NERF_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")
NERF_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y", "camera_model")


def resolve_scale(scale: float | None, units: str | None) -> tuple[float, str, str | None]:
    """(scale to cm, source units as stated, warning) from an explicit scale or a unit name."""
    if scale is not None and units is not None:
        raise ValueError(f"give the source's units or a scale to cm, not both (units={units!r}, scale={scale!r})")
    if scale is not None:
        if not (isinstance(scale, numbers.Real) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        return float(scale), "given by scale", None
    if units is None:
        return 1.0, "unknown", ("the source's length units are unknown: translations were taken as cm "
                                "(name the source units, m, cm or mm, or give the scale to cm)")
    if units not in UNIT_TO_CM:
        raise ValueError(f"units must be one of {sorted(UNIT_TO_CM)}, got {units!r}")
    return UNIT_TO_CM[units], units, None


def convert_rig(source: str | Path, format: str = "auto", *, scale: float | None = None, units: str | None = None,
                image_sizes: dict[str, tuple[int, int]] | None = None, focal_px: float | None = None) -> Rig:
    """Read a calibration in any supported format and express it in facefit's conventions.

    ``format``: ``colmap`` (a folder with cameras.txt + images.txt, or either file), ``nerf`` (a
    transforms.json), ``opencv`` (a YAML/XML file read with cv2.FileStorage), ``none`` (uncalibrated:
    ``source`` is a multi-view folder, or pass ``image_sizes``), or ``auto`` (guessed from the path).
    ``scale`` multiplies source translations into cm; or name the source ``units`` (m, cm, mm).
    """
    source = Path(source)
    fmt = guess_format(source) if format == "auto" else format
    if fmt not in RIG_FORMATS:
        raise ValueError(f"rig format must be one of {', '.join(RIG_FORMATS)} or auto, got {format!r}")
    if fmt == "none":
        return uncalibrated(source, image_sizes, focal_px)
    factor, stated_units, warning = resolve_scale(scale, units)
    reader = {"colmap": read_colmap, "nerf": read_nerf, "opencv": read_opencv}[fmt]
    rig = reader(source, factor)
    for camera in rig.cameras.values():
        check_camera(camera, source)
    rig.scale = factor
    rig.source.update({"format": fmt, "path": str(source), "units": stated_units})
    if warning:
        rig.warnings.insert(0, warning)
    return rig


def guess_format(source: Path) -> str:
    """The calibration format of a path, from its name (one :class:`RigError` when it cannot be told)."""
    if not source.exists():
        raise RigError(source, "calibration does not exist", "check the path given to --rig (or 'none' for an "
                                                             "uncalibrated rig)")
    if source.is_dir():
        if (source / "cameras.txt").exists() or (source / "sparse").exists():
            return "colmap"
        if (source / "transforms.json").exists():
            return "nerf"
        raise RigError(source, "folder holds neither COLMAP text (cameras.txt + images.txt) nor transforms.json",
                       "pass the calibration file, or the format none for an uncalibrated rig")
    if source.name in ("cameras.txt", "images.txt"):
        return "colmap"
    if source.suffix.lower() == ".json":
        return "nerf"
    if source.suffix.lower() in (".yaml", ".yml", ".xml"):
        return "opencv"
    raise RigError(source, "calibration format cannot be told from the name",
                   "name the format: colmap, nerf, opencv or none")


def camera_names(image_names: list[str], source: Path) -> list[str]:
    """Camera names for the images of a calibration, by facefit's multi-view layout rule.

    When every image sits in a folder and there are several folders (``<camera>/<frame>.png``), a camera is
    its folder; otherwise it is the image's file stem (``cam0.png`` -> ``cam0``). Returns one name per image.
    """
    parents = [Path(n).parent.name for n in image_names]
    if all(parents) and len(set(parents)) > 1:
        return parents
    stems = [Path(n).stem for n in image_names]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise RigError(source, f"several images share the name {dupes[0]!r} in different folders, so cameras "
                               "cannot be named from image names", "give each camera's images their own folder")
    return stems


def _add_camera(cameras: dict[str, RigCamera], cam: RigCamera, warnings: list[str]) -> None:
    """Keep the first image of each camera; a rig's later frames of one camera are the same calibration."""
    if cam.name in cameras:
        warnings.append(f"camera {cam.name!r}: using {cameras[cam.name].image}, ignoring {cam.image}")
    else:
        cameras[cam.name] = cam


# -- COLMAP ----------------------------------------------------------------------------------------------
def _colmap_files(source: Path) -> tuple[Path, Path]:
    folder = source.parent if source.is_file() else source
    for candidate in (folder, folder / "sparse" / "0", folder / "sparse"):
        if (candidate / "cameras.txt").exists() and (candidate / "images.txt").exists():
            return candidate / "cameras.txt", candidate / "images.txt"
    raise RigError(source, "has no COLMAP text model (cameras.txt and images.txt side by side)",
                   "export it with `colmap model_converter --output_type TXT`")


def _data_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the file's lines without comments; empty lines kept (images.txt has empty
    POINTS2D lines)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RigError(path, f"cannot be read ({err})") from None
    return [(n, line.strip()) for n, line in enumerate(lines, 1) if not line.lstrip().startswith("#")]


def quaternion_matrix(qw: float, qx: float, qy: float, qz: float) -> np.ndarray:
    """Rotation matrix of a unit Hamilton quaternion (scalar first, COLMAP's order); normalises it."""
    q = np.array([qw, qx, qy, qz], np.float64)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _colmap_intrinsics(path: Path) -> dict[int, tuple[np.ndarray, tuple[int, int], dict | None]]:
    out = {}
    for number, line in _data_lines(path):
        if not line:
            continue
        tok = line.split()
        try:
            cam_id, model, width, height = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = [float(v) for v in tok[4:]]
        except (IndexError, ValueError):
            raise RigError(path, f"line {number} is not 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...'") from None
        if model not in COLMAP_MODELS:
            raise RigError(path, f"line {number}: camera model {model} is not supported",
                           f"supported: {', '.join(COLMAP_MODELS)}")
        focal_names, dist_names = COLMAP_MODELS[model]
        if len(params) != len(focal_names) + 2 + len(dist_names):
            raise RigError(path, f"line {number}: {model} takes {len(focal_names) + 2 + len(dist_names)} "
                                 f"parameters, found {len(params)}")
        fx = params[0]
        fy = params[1] if len(focal_names) == 2 else fx
        cx, cy = params[len(focal_names)], params[len(focal_names) + 1]
        dist = params[len(focal_names) + 2:]
        distortion = {"model": model, "params": dict(zip(dist_names, dist))} if dist_names else None
        out[cam_id] = (intrinsic_matrix(fx, fy, cx, cy), (height, width), distortion)
    return out


def read_colmap(source: Path, scale: float) -> Rig:
    """COLMAP's text model: cameras.txt (intrinsics) + images.txt (one pose per image)."""
    cameras_txt, images_txt = _colmap_files(source)
    intrinsics = _colmap_intrinsics(cameras_txt)
    lines = _data_lines(images_txt)
    records = []
    i = 0
    while i < len(lines):
        number, line = lines[i]
        if not line:  # blank lines between records (never the POINTS2D line, consumed below)
            i += 1
            continue
        tok = line.split()
        try:
            qw, qx, qy, qz, tx, ty, tz = (float(v) for v in tok[1:8])
            cam_id, name = int(tok[8]), " ".join(tok[9:])
        except (IndexError, ValueError):
            raise RigError(images_txt, f"line {number} is not 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'") from None
        if not name:
            raise RigError(images_txt, f"line {number}: image {tok[0]} has no NAME")
        if cam_id not in intrinsics:
            raise RigError(images_txt, f"line {number}: image {name} uses camera {cam_id}, which cameras.txt "
                                       "does not list")
        records.append((name, quaternion_matrix(qw, qx, qy, qz), np.array([tx, ty, tz]), cam_id))
        i += 2  # the next line is the image's POINTS2D list (possibly empty)
    if not records:
        raise RigError(images_txt, "lists no images")
    records.sort(key=lambda r: _natural_key(r[0]))
    names = camera_names([r[0] for r in records], images_txt)
    cameras: dict[str, RigCamera] = {}
    warnings: list[str] = []
    for cam_name, (image, R, t, cam_id) in zip(names, records):
        K, size, distortion = intrinsics[cam_id]
        check_rotation(R, images_txt, f"image {image}")
        _add_camera(cameras, RigCamera(cam_name, size, K.copy(), R, t * scale, distortion, image), warnings)
    return Rig(cameras, True, scale, {"format": "colmap"}, warnings)


# -- NeRF transforms.json --------------------------------------------------------------------------------
def _image_size_from_file(path: Path, where: Path) -> tuple[int, int]:
    candidates = [path] if path.suffix else [path.with_suffix(".png"), path.with_suffix(".jpg")]
    for candidate in candidates:
        if candidate.is_file():
            return upright_size(candidate)
    raise RigError(where, f"gives no image size (w, h) and its image {path} cannot be found",
                   "add \"w\" and \"h\" to transforms.json")


def read_nerf(source: Path, scale: float) -> Rig:
    """A NeRF / instant-ngp / nerfstudio ``transforms.json``: shared (top-level) or per-frame intrinsics,
    ``fl_x``/``fl_y`` or ``camera_angle_x``/``camera_angle_y``, ``cx``/``cy`` (default: the image centre),
    and a camera -> world ``transform_matrix`` with OpenGL camera axes per frame."""
    path = source / "transforms.json" if source.is_dir() else source
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RigError(path, "does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RigError(path, f"is not readable JSON ({err})") from None
    frames = data.get("frames") if isinstance(data, dict) else None
    if not frames:
        raise RigError(path, "has no \"frames\" list", "is it a NeRF transforms.json?")
    frames = sorted(frames, key=lambda f: _natural_key(str(f.get("file_path", ""))))
    names = camera_names([str(f.get("file_path", "")) for f in frames], path)
    cameras: dict[str, RigCamera] = {}
    warnings: list[str] = []
    for cam_name, frame in zip(names, frames):
        image = str(frame.get("file_path", ""))
        spec = {k: frame.get(k, data.get(k)) for k in NERF_INTRINSICS + NERF_DISTORTION}
        if spec["w"] and spec["h"]:
            size = (int(spec["h"]), int(spec["w"]))
        else:
            size = _image_size_from_file(path.parent / image, path)
        K = _nerf_K(spec, size, path, image)
        try:
            c2w = np.asarray(frame["transform_matrix"], np.float64)
        except (KeyError, TypeError, ValueError):
            raise RigError(path, f"frame {image!r} has no 4x4 transform_matrix") from None
        if c2w.shape != (4, 4):
            raise RigError(path, f"frame {image!r}: transform_matrix has shape {c2w.shape}, expected 4x4")
        R_c2w_cv = c2w[:3, :3] @ GL_TO_CV  # the camera's OpenCV axes, in world coordinates
        check_rotation(R_c2w_cv, path, f"frame {image!r}")
        R = R_c2w_cv.T
        t = -R @ (c2w[:3, 3] * scale)
        dist = {k: float(spec[k]) for k in NERF_DISTORTION if spec.get(k) is not None}
        distortion = {"model": spec["camera_model"] or "OPENCV", "params": dist} if dist else None
        _add_camera(cameras, RigCamera(cam_name, size, K, R, t, distortion, image), warnings)
    return Rig(cameras, True, scale, {"format": "nerf"}, warnings)


def _nerf_K(spec: dict, size: tuple[int, int], path: Path, image: str) -> np.ndarray:
    h, w = size
    if spec["fl_x"]:
        fx = float(spec["fl_x"])
    elif spec["camera_angle_x"]:
        fx = 0.5 * w / np.tan(0.5 * float(spec["camera_angle_x"]))
    else:
        raise RigError(path, f"frame {image!r} has no focal length (fl_x or camera_angle_x)")
    if spec["fl_y"]:
        fy = float(spec["fl_y"])
    elif spec["camera_angle_y"]:
        fy = 0.5 * h / np.tan(0.5 * float(spec["camera_angle_y"]))
    else:
        fy = fx
    cx = float(spec["cx"]) if spec["cx"] is not None else w / 2.0
    cy = float(spec["cy"]) if spec["cy"] is not None else h / 2.0
    return intrinsic_matrix(fx, fy, cx, cy)


# -- OpenCV FileStorage ----------------------------------------------------------------------------------
OPENCV_KEYS = {
    "K": ("K", "camera_matrix", "cameraMatrix"),
    "dist": ("dist", "dist_coeffs", "distCoeffs", "distortion_coefficients", "D"),
    "R": ("R",),
    "rvec": ("rvec",),
    "T": ("T", "t", "tvec"),
    "width": ("image_width",),
    "height": ("image_height",),
}


def _node(parent, kind: str):
    for key in OPENCV_KEYS[kind]:
        node = parent.getNode(key)
        if not node.empty():
            return node
    return None


def _node_array(node) -> np.ndarray:
    """An opencv-matrix, opencv-nd-matrix or plain sequence node as a float array."""
    if node.isSeq():
        return np.array([node.at(i).real() for i in range(node.size())], np.float64)
    mat = node.mat()
    if mat is None:
        return np.array([node.real()], np.float64)
    return np.asarray(mat, np.float64)


def read_opencv(source: Path, scale: float) -> Rig:
    """An OpenCV YAML/XML file: one map per camera (top-level key = camera name), or the keys of a single
    camera at the top level (named after the file). Keys: ``K`` | ``camera_matrix`` (3x3, required);
    ``dist`` | ``dist_coeffs`` | ``distortion_coefficients`` (4-14, optional); ``R`` (3x3) or ``rvec``
    (Rodrigues 3-vector) and ``T`` | ``t`` | ``tvec`` (world -> camera, optional: identity / zero);
    ``image_width`` and ``image_height`` (required)."""
    import cv2

    if not source.is_file():
        raise RigError(source, "OpenCV calibration file does not exist")
    fs = cv2.FileStorage(str(source), cv2.FILE_STORAGE_READ)
    try:
        if not fs.isOpened():
            raise RigError(source, "cannot be read by cv2.FileStorage", "is it OpenCV YAML/XML?")
        root = fs.root()
        if _node(root, "K") is not None:
            nodes = [(source.stem, root)]
        else:
            nodes = [(k, root.getNode(k)) for k in root.keys()]
            nodes = [(k, n) for k, n in nodes if n.isMap() and _node(n, "K") is not None]
        if not nodes:
            raise RigError(source, "has no camera: expected K or camera_matrix at the top level or in one map "
                                   "per camera", "see docs/rig.md for the accepted keys")
        cameras = {name: _opencv_camera(name, node, source, scale) for name, node in nodes}
    finally:
        fs.release()
    return Rig(cameras, True, scale, {"format": "opencv"}, [])


def _opencv_camera(name: str, node, source: Path, scale: float) -> RigCamera:
    import cv2

    K = _node_array(_node(node, "K"))
    if K.shape != (3, 3):
        raise RigError(source, f"camera {name!r}: K has shape {K.shape}, expected 3x3")
    K = K.copy()
    K[0, 2] += OPENCV_PIXEL_SHIFT
    K[1, 2] += OPENCV_PIXEL_SHIFT
    width, height = _node(node, "width"), _node(node, "height")
    if width is None or height is None:
        raise RigError(source, f"camera {name!r} has no image_width / image_height")
    size = (int(height.real()), int(width.real()))
    r_node, rvec_node = _node(node, "R"), _node(node, "rvec")
    if r_node is not None:
        R = _node_array(r_node).reshape(3, 3)
    elif rvec_node is not None:
        R = cv2.Rodrigues(_node_array(rvec_node).reshape(3, 1))[0]
    else:
        R = np.eye(3)
    check_rotation(R, source, f"camera {name!r}")
    t_node = _node(node, "T")
    t = np.zeros(3) if t_node is None else _node_array(t_node).reshape(3)
    dist_node = _node(node, "dist")
    distortion = None
    if dist_node is not None:
        coeffs = _node_array(dist_node).reshape(-1)
        distortion = {"model": "opencv", "params": dict(zip(OPENCV_DISTORTION, coeffs.tolist()))}
    return RigCamera(name, size, K, R, t * scale, distortion, None)


# -- uncalibrated ----------------------------------------------------------------------------------------
def uncalibrated(source: Path, image_sizes: dict[str, tuple[int, int]] | None, focal_px: float | None) -> Rig:
    """Identity extrinsics for every camera (the fitter estimates them, the first camera being the world),
    intrinsics from ``focal_px`` with the principal point at the image centre, or unknown (None)."""
    if image_sizes is None:

        image_sizes = discover_multiview(source).image_sizes()
    cameras = {}
    for name, (h, w) in image_sizes.items():
        K = None if focal_px is None else intrinsic_matrix(focal_px, focal_px, w / 2.0, h / 2.0)
        cameras[name] = RigCamera(name, (int(h), int(w)), K)
    return Rig(cameras, False, 1.0, {"format": "none", "path": str(source), "units": "cm"}, [])
