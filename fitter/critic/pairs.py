"""Training and held-out pairs: one photo, the grey render of its truth and that of a labelled negative, in the
same jittered fitting crop over the same noise background (so only the geometry differs between the two)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import model_to_camera
from ..crop import FitCrop
from ..model.morphable import MorphableModel
from .align import CropJitter, training_crop
from .negatives import NegativeSampler
from .pool import Geometry, PoolPhoto, intrinsics_of
from .view import FaceMesh, crop_K, grey_view, noise_background, photo_view

MINED = "mined"
LABEL_STRIDE = 3  # training labels measure every third face-region vertex (held-out and eval labels: all)  # the mixture's name for negatives found by fitting or by descending the critic


@dataclass
class Pairs:
    photo: torch.Tensor  # (B, 3, S, S)
    positive: torch.Tensor  # (B, 1, S, S) grey render of the truth
    negative: torch.Tensor  # (B, 1, S, S) grey render of the negative
    error_mm: torch.Tensor  # (B,) the negative's label
    kinds: list[str] = field(default_factory=list)
    photo_keys: list[tuple[int, int]] = field(default_factory=list)  # (seed, index) of each pair's photo

    def __len__(self) -> int:
        return len(self.kinds)

    @staticmethod
    def concat(parts: list["Pairs"]) -> "Pairs":
        return Pairs(torch.cat([p.photo for p in parts]), torch.cat([p.positive for p in parts]),
                     torch.cat([p.negative for p in parts]), torch.cat([p.error_mm for p in parts]),
                     [k for p in parts for k in p.kinds], [k for p in parts for k in p.photo_keys])

    def subset(self, keep: np.ndarray) -> "Pairs":
        idx = torch.as_tensor(np.flatnonzero(keep))
        return Pairs(self.photo[idx], self.positive[idx], self.negative[idx], self.error_mm[idx],
                     [self.kinds[i] for i in idx.tolist()], [self.photo_keys[i] for i in idx.tolist()])

    def other_photos(self) -> torch.Tensor:
        """Each pair's photo replaced by another photo's (pairs grouped by photo, as heldout_pairs makes them)."""
        first = self.photo_keys[0] if self.photo_keys else None
        group = sum(1 for k in self.photo_keys if k == first)
        return self.photo.roll(group, 0)


@dataclass
class Item:
    """One pair before rendering."""

    photo: PoolPhoto
    crop: FitCrop
    negative: Geometry
    error_mm: float
    kind: str
    noise_seed: int


def render_greys(face: FaceMesh, geometries: list[Geometry], photos: list[PoolPhoto], crops: list[FitCrop],
                 noise_seeds: list[int], size: int) -> torch.Tensor:
    """(F, 1, S, S) grey renders of geometries, each in its photo's crop over its seeded background."""

    def stack(name: str) -> torch.Tensor:
        return torch.as_tensor(np.stack([getattr(g, name) for g in geometries]), dtype=torch.float32)

    with torch.no_grad():
        v = face.vertices(stack("identity").to(face.mean), stack("expression").to(face.mean))
        cam = model_to_camera(v, stack("rotation").to(v), stack("translation").to(v))
        K = crop_K(crops, intrinsics_of(geometries, [p.image_size for p in photos]).to(cam))
        return grey_view(cam, face.triangles, K, size, noise_background(len(crops), size, noise_seeds))


def render_items(face: FaceMesh, items: list[Item], size: int) -> Pairs:
    photos = [it.photo for it in items]
    crops = [it.crop for it in items]
    seeds = [it.noise_seed for it in items]
    greys = render_greys(face, [it.photo.truth for it in items] + [it.negative for it in items], photos + photos,
                         crops + crops, seeds + seeds, size)
    views = torch.from_numpy(np.stack([photo_view(it.photo.image, it.crop) for it in items]))
    n = len(items)
    return Pairs(views, greys[:n], greys[n:], torch.tensor([it.error_mm for it in items], dtype=torch.float32),
                 [it.kind for it in items], [(it.photo.seed, it.photo.index) for it in items])


class PairSource:
    """Draws training pairs: a random photo of the pool, a jittered crop, a negative from the mixture."""

    def __init__(self, model: MorphableModel, photos: list[PoolPhoto], mixture: dict[str, float], size: int,
                 margin: float, jitter: CropJitter, rng: np.random.Generator) -> None:
        self.model = model
        self.photos = photos
        self.mixture = dict(mixture)
        self.size = size
        self.margin = margin
        self.jitter = jitter
        self.rng = rng
        self.sampler = NegativeSampler(model, label_stride=LABEL_STRIDE)
        self.face = FaceMesh.of(model)
        self.mined: dict[int, list[tuple[Geometry, float]]] = {}  # photo position -> mined negatives

    def add_mined(self, position: int, geometry: Geometry, error_mm: float) -> None:
        self.mined.setdefault(position, []).append((geometry, error_mm))

    @property
    def mined_count(self) -> int:
        return sum(len(v) for v in self.mined.values())

    def _kind(self) -> str:
        kinds = [k for k, w in self.mixture.items() if w > 0 and (k != MINED or self.mined)]
        weights = np.array([self.mixture[k] for k in kinds], float)
        return str(self.rng.choice(kinds, p=weights / weights.sum()))

    def item(self) -> Item:
        kind = self._kind()
        if kind == MINED:
            position = int(self.rng.choice(list(self.mined)))
            geometry, error = self.mined[position][int(self.rng.integers(len(self.mined[position])))]
        else:
            position = int(self.rng.integers(len(self.photos)))
            geometry, error = self.sampler.sample(self.photos[position], kind, self.rng, self.photos)
        photo = self.photos[position]
        crop = training_crop(photo.landmarks, self.size, self.margin, self.rng, self.jitter)
        return Item(photo, crop, geometry, error, kind, int(self.rng.integers(2**31)))

    def batch(self, count: int) -> Pairs:
        return render_items(self.face, [self.item() for _ in range(count)], self.size)


def heldout_pairs(model: MorphableModel, photos: list[PoolPhoto], kinds: tuple[str, ...], per_kind: int, size: int,
                  margin: float, jitter: CropJitter, seed: int, chunk: int = 64) -> Pairs:
    """A fixed set of pairs: for every photo, ``per_kind`` negatives of each kind (seeded, rendered once)."""
    rng = np.random.default_rng(seed)
    sampler = NegativeSampler(model)
    face = FaceMesh.of(model)
    items = []
    for photo in photos:
        for kind in kinds:
            for _ in range(per_kind):
                geometry, error = sampler.sample(photo, kind, rng, photos)
                crop = training_crop(photo.landmarks, size, margin, rng, jitter)
                items.append(Item(photo, crop, geometry, error, kind, int(rng.integers(2**31))))
    return Pairs.concat([render_items(face, items[i:i + chunk], size) for i in range(0, len(items), chunk)])

