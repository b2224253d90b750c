"""Photometric agreement between a Lambertian render of the fit and the photo, inside each frame's crop.

colour(pixel) = albedo(pixel) * shading(normal(pixel)) under second-order SH lighting, compared with the
photo (linearised from sRGB). Rendering happens at the stage's ``resolution`` (a coarse-to-fine pyramid over
stages). When the state carries a UV displacement map, per-pixel normals are those of the displaced surface
(bump mapping); a stage's ``detail_band`` > 0 compares only the high-passed images.

Where the comparison happens is not the optimiser's choice (``domain = "fixed"``): the domain is the set of
photo pixels segmented as face skin without occluders, fixed per image. Each domain pixel costs
``c rho(r) + (1 - c) kappa``, where ``c`` is the render's antialiased face-skin coverage (so the outline gets
gradients), ``rho`` a redescending robust loss of the colour residual (``loss = "geman_mcclure"``: what the
model cannot represent — highlights, beards, cast shadows, occluders the segmentation missed — saturates and
stops pulling) and ``kappa`` the cost of an uncovered pixel (the saturation level: hiding a pixel gains
nothing). The energy is the mean over the domain, whose size does not change as the face moves. The older
behaviour (a pseudo-Huber mean over the pixels that happen to be both rendered and segmented) is
``domain = "overlap"``, ``loss = "pseudo_huber"``.

The domain says where the skin is, not where it is not: with ``background_cost`` > 0 every pixel that the photo
shows as background (GrabCut on the crop, fitter.observe.background) and the front of the face
(``background_region``) covers costs ``background_cost * delta^2`` too, so the rendered outline cannot spill past
the face's real one (where masks drawn from landmarks put the detector's outline) for free.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..common.filters import high_pass
from ..common.settings import Setting
from ..model.albedo import AlbedoBasis, albedo_basis
from ..model.morphable import MorphableModel
from ..render import antialias, bump, interpolate, pixel_normals, rasterize, sh_basis, sh_shading
from ..scene import Scene
from .base import Term, TermContext, TermSpec, geman_mcclure, pseudo_huber, register
from .photo_target import (BACKGROUND_REGIONS, PhotoTargets, crop_intrinsics, face_triangle_mask, photo_targets,
                           region_triangle_mask)

UNIFORM_LIGHT_SH0 = 2.0 * math.sqrt(math.pi)  # the SH band-0 coefficient of a uniform light of radiance 1
LIGHT_SOLVE_RIDGE = 1e-3  # Tikhonov term of the SH least-squares solve (numerical safety only)
ALBEDO_RANGE = (0.05, 1.0)  # physically plausible diffuse albedo of skin, per channel
CHI3_MEDIAN = 1.5382  # median length of a 3-vector of unit Gaussian noise (chi, 3 degrees of freedom)
NOISE_MODES = ("fixed", "estimated")


class PhotometricTerm(Term):
    name = "photometric"

    def __init__(self, model: MorphableModel, target: PhotoTargets, albedo: AlbedoBasis, sigma: float = 0.02,
                 robust_delta: float = 3.0, resolution: int = 128, backend: str = "auto",
                 init_resolution: int = 64, init_rounds: int = 3, init_albedo_level: float = 0.5,
                 init_min_pixels: int = 20, domain: str = "fixed", loss: str = "geman_mcclure",
                 uncovered_cost: float = 1.0, background_cost: float = 0.0,
                 background_region: str = "narrow_face", background_below_brows: bool = False,
                 noise: str = "fixed") -> None:
        self.model = model
        self.target = target
        self.albedo = albedo
        self.sigma = sigma  # a float, or (F, 1, 1, 1) per frame once estimated
        self.sigma_floor = sigma
        self.noise = noise
        self.delta = robust_delta
        self.resolution = resolution
        self.backend = backend
        self.band = 0.0  # > 0: high-pass sigma in pixels (set per stage with ``detail_band``)
        # a fixed comparison domain needs to know where the skin is; without masks, compare where rendered
        self.domain = domain if target.segmented else "overlap"
        self.loss = loss
        self.uncovered_cost = uncovered_cost  # in units of the robust loss's saturation (delta^2)
        # front-of-face pixels rendered over the photo's background cost this (units of delta^2; 0 = off)
        self.background_cost = background_cost if self.domain == "fixed" else 0.0
        self.front_triangles = region_triangle_mask(model, background_region)
        self.background_below_brows = background_below_brows
        self.init = {"size": init_resolution, "rounds": init_rounds, "level": init_albedo_level,
                     "min_pixels": init_min_pixels}
        self.triangles = torch.as_tensor(model.topology.triangles, device=model.device)
        self.face_triangles = face_triangle_mask(model)

    def configure(self, stage: dict) -> None:
        if "resolution" in stage:
            self.resolution = int(stage["resolution"])
        self.band = float(stage.get("detail_band", 0.0))

    def initialise(self, scene: Scene) -> None:
        state = scene.state
        if state.sh is None or state.albedo is None:
            state.albedo, state.sh = initial_lighting(self, scene, **self.init)
        if self.noise == "estimated":
            self.sigma = self.estimate_noise(scene)

    @torch.no_grad()
    def estimate_noise(self, scene: Scene) -> torch.Tensor:
        """Each frame's photo noise (F, 1, 1, 1): the larger of the configured sigma and the robust scale of the
        residuals at the start (median colour-difference length / its median under unit Gaussian noise). What the
        model cannot represent (real skin, real light, compression) is noise to it: a photo it explains badly
        weighs less against the landmarks, the parts and the priors than one it explains well."""
        r = self.render(scene)
        scale = frame_medians((r["colour"] - r["photo"]).norm(dim=-1), r["mask"], empty=0.0)
        return torch.tensor([max(self.sigma_floor, v / CHI3_MEDIAN) for v in scale],
                            device=r["colour"].device).view(-1, 1, 1, 1)

    def render(self, scene: Scene, size: int | None = None) -> dict:
        """Render the current state into the crops: colour, shading, valid mask, fragments (memoised)."""
        size = int(size or self.resolution)

        def compute() -> dict:
            state = scene.state
            crops, photo, valid = self.target.level(size, state.device)
            cam = scene.camera_vertices()
            frags = rasterize(cam, self.triangles, crop_intrinsics(crops, scene.K()), (size, size),
                              backend=self.backend)
            normals = pixel_normals(frags, cam)
            if state.displacement is not None:
                normals = self.detail_normals(scene, frags, normals)
            shading = sh_shading(normals, state.sh)
            albedo_v = self.albedo.per_vertex(state.albedo, self.model.num_vertices)
            colour = interpolate(frags, albedo_v) * shading
            skin = frags.mask & self.face_triangles[frags.triangle_id.clamp(min=0)]
            out = {"colour": colour, "shading": shading, "mask": skin & valid, "photo": photo, "frags": frags,
                   "crops": crops, "valid": valid}
            if self.domain == "fixed":  # the antialiased skin coverage: gradients at the outline
                out["coverage"] = antialias(skin[..., None].to(colour.dtype), frags)[..., 0].clamp(0.0, 1.0)
            if self.background_cost:  # the front of the face's coverage, against the photo's background
                front = frags.mask & self.front_triangles[frags.triangle_id.clamp(min=0)]
                out["front"] = antialias(front[..., None].to(colour.dtype), frags)[..., 0].clamp(0.0, 1.0)
                out["background"] = self.target.background_level(size, state.device, self.background_below_brows)
            return out

        return scene.memo(("photometric", size), compute)

    def detail_normals(self, scene: Scene, frags, normals: torch.Tensor) -> torch.Tensor:
        """Per-pixel normals of the surface displaced along its normals by the state's UV displacement map."""
        topo = self.model.topology
        uvs = torch.as_tensor(topo.uvs, device=normals.device)
        triangle_uvs = torch.as_tensor(topo.triangle_uvs, device=normals.device)
        uv = interpolate(frags, uvs, triangle_uvs)
        return bump.displaced_normals(scene.camera_vertices(), frags, normals, uv, scene.state.displacement,
                                      self.face_triangles, triangle_uvs, uvs)

    def residuals(self, r: dict) -> torch.Tensor:
        """Colour residuals (F, S, S, 3) in units of sigma (high-passed in detail stages)."""
        if self.band:  # detail stages: compare only what a blur of ``band`` pixels does not keep
            m = r["mask"][..., None].to(r["colour"].dtype)
            return (high_pass(r["colour"], m, self.band) - high_pass(r["photo"], m, self.band)) / self.sigma
        return (r["colour"] - r["photo"]) / self.sigma

    def pixel_costs(self, r: dict) -> torch.Tensor:
        """Robust cost (F, S, S) of each rendered pixel's residual."""
        res = self.residuals(r)
        if self.loss == "geman_mcclure":  # one cost per pixel, on the colour difference's length
            return geman_mcclure(res.norm(dim=-1), self.delta)
        return pseudo_huber(res, self.delta).sum(-1)

    def __call__(self, scene: Scene) -> torch.Tensor:
        r = self.render(scene)
        cost = self.pixel_costs(r)
        if self.domain == "fixed":
            domain = r["valid"].to(cost.dtype)
            kappa = self.uncovered_cost * self.delta**2
            per_pixel = (r["coverage"] * cost + (1.0 - r["coverage"]) * kappa) * domain
            if self.background_cost:  # the face's outline may not spill over what the photo shows as background
                per_pixel = per_pixel + self.background_cost * self.delta**2 * r["front"] * r["background"]
            return per_pixel.flatten(1).sum(1) / domain.flatten(1).sum(1).clamp(min=1)
        mask = r["mask"]
        count = mask.flatten(1).sum(1).clamp(min=1)
        return (cost * mask).flatten(1).sum(1) / count

    @torch.no_grad()
    def outliers(self, scene: Scene) -> torch.Tensor:
        """(F, S, S) bool at the current resolution: domain pixels the fit does not explain (residual beyond
        the robust knee, or not covered by the rendered face)."""
        r = self.render(scene)
        res = self.residuals(r).norm(dim=-1)
        covered = r["coverage"] > 0.5 if "coverage" in r else r["mask"]
        return r["valid"] & ((res > self.delta) | ~covered)

    @torch.no_grad()
    def diagnostics(self, scene: Scene) -> dict[str, list[float]]:
        r = self.render(scene)
        res = self.residuals(r).norm(dim=-1)
        out_mask = self.outliers(scene)
        valid = r["valid"]
        residual = frame_medians(res, r["mask"], empty=float("nan"))
        fraction = (out_mask.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)).tolist()
        sigma = torch.as_tensor(self.sigma).flatten().expand(res.shape[0])
        return {"residual_median_sigma": residual, "outlier_fraction": [float(v) for v in fraction],
                "noise_sigma": [float(v) for v in sigma]}

    @torch.no_grad()
    def qa_images(self, scene: Scene) -> dict[str, np.ndarray]:
        """The first frame's outlier mask over its crop (uint8, 255 = not explained by the fit)."""
        return {"photometric_outliers": (self.outliers(scene)[0].cpu().numpy() * 255).astype(np.uint8)}


def frame_medians(values: torch.Tensor, mask: torch.Tensor, empty: float) -> list[float]:
    """Each frame's median of ``values`` (F, S, S) over its ``mask`` pixels; ``empty`` where it has none."""
    return [float(values[f][mask[f]].median()) if bool(mask[f].any()) else empty for f in range(values.shape[0])]


@torch.no_grad()
def initial_lighting(term: PhotometricTerm, scene: Scene, size: int = 64, rounds: int = 3, level: float = 0.5,
                     min_pixels: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form start for (albedo coefficients (K, 3), SH (F, 9, 3)): alternate a white-light SH least-squares
    solve on the rendered normals and a uniform per-channel albedo (the skin's colour goes to the albedo; the
    albedo-lighting scale is fixed by the albedo's mean ``level``: the light takes the scale)."""
    state = scene.state
    crops, photo, valid = term.target.level(size, state.device)
    cam = scene.camera_vertices()
    frags = rasterize(cam, term.triangles, crop_intrinsics(crops, scene.K()), (size, size), backend=term.backend)
    normals = pixel_normals(frags, cam)
    mask = frags.mask & term.face_triangles[frags.triangle_id.clamp(min=0)] & valid
    albedo = torch.full((3,), level, device=state.device)
    frames = photo.shape[0]
    sh = torch.zeros(frames, 9, 3, device=state.device)
    fitted = torch.tensor([bool(mask[f].sum() >= min_pixels) for f in range(frames)], device=state.device)
    for f in torch.nonzero(~fitted).flatten().tolist():  # too little skin in view: a uniform light
        sh[f, 0] = UNIFORM_LIGHT_SH0
    if not bool(fitted.any()):
        return term.albedo.constant(albedo), sh
    for _ in range(rounds):
        # a white light (one SH vector for all channels) given the albedo: the light cannot take the skin's
        # colour, which stays with the albedo
        for f in torch.nonzero(fitted).flatten().tolist():
            m = mask[f]
            basis = sh_basis(normals[f][m], lambertian=True)  # (N, 9)
            target = (photo[f][m] / albedo).mean(-1)
            reg = LIGHT_SOLVE_RIDGE * torch.eye(9, device=basis.device)
            sh[f] = torch.linalg.solve(basis.T @ basis + reg, basis.T @ target)[:, None]
        # albedo per channel given the light: least squares over all pixels
        num = torch.zeros(3, device=state.device)
        den = torch.zeros(3, device=state.device)
        for f in torch.nonzero(fitted).flatten().tolist():
            m = mask[f]
            shade = sh_basis(normals[f][m], lambertian=True) @ sh[f]  # (N, 3)
            num += (shade * photo[f][m]).sum(0)
            den += (shade * shade).sum(0)
        new_albedo = (num / den.clamp(min=1e-9)).clamp(*ALBEDO_RANGE)
        scale = new_albedo.mean() / level
        albedo = new_albedo / scale
        sh[fitted] = sh[fitted] * scale  # the product (the render) is unchanged
    return term.albedo.constant(albedo), sh


def build(ctx: TermContext) -> PhotometricTerm:
    cfg = ctx.section("photometric")
    basis = albedo_basis(ctx.model, int(ctx.section("albedo")["modes"]))
    return PhotometricTerm(ctx.model, photo_targets(ctx), basis, sigma=float(cfg["sigma"]),
                           robust_delta=float(cfg["robust_delta"]), backend=str(ctx.preset["renderer"]),
                           init_resolution=int(cfg["init_resolution"]), init_rounds=int(cfg["init_rounds"]),
                           init_albedo_level=float(cfg["init_albedo_level"]),
                           init_min_pixels=int(cfg["init_min_pixels"]), domain=str(cfg["domain"]),
                           loss=str(cfg["loss"]), uncovered_cost=float(cfg["uncovered_cost"]),
                           background_cost=float(cfg["background_cost"]),
                           background_region=str(cfg["background_region"]),
                           background_below_brows=bool(cfg["background_below_brows"]), noise=str(cfg["noise"]))


SPEC = register(TermSpec(
    "photometric", build, needs=("photo",),
    settings={
        "sigma": Setting("float", "photo noise, linear intensity", positive=True),
        "noise": Setting("str", "fixed: sigma; estimated: each frame's noise is the larger of sigma and the robust "
                         "scale of its residuals after the lighting start", choices=NOISE_MODES),
        "robust_delta": Setting("float", "pseudo-Huber knee in units of sigma", positive=True),
        "init_resolution": Setting("int", "render size of the closed-form lighting start", low=8),
        "init_rounds": Setting("int", "albedo / light alternations of the lighting start", low=1),
        "init_albedo_level": Setting("float", "mean albedo the lighting start fixes (the light takes the scale)",
                                     low=0.05, high=1.0),
        "init_min_pixels": Setting("int", "fewer compared pixels than this: uniform light", low=1),
        "domain": Setting("str", "fixed: segmented skin with coverage costs; overlap: rendered and segmented",
                          choices=("fixed", "overlap")),
        "loss": Setting("str", "robust loss of the residual", choices=("geman_mcclure", "pseudo_huber")),
        "uncovered_cost": Setting("float", "cost of an uncovered domain pixel, in units of the loss's "
                                  "saturation", low=0),
        "background_cost": Setting("float", "cost of a background pixel (read by GrabCut) covered by the front "
                                   "of the face, in units of the loss's saturation; 0: off", low=0),
        "background_region": Setting("str", "model region whose outline is held against the background",
                                     choices=BACKGROUND_REGIONS),
        "background_below_brows": Setting("bool", "hold the outline against the background below the brow line "
                                          "only (a fringe over the forehead is not background)"),
    },
    stage_settings={
        "resolution": Setting("int", "render size of the crop in this stage", low=8),
        "detail_band": Setting("float", "> 0: compare only detail finer than this blur (pixels)", low=0),
    },
    doc="Lambertian render under SH light against the photo"))
