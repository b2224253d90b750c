"""The critic's photos: wild synthetic faces of known geometry, rendered once and kept in an on-disk cache.

Rendering a wild photo takes one to two seconds, far more than the critic's training step, so a pool is
rendered once (one compressed ``.npz`` per photo under ``<cache>/critic_pool/<recipe>/<seed>/``) and each photo
is reused with many negatives, crops and backgrounds. A photo is ``sample_case(model, index, seed,
appearance="wild")`` rendered by ``render_case``: its true identity, expression, pose and camera are stored
beside the 8-bit image, with the true pixel positions of the 478 landmark points (where a detector would put
them) that the training crop is taken around.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .. import __version__
from ..camera import model_to_camera, project
from ..common.files import cache_folder, write_npz
from ..model.morphable import MorphableModel
from ..synth.cases import render_case, sample_case
from ..synth.scenes import SyntheticCase

LANDMARK_EMBEDDING = "mediapipe478"  # the points whose box the fitting crop is taken around
PHOTO_SIZE = 512  # rendered photo side: the wild benchmark's
RECIPE = f"wild-{PHOTO_SIZE}-facefit{__version__}"  # a new synth version renders new photos, never mixes them

# Called as progress(done, total) while a pool is rendered or read.
PoolProgress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$FACEFIT_CACHE/critic_pool``, else ``~/.cache/facefit/critic_pool``."""
    return cache_folder("critic_pool")


@dataclass
class Geometry:
    """One face geometry seen through one camera: what the grey render draws (model coefficients and pose)."""

    identity: np.ndarray  # (K_id,)
    expression: np.ndarray  # (K_exp,)
    rotation: np.ndarray  # (3,) axis-angle, facefit convention
    translation: np.ndarray  # (3,) cm
    focal: float  # pixels (the principal point is the image centre)

    def replace(self, **changes) -> "Geometry":
        values = {k: getattr(self, k) for k in ("identity", "expression", "rotation", "translation", "focal")}
        values.update(changes)
        return Geometry(**values)


@dataclass
class PoolPhoto:
    seed: int
    index: int
    image: np.ndarray  # (H, W, 3) uint8 sRGB
    truth: Geometry
    landmarks: np.ndarray  # (478, 2) true pixel positions of the landmark points

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def camera_vertices(model: MorphableModel, geometries: list[Geometry]) -> torch.Tensor:
    """Camera-frame vertices (F, V, 3) of several geometries (one batched model evaluation)."""
    ident = torch.as_tensor(np.stack([g.identity for g in geometries]), dtype=torch.float32, device=model.device)
    expr = torch.as_tensor(np.stack([g.expression for g in geometries]), dtype=torch.float32, device=model.device)
    rot = torch.as_tensor(np.stack([g.rotation for g in geometries]), dtype=torch.float32, device=model.device)
    trans = torch.as_tensor(np.stack([g.translation for g in geometries]), dtype=torch.float32, device=model.device)
    return model_to_camera(model.vertices(ident, expr), rot, trans)


def intrinsics_of(geometries: list[Geometry], image_sizes: list[tuple[int, int]]) -> torch.Tensor:
    """(F, 3, 3) intrinsics: each geometry's focal, principal point at its image's centre."""
    rows = [[[g.focal, 0.0, w / 2.0], [0.0, g.focal, h / 2.0], [0.0, 0.0, 1.0]]
            for g, (h, w) in zip(geometries, image_sizes)]
    return torch.tensor(rows, dtype=torch.float32)


def true_landmarks(model: MorphableModel, truth: Geometry, image_size: tuple[int, int]) -> np.ndarray:
    """(478, 2) pixels of the landmark points of the true geometry."""
    cam = camera_vertices(model, [truth])
    points = model.embedded_points(cam, model.topology.embeddings[LANDMARK_EMBEDDING])
    return project(points, intrinsics_of([truth], [image_size]))[0].detach().cpu().numpy()


def render_photo(model: MorphableModel, seed: int, index: int) -> PoolPhoto:
    """Render one wild photo of (seed, index) and its truth."""
    case = sample_case(model, index, seed, PHOTO_SIZE, appearance="wild")
    return photo_of_case(model, case, render_case(model, case).image, seed)


def photo_of_case(model: MorphableModel, case: SyntheticCase, image: np.ndarray, seed: int) -> PoolPhoto:
    """A pool photo from the synthetic case (seed, case.index) and its rendered image (any appearance, size)."""
    truth = Geometry(case.identity.astype(np.float32), case.expression.astype(np.float32),
                     np.asarray(case.rotation, np.float32), np.asarray(case.translation, np.float32), float(case.focal))
    with torch.no_grad():
        landmarks = true_landmarks(model, truth, case.image_size)
    return PoolPhoto(seed, case.index, image, truth, landmarks)


def photo_path(cache_dir: Path, seed: int, index: int) -> Path:
    return Path(cache_dir) / RECIPE / str(seed) / f"{index:05d}.npz"


def save_photo(path: Path, photo: PoolPhoto) -> None:
    ok, png = cv2.imencode(".png", photo.image[..., ::-1])
    if not ok:
        raise OSError(f"{path}: could not encode the photo")
    t = photo.truth
    write_npz(path, png=png.reshape(-1), identity=t.identity, expression=t.expression, rotation=t.rotation,
              translation=t.translation, focal=np.float64(t.focal), landmarks=photo.landmarks.astype(np.float32),
              seed=np.int64(photo.seed), index=np.int64(photo.index))


def load_photo(path: Path) -> PoolPhoto:
    with np.load(path) as data:
        image = cv2.imdecode(data["png"], cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: the cached photo does not decode")
        truth = Geometry(data["identity"], data["expression"], data["rotation"], data["translation"],
                         float(data["focal"]))
        return PoolPhoto(int(data["seed"]), int(data["index"]), image[..., ::-1].copy(), truth, data["landmarks"])


def photo(model: MorphableModel, seed: int, index: int, cache_dir: Path | None = None) -> PoolPhoto:
    """The photo of (seed, index): read from the cache, else rendered and cached (a corrupt entry is redone)."""
    path = photo_path(cache_dir or default_cache_dir(), seed, index)
    if path.exists():
        try:
            return load_photo(path)
        except (OSError, ValueError, KeyError, EOFError):
            path.unlink(missing_ok=True)
    out = render_photo(model, seed, index)
    save_photo(path, out)
    return out


def load_pool(model: MorphableModel, seed: int, count: int, cache_dir: Path | None = None,
              progress: PoolProgress | None = None, start: int = 0) -> list[PoolPhoto]:
    """Photos ``start .. start + count - 1`` of ``seed`` (rendered on first use)."""
    out = []
    for k in range(count):
        out.append(photo(model, seed, start + k, cache_dir))
        if progress:
            progress(k + 1, count)
    return out
