"""The photos inside each frame's fitting crop, and where they may be compared: the shared evidence of the
photometric and detail terms (not a term itself).

A crop-resolution copy of each photo, linearised from sRGB, is kept; stages that render at a coarser
resolution get an area-downsampled level of it (a pyramid), so one preset weight works at every level.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..common.colour import linear_to_srgb, srgb_to_linear
from ..crop import FitCrop, below_line
from ..evidence import Evidence
from ..model.morphable import MorphableModel
from ..observe.background import face_background
from ..observe.segmentation import PartMasks
from .base import TermContext

# Model regions whose outline the photometric and outline terms may hold against the photo's background.
BACKGROUND_REGIONS = ("narrow_face", "face", "face_and_head")

# A downsampled pixel is compared only when (nearly) all of it was comparable at full resolution.
VALID_COVERAGE = 0.99

# The background is read at most at this size: GrabCut's seed erosion and smoothness are in pixels, so a larger
# crop (vfx's 512 px) would read a different outline from the same photo than default's 256 px.
BACKGROUND_SIZE = 256


@dataclass
class PhotoTarget:
    """One frame's photo inside its fitting crop (full resolution of the crop) and where it may be compared."""

    crop: FitCrop
    image: np.ndarray  # (S, S, 3) float32 linear RGB at crop.size
    valid: np.ndarray  # (S, S) bool: segmented face pixels without occluders (all True without masks)
    segmented: bool = True  # False: no part masks, ``valid`` is the whole crop (no fixed comparison domain)
    face: np.ndarray | None = None  # (S, S) bool: every segmented part (None without masks)
    brow_line: tuple | None = None  # (px, py, nx, ny) in image pixels: the brows' upper edge, normal to the mouth
    _pyramid: dict = field(default_factory=dict)
    _background: np.ndarray | None = None

    @classmethod
    def from_photo(cls, rgb_float: np.ndarray, crop: FitCrop, masks: PartMasks | None = None,
                   parts: tuple[str, ...] = ("skin", "nose")) -> "PhotoTarget":
        """``rgb_float``: (H, W, 3) sRGB in [0, 1]; ``masks``: optional PartMasks: only pixels of ``parts``
        without occluders are compared (brows and lips have sharp albedo edges a smooth albedo cannot follow;
        eyes are glossy and move on their own)."""
        image = srgb_to_linear(crop.image(np.ascontiguousarray(rgb_float, np.float32))).astype(np.float32)
        if masks is None:
            return cls(crop, image, np.ones((crop.size, crop.size), bool), segmented=False)
        else:
            origin = (float(masks.region[0]), float(masks.region[1]))
            compared = np.zeros(masks.labels.shape, bool)
            for part in parts:
                compared |= masks.mask(part)
            valid = crop.mask(compared & ~masks.occlusion, origin)
        return cls(crop, image, valid, face=crop.mask(masks.labels > 0, origin), brow_line=masks.brow_line)

    @property
    def background(self) -> np.ndarray:
        """(S, S) bool: pixels of the crop that show background, read from the colours (fitter.observe.background;
        computed on first use; all False without masks)."""
        if self._background is None:
            if self.face is None:
                self._background = np.zeros(self.valid.shape, bool)
            else:
                self._background = self._read_background(min(self.crop.size, BACKGROUND_SIZE))
        return self._background

    def _read_background(self, size: int) -> np.ndarray:
        """GrabCut's background (fitter.observe.background) read at ``size``, returned at the crop's size."""
        srgb = (np.clip(linear_to_srgb(self.image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if size == self.crop.size:
            return face_background(srgb, self.face, self.valid)

        def area(a: np.ndarray) -> np.ndarray:
            return cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)

        background = face_background(area(srgb), area(self.face.astype(np.float32)) > 0,
                                     area(self.valid.astype(np.float32)) > VALID_COVERAGE)
        full = (self.crop.size, self.crop.size)
        return (cv2.resize(background.astype(np.uint8), full, interpolation=cv2.INTER_NEAREST) > 0) & ~self.face

    def below_brows(self) -> np.ndarray:
        """(S, S) bool: crop pixels on the mouth's side of the brow line (all True without one)."""
        line = None if self.brow_line is None else self.crop.line(self.brow_line)
        return below_line(self.crop.pixel_centres(), line).reshape(self.crop.size, self.crop.size)

    def background_level(self, size: int, device, below_brows: bool = False) -> torch.Tensor:
        """(size, size) bool background at ``size`` (a pixel counts when nearly all of it is background); with
        ``below_brows`` only below the brow line (a fringe over the forehead is not background for the face)."""
        key = ("background", size, str(device), below_brows)
        if key not in self._pyramid:
            full = self.background & self.below_brows() if below_brows else self.background
            level = cv2.resize(full.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
            self._pyramid[key] = torch.as_tensor(level > VALID_COVERAGE, device=device)
        return self._pyramid[key]

    def level(self, size: int, device) -> tuple[FitCrop, torch.Tensor, torch.Tensor]:
        """(crop at ``size``, image (size, size, 3), valid (size, size)) on ``device``."""
        key = (size, str(device))
        if key not in self._pyramid:
            crop = FitCrop(self.crop.x0, self.crop.y0, self.crop.side, size)
            img = cv2.resize(self.image, (size, size), interpolation=cv2.INTER_AREA)
            valid = cv2.resize(self.valid.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
            self._pyramid[key] = (crop, torch.as_tensor(img, device=device),
                                  torch.as_tensor(valid > VALID_COVERAGE, device=device))
        return self._pyramid[key]


@dataclass
class PhotoTargets:
    """Every frame's :class:`PhotoTarget` of one subject."""

    frames: list[PhotoTarget]

    @classmethod
    def from_evidence(cls, evidence: Evidence, crop_size: int, margin: float,
                      parts: tuple[str, ...]) -> "PhotoTargets":
        return cls([PhotoTarget.from_photo(f.photo, f.crop(crop_size, margin), f.masks, parts)
                    for f in evidence.frames])

    @property
    def crop_size(self) -> int:
        return self.frames[0].crop.size

    @property
    def segmented(self) -> bool:
        """Whether every frame knows where its face skin is (part masks)."""
        return all(t.segmented for t in self.frames)

    def background_level(self, size: int, device, below_brows: bool = False) -> torch.Tensor:
        """(F, size, size) bool: each frame's background pixels at ``size``."""
        return torch.stack([t.background_level(size, device, below_brows) for t in self.frames])

    def level(self, size: int, device) -> tuple[list[FitCrop], torch.Tensor, torch.Tensor]:
        """(crops at ``size``, images (F, size, size, 3), valid (F, size, size)) on ``device``."""
        levels = [t.level(size, device) for t in self.frames]
        return [c for c, _, _ in levels], torch.stack([i for _, i, _ in levels]), torch.stack([v for _, _, v in levels])


def crop_intrinsics(crops: list[FitCrop], K: torch.Tensor) -> torch.Tensor:
    """Per-frame intrinsics (F, 3, 3) that project straight into each frame's crop."""
    return torch.cat([crop.K(K[f : f + 1]) for f, crop in enumerate(crops)])


def triangle_mask(model: MorphableModel, triangles: np.ndarray) -> torch.Tensor:
    """(T,) bool over the model's triangles: True at the indices ``triangles``."""
    mask = np.zeros(len(model.topology.triangles), bool)
    mask[triangles] = True
    return torch.as_tensor(mask, device=model.device)


def face_triangle_mask(model: MorphableModel) -> torch.Tensor:
    """(T,) bool over the model's triangles: the face skin that photometric terms compare."""
    return triangle_mask(model, model.topology.face_triangles())


def region_triangle_mask(model: MorphableModel, region: str) -> torch.Tensor:
    """(T,) bool over the model's triangles: those of a named vertex region (the face skin's when the model
    has no such region, as small test models do not)."""
    topology = model.topology
    if region not in topology.regions:
        return face_triangle_mask(model)
    return triangle_mask(model, topology.triangles_in(topology.region(region)))


def photo_targets(ctx: TermContext) -> PhotoTargets:
    """Every frame's photo in its crop, as the [photo] section says (shared by the photometric terms)."""
    cfg = ctx.section("photo")
    return PhotoTargets.from_evidence(ctx.evidence, int(cfg["crop_size"]), float(ctx.section("crop")["margin"]),
                                      tuple(cfg["parts"]))
