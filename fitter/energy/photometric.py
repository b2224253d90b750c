"""Photometric agreement between a Lambertian render of the fit and the photo, inside the fitting crop.

colour(pixel) = albedo(pixel) * shading(normal(pixel)) under second-order SH lighting, compared with the
photo (linearised from sRGB) through a robust pseudo-Huber loss, over the pixels that are both rendered face
skin (the face material, not eyes) and, when part masks exist, segmented as face (not hair or occluders).
Rendering happens at the stage's ``resolution`` (a coarse-to-fine pyramid over stages): the photo is
area-downsampled to match, so one preset weight works at every level.

When the state carries a UV displacement map, per-pixel normals are those of the displaced surface
(bump mapping: p' = p + d(uv) n, with the surface's UV tangents), so the same term fits fine detail.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..common.colour import srgb_to_linear
from ..common.filters import high_pass
from ..crop import FitCrop
from ..model.albedo import AlbedoBasis
from ..model.morphable import MorphableModel
from ..render import bump
from ..scene import Scene
from .base import pseudo_huber

FACE_MATERIAL = "M_Face"


@dataclass
class PhotoTarget:
    """The photo inside the fitting crop (full resolution of the crop) and where it may be compared."""

    crop: FitCrop
    image: np.ndarray  # (S, S, 3) float32 linear RGB at crop.size
    valid: np.ndarray  # (S, S) bool: segmented face pixels without occluders (all True without masks)
    _pyramid: dict = field(default_factory=dict)

    @classmethod
    def from_photo(cls, rgb_float: np.ndarray, crop: FitCrop, masks=None,
                   parts: tuple[str, ...] = ("skin", "nose")) -> "PhotoTarget":
        """``rgb_float``: (H, W, 3) sRGB in [0, 1]; ``masks``: optional PartMasks: only pixels of ``parts``
        without occluders are compared (brows and lips have sharp albedo edges a smooth albedo cannot follow;
        eyes are glossy and move on their own)."""
        image = srgb_to_linear(crop.image(np.ascontiguousarray(rgb_float, np.float32))).astype(np.float32)
        if masks is None:
            valid = np.ones((crop.size, crop.size), bool)
        else:
            face = np.zeros(masks.labels.shape, bool)
            for part in parts:
                face |= masks.mask(part)
            valid = crop.mask(face & ~masks.occlusion, (float(masks.region[0]), float(masks.region[1])))
        return cls(crop, image, valid)

    def level(self, size: int, device) -> tuple[FitCrop, torch.Tensor, torch.Tensor]:
        """(crop at ``size``, image (1, size, size, 3), valid (1, size, size)) on ``device``."""
        key = (size, str(device))
        if key not in self._pyramid:
            import cv2

            crop = FitCrop(self.crop.x0, self.crop.y0, self.crop.side, size)
            img = cv2.resize(self.image, (size, size), interpolation=cv2.INTER_AREA)
            valid = cv2.resize(self.valid.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) > 0.99
            self._pyramid[key] = (crop, torch.as_tensor(img, device=device)[None],
                                  torch.as_tensor(valid, device=device)[None])
        return self._pyramid[key]


class PhotometricTerm:
    name = "photometric"

    def __init__(self, model: MorphableModel, target: PhotoTarget, albedo: AlbedoBasis, sigma: float = 0.02,
                 robust_delta: float = 3.0, resolution: int = 128, backend: str = "auto") -> None:
        self.model = model
        self.target = target
        self.albedo = albedo
        self.sigma = sigma
        self.delta = robust_delta
        self.resolution = resolution
        self.backend = backend
        topo = model.topology
        self.triangles = torch.as_tensor(topo.triangles, device=model.device)
        face_tris = np.zeros(len(topo.triangles), bool)
        if FACE_MATERIAL in topo.material_names:
            face_tris[topo.material_triangles(FACE_MATERIAL)] = True
        else:  # models without ICT's materials: every non-eye triangle of the face region
            face_tris[topo.triangles_in(topo.region("face"))] = True
        self.face_triangles = torch.as_tensor(face_tris, device=model.device)

    band: float = 0.0  # > 0: high-pass sigma in pixels (set per stage with ``detail_band``)

    def set_resolution(self, size: int) -> None:
        self.resolution = int(size)

    def render(self, scene: Scene, size: int | None = None) -> dict:
        """Render the current state into the crop: colour, shading, valid mask, fragments (memoised)."""
        size = int(size or self.resolution)

        def compute() -> dict:
            from ..render import interpolate, pixel_normals, rasterize, sh_shading

            state = scene.state
            crop, photo, valid = self.target.level(size, state.device)
            cam = scene.camera_vertices()
            frags = rasterize(cam, self.triangles, crop.K(scene.K()), (size, size), backend=self.backend)
            normals = pixel_normals(frags, cam)
            if state.displacement is not None:
                normals = self.detail_normals(scene, frags, normals)
            shading = sh_shading(normals, state.sh)
            albedo_v = self.albedo.per_vertex(state.albedo, self.model.num_vertices)
            colour = interpolate(frags, albedo_v) * shading
            tri = frags.triangle_id.clamp(min=0)
            skin = frags.mask & self.face_triangles[tri]
            return {"colour": colour, "shading": shading, "mask": skin & valid, "photo": photo, "frags": frags,
                    "crop": crop}

        return scene.memo(("photometric", size), compute)

    def detail_normals(self, scene: Scene, frags, normals: torch.Tensor) -> torch.Tensor:
        """Per-pixel normals of the surface displaced along its normals by the state's UV displacement map."""
        from ..render import interpolate

        topo = self.model.topology
        uv = interpolate(frags, torch.as_tensor(topo.uvs, device=normals.device),
                         torch.as_tensor(topo.triangle_uvs, device=normals.device))
        return bump.displaced_normals(scene.camera_vertices(), frags, normals, uv, scene.state.displacement,
                                      self.face_triangles, torch.as_tensor(topo.triangle_uvs, device=normals.device),
                                      torch.as_tensor(topo.uvs, device=normals.device))

    def __call__(self, scene: Scene) -> torch.Tensor:
        r = self.render(scene)
        mask = r["mask"]
        if self.band:  # detail stages: compare only what a blur of ``band`` pixels does not keep
            m = mask[..., None].to(r["colour"].dtype)
            res = (high_pass(r["colour"], m, self.band) - high_pass(r["photo"], m, self.band)) / self.sigma
        else:
            res = (r["colour"] - r["photo"]) / self.sigma
        per_pixel = pseudo_huber(res, self.delta).sum(-1)  # (F, S, S)
        count = mask.flatten(1).sum(1).clamp(min=1)
        return (per_pixel * mask).flatten(1).sum(1) / count


@torch.no_grad()
def initial_lighting(term: PhotometricTerm, scene: Scene, size: int = 64, rounds: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form start for (albedo coefficients (K, 3), SH (F, 9, 3)): alternate a uniform albedo and the SH
    least-squares solve on the rendered normals (the albedo-lighting scale is fixed by the albedo's mean)."""
    from ..render import pixel_normals, rasterize, sh_basis

    state = scene.state
    crop, photo, valid = term.target.level(size, state.device)
    cam = scene.camera_vertices()
    frags = rasterize(cam, term.triangles, crop.K(scene.K()), (size, size), backend=term.backend)
    normals = pixel_normals(frags, cam)
    mask = frags.mask & term.face_triangles[frags.triangle_id.clamp(min=0)] & valid
    albedo = torch.full((3,), 0.5, device=state.device)
    frames = photo.shape[0]
    sh = torch.zeros(frames, 9, 3, device=state.device)
    for _ in range(rounds):
        for f in range(frames):
            m = mask[f]
            if m.sum() < 20:
                sh[f, 0] = 3.5449  # uniform light of radiance 1
                continue
            basis = sh_basis(normals[f][m], lambertian=True)  # (N, 9)
            for c in range(3):
                target = photo[f][m][:, c] / albedo[c]
                reg = 1e-3 * torch.eye(9, device=basis.device)
                sh[f, :, c] = torch.linalg.solve(basis.T @ basis + reg, basis.T @ target)
        # albedo per channel given the light: least squares over all pixels
        num = torch.zeros(3, device=state.device)
        den = torch.zeros(3, device=state.device)
        for f in range(frames):
            m = mask[f]
            shade = sh_basis(normals[f][m], lambertian=True) @ sh[f]  # (N, 3)
            num += (shade * photo[f][m]).sum(0)
            den += (shade * shade).sum(0)
        new_albedo = (num / den.clamp(min=1e-9)).clamp(0.05, 1.0)
        # keep the albedo's overall level fixed (0.5 mean): the light takes the scale
        scale = new_albedo.mean() / 0.5
        albedo = new_albedo / scale
    return term.albedo.constant(albedo), sh


class AlbedoPrior:
    """Smoothness (sum_k lambda_k |c_k|^2), symmetry and a skin-tone prior on the albedo coefficients."""

    name = "albedo_prior"

    def __init__(self, albedo: AlbedoBasis, smoothness: float = 1.0, symmetry: float = 1.0,
                 mean_colour: tuple[float, float, float] | None = None, mean_sigma: float = 0.2) -> None:
        self.albedo = albedo
        self.smoothness = smoothness
        self.symmetry = symmetry
        self.mean_colour = None if mean_colour is None else torch.tensor(mean_colour)
        self.mean_sigma = mean_sigma
        b = albedo.basis
        self.antisym = b - b[albedo.mirror]  # (N, K): the part of each mode that breaks symmetry

    def __call__(self, scene: Scene) -> torch.Tensor:
        c = scene.state.albedo
        lam = self.albedo.eigenvalues.to(c) / self.albedo.eigenvalues[1:].mean().clamp(min=1e-9)
        e = self.smoothness * (lam[:, None] * c**2).sum()
        e = e + self.symmetry * ((self.antisym.to(c) @ c) ** 2).mean(0).sum() / (0.02**2)
        if self.mean_colour is not None:
            e = e + (((c[0] - self.mean_colour.to(c)) / self.mean_sigma) ** 2).sum()
        frames = scene.state.num_frames
        return e.expand(frames) / frames


class LightPrior:
    """Keeps the higher SH bands moderate relative to the ambient term (no extreme, overfitted lights)."""

    name = "light_prior"

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = sigma

    def __call__(self, scene: Scene) -> torch.Tensor:
        sh = scene.state.sh
        ambient = sh[:, :1].abs().mean(-1, keepdim=True).detach().clamp(min=1e-3)
        return (((sh[:, 1:] / ambient) / self.sigma) ** 2).sum((1, 2))


