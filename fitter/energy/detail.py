"""The detail term: a UV displacement map d(u, v) (model units, along the coarse surface normal, on the face's
UV tile) fitted to the photo's fine shading, with bump-mapped normals (fitter.render.bump).

:class:`DetailTerm` fits the map to the photo's fine shading only (see docs/detail.md): the coarse fit's
render and the photo are compared as high-passed log intensities, on eroded skin away from part boundaries,
silhouettes and grazing views, without pixels whose residual at zero displacement is too large to be a
wrinkle's shading (albedo edges, misaligned features), through a Cauchy loss (fitter.energy.displacement_prior keeps the map
sparse, smooth and free of low frequencies).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf

from ..common.filters import high_pass, masked_blur, morphology
from ..common.settings import Setting
from ..model.albedo import albedo_basis
from ..render import interpolate_packed, pixel_normals, rasterize, sh_basis
from ..render.bump import map_slopes, tilted_normals, triangle_tangents
from ..scene import Scene
from .base import REFERENCE_SIZE, Term, TermContext, TermSpec, cauchy, register
from .photo_target import crop_intrinsics, face_triangle_mask, photo_targets

GEOMETRY = ("identity", "expression", "rotation", "translation", "log_focal", "principal", "albedo")


def _log_shaded(normals: torch.Tensor, albedo: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """log of the summed channels of albedo (N, 3) * SH shading of normals (N, 3) under sh (N, 9, 3)."""
    shade = torch.bmm(sh_basis(normals, lambertian=True)[:, None, :], sh.to(normals.dtype))[:, 0]
    return torch.log((albedo * shade).sum(-1).clamp(min=1e-4))


def photo_footprint(scale: float, crop_size: int, size: int) -> float:
    """Gaussian sigma (pixels of a ``size`` render of the crop) of the photo's own blur: each photo pixel
    averages the scene over its area (a box of one image pixel), the crop resamples it bilinearly (a tent;
    warpAffine pre-blurs by half a crop pixel when it shrinks, ``scale`` = crop pixels per image pixel), and
    the pyramid level averages crop pixels (a box of crop_size / size)."""
    var = scale * scale / 12.0 + (scale * scale / 6.0 if scale >= 1 else 0.25 + 1.0 / 6.0)  # crop pixels^2
    r = size / crop_size
    return float(np.sqrt(var * r * r + (1.0 / 12.0 if r < 1 else 0.0)))


class DetailTerm(Term):
    """Fine shading of the photo explained by the displacement map (the coarse fit, albedo and light held).

    Per pixel of the crop (rendered at the stage's ``resolution``), the residual is
    ``r = HP(log I) - HP(log R_d)``: photo I against the render R_d = albedo * shading(displaced normal), both
    as log intensities (sum of the channels) minus their mask-normalised Gaussian blur of ``band`` pixels (at
    a 512 crop), so smooth albedo, light and shape errors cancel. Compared pixels: rendered face skin that
    is segmented skin (as for the photometric term), eroded by ``erode`` pixels (part and silhouette
    boundaries, where segmentation and the coarse fit are least exact), facing the camera by more than
    ``grazing`` (cosine), and whose residual at zero displacement stays under ``outlier`` (in log intensity:
    the shading of a wrinkle changes the intensity by a few per cent; brows, lips, nostrils and misplaced
    features by far more). The energy is the mean Cauchy loss of r / ``sigma`` with knee ``robust_delta``.

    The coarse render (fragments, tangents, normals, albedo, masks) is computed once per geometry: a detail
    stage that frees only the map (and the light) renders it once.
    """

    name = "detail"

    def __init__(self, model, target, albedo, face_triangles: torch.Tensor, sigma: float = 0.01,
                 robust_delta: float = 2.0, band: float = 2.0, erode: float = 3.0, outlier: float = 0.1,
                 grazing: float = 0.3, footprint: float = 1.0, structure: float = 0.0, resolution: int = 512,
                 backend: str = "auto") -> None:
        self.model = model
        self.target = target
        self.albedo = albedo
        self.face_triangles = face_triangles
        self.sigma = sigma
        self.delta = robust_delta
        self.band = band
        self.erode = erode
        self.outlier = outlier
        self.grazing = grazing
        self.footprint = footprint
        self.structure = structure
        self.resolution = resolution
        self.backend = backend
        topo = model.topology
        self.triangles = torch.as_tensor(topo.triangles, device=model.device)
        self._cache: tuple | None = None

    def configure(self, stage: dict) -> None:
        if "resolution" in stage:
            self.resolution = int(stage["resolution"])

    def _scale(self, size: int) -> float:
        """Pixel lengths are given at the reference crop size; they scale with the rendered size."""
        return size / REFERENCE_SIZE

    @staticmethod
    def _geometry(state) -> list[torch.Tensor]:
        return [getattr(state, n).detach().clone() for n in GEOMETRY]

    def _cached(self, state, size: int) -> dict | None:
        if self._cache is None or self._cache[0] != size:
            return None
        same = all(torch.equal(a, b) for a, b in zip(self._cache[1], (getattr(state, n) for n in GEOMETRY)))
        return self._cache[2] if same else None

    @torch.no_grad()
    def coarse(self, scene: Scene) -> dict:
        """The coarse fit's packed render on the compared pixels (memoised per geometry and size)."""
        state = scene.state
        size = self.resolution
        cached = self._cached(state, size)
        if cached is not None:
            return cached
        dev = state.device
        topo = self.model.topology
        crops, photo, valid = self.target.level(size, dev)
        cam = scene.camera_vertices().detach()
        frags = rasterize(cam, self.triangles, crop_intrinsics(crops, scene.K().detach()), (size, size),
                          backend=self.backend)
        normals = pixel_normals(frags, cam, packed=True)
        face = self.face_triangles[frags.pix_triangle]
        # compared pixels: segmented skin on rendered face, eroded, facing the camera
        skin = torch.zeros(frags.frames * size * size, dtype=torch.bool, device=dev)
        skin[frags.pix_index[face]] = True
        skin = skin.reshape(frags.frames, size, size) & valid
        radius = int(round(self.erode * self._scale(size)))
        mask = morphology(skin, radius)
        points = interpolate_packed(frags, cam)
        facing = -(normals * nnf.normalize(points, dim=-1)).sum(-1)
        keep = mask.reshape(-1)[frags.pix_index] & (facing > self.grazing) & face
        idx = frags.pix_index[keep]
        tri, frame, normals = frags.pix_triangle[keep], frags.pix_frame[keep], normals[keep]
        triangle_uvs = torch.as_tensor(topo.triangle_uvs, device=dev)
        uvs = torch.as_tensor(topo.uvs, device=dev, dtype=cam.dtype)
        tu, tv = triangle_tangents(cam, frags.triangles, tri, frame, triangle_uvs, uvs)
        corners = uvs[triangle_uvs[tri]]
        uv = torch.bmm(frags.pix_bary[keep][:, None, :].to(cam.dtype), corners)[:, 0]
        albedo_v = self.albedo.per_vertex(state.albedo.detach(), self.model.num_vertices)
        albedo = torch.bmm(frags.pix_bary[keep][:, None, :].to(cam.dtype), albedo_v[frags.triangles[tri]])[:, 0]
        log_photo = torch.log(photo.reshape(-1, 3)[idx].sum(-1).clamp(min=1e-4))
        # the residual at zero displacement, to drop pixels no wrinkle can explain
        log_render0 = _log_shaded(normals, albedo, state.sh.detach()[frame])
        sigma = self.band * self._scale(size)
        m = self._dense(idx, torch.ones_like(log_photo), frags.frames, size)
        hp_photo = high_pass(self._dense(idx, log_photo, frags.frames, size), m, sigma)
        hp_render0 = high_pass(self._dense(idx, log_render0, frags.frames, size), m, sigma)
        r0 = (hp_render0 - hp_photo).reshape(-1)[idx]
        # outliers and their surroundings (the edge of a brow spreads over the blur's width)
        bad = self._dense(idx, (r0.abs() >= self.outlier).to(r0.dtype), frags.frames, size)[..., 0] > 0
        bad = morphology(bad, radius, dilate=True)
        inlier = ~bad.reshape(-1)[idx]
        m_in = self._dense(idx[inlier], torch.ones_like(log_photo[inlier]), frags.frames, size)
        data = {"index": idx[inlier], "uv": uv[inlier], "tu": tu[inlier], "tv": tv[inlier],
                "normals": normals[inlier], "albedo": albedo[inlier], "frame": frame[inlier],
                "hp_photo": high_pass(self._dense(idx[inlier], log_photo[inlier], frags.frames, size), m_in,
                                      sigma).reshape(-1)[idx[inlier]],
                "mask": m_in, "size": size, "frames": frags.frames, "band": sigma,
                # the photo's own blur, from the first frame's crop (detail maps are fitted to single photos)
                "footprint": self.footprint * photo_footprint(self.target.frames[0].crop.scale,
                                                              self.target.crop_size, size),
                "dropped": int((~inlier).sum())}
        # log-intensity noise grows as the light falls (the photo's noise is about constant in linear units):
        # weigh each residual by the pixel's brightness, and measure the noise (sigma <= 0: from the data)
        bright = log_render0[inlier].exp()
        data["weight"] = bright / bright.median().clamp(min=1e-6)
        if self.structure > 0:  # where the coarse shading itself has fine structure (eyelids, nose wings, lip
            # contours), a small misalignment of the coarse fit leaves residuals no wrinkle explains
            hp0 = hp_render0.reshape(-1)[idx][inlier]
            data["weight"] = data["weight"] / (1.0 + (hp0 / self.structure) ** 2)
        noise = 1.4826 * (r0[inlier] * data["weight"]).abs().median() if len(bright) else torch.tensor(1.0)
        data["sigma"] = float(noise) if self.sigma <= 0 else self.sigma
        self._cache = (size, self._geometry(state), data)
        return data

    @staticmethod
    def _dense(index: torch.Tensor, values: torch.Tensor, frames: int, size: int) -> torch.Tensor:
        """Packed values (N,) at flat pixel ``index`` -> a dense (F, S, S, 1) image, 0 elsewhere."""
        out = values.new_zeros(frames * size * size)
        return out.index_put((index,), values).reshape(frames, size, size, 1)

    def log_render(self, scene: Scene, data: dict) -> torch.Tensor:
        """log(sum over channels of albedo * shading(displaced normal)) at the compared pixels (N,)."""
        state = scene.state
        du, dv = map_slopes(state.displacement, data["uv"][None, :, None, :])
        n = tilted_normals(data["normals"], data["tu"], data["tv"], du[0, :, 0], dv[0, :, 0])
        return _log_shaded(n, data["albedo"], state.sh[data["frame"]])

    def residuals(self, scene: Scene) -> tuple[torch.Tensor, dict]:
        """(r (N,) high-passed log residuals at the compared pixels, the coarse data)."""

        data = self.coarse(scene)
        idx = data["index"]
        log_r = self._dense(idx, self.log_render(scene, data), data["frames"], data["size"])
        if data["footprint"] > 0:  # the photo's pixels average the scene; the render samples it
            log_r = masked_blur(log_r, data["mask"], data["footprint"]) * data["mask"]
        hp = high_pass(log_r, data["mask"], data["band"]).reshape(-1)[idx]
        return hp - data["hp_photo"], data

    def __call__(self, scene: Scene) -> torch.Tensor:
        r, data = self.residuals(scene)
        frames = data["frames"]
        if r.numel() == 0:
            return r.new_zeros(frames)
        loss = cauchy(r * data["weight"] / data["sigma"], self.delta)
        frame = data["frame"]
        total = loss.new_zeros(frames).index_add(0, frame, loss)
        count = loss.new_zeros(frames).index_add(0, frame, torch.ones_like(loss)).clamp(min=1)
        return total / count


def build(ctx: TermContext) -> DetailTerm:
    cfg = ctx.section("detail")
    basis = albedo_basis(ctx.model, int(ctx.section("albedo")["modes"]))
    return DetailTerm(ctx.model, photo_targets(ctx), basis, face_triangle_mask(ctx.model),
                      backend=str(ctx.preset["renderer"]), **{k: float(v) for k, v in cfg.items()})


SPEC = register(TermSpec(
    "detail", build, needs=("photo",),
    settings={
        "sigma": Setting("float", "log-intensity noise; <= 0 measures it from the residuals"),
        "robust_delta": Setting("float", "Cauchy knee in units of sigma", positive=True),
        "band": Setting("float", "high-pass blur (pixels at the reference crop size)", positive=True),
        "erode": Setting("float", "skin mask erosion (pixels at the reference size)", low=0),
        "outlier": Setting("float", "zero-map residual (log intensity) beyond which a pixel is dropped",
                           positive=True),
        "grazing": Setting("float", "minimum facing cosine of a compared pixel", low=-1, high=1),
        "footprint": Setting("float", "scale of the photo's pixel blur applied to the render", low=0),
        "structure": Setting("float", "> 0: down-weight pixels where the coarse shading has fine structure", low=0),
    },
    stage_settings={"resolution": Setting("int", "render size of the crop in this stage", low=8)},
    doc="fine shading of the photo explained by the displacement map"))

