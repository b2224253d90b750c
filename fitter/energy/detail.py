"""Fine detail as a UV displacement map: shading normals of the displaced surface, the detail term, its priors.

The map d(u, v) (model units, along the coarse surface normal) covers the face's UV tile. For each rendered
pixel the displaced surface p' = p + d n has tangents dp'/du = T_u + d_u n and dp'/dv = T_v + d_v n
(bump mapping: the small d * dn/du term is dropped), where T_u, T_v are the coarse triangle's UV tangents
and d_u, d_v the map's derivatives (central differences of bilinear samples, so gradients reach every texel
a pixel touches). The shading normal is their cross product, with the flat T_u x T_v replaced by the smooth
interpolated normal so that a zero map shades exactly like the coarse mesh.

:class:`DetailTerm` fits the map to the photo's fine shading only (see docs/detail.md): the coarse fit's
render and the photo are compared as high-passed log intensities, on eroded skin away from part boundaries,
silhouettes and grazing views, without pixels whose residual at zero displacement is too large to be a
wrinkle's shading (albedo edges, misaligned features), through a Cauchy loss. :class:`DisplacementPrior`
keeps the map sparse (most skin has no wrinkle), smooth and free of low frequencies.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf

from ..common.filters import gaussian_blur, high_pass, morphology as _morphology
from ..render import bump
from ..render.bump import map_slopes, tilted_normals, triangle_tangents as _triangle_tangents
from ..scene import Scene

GEOMETRY = ("identity", "expression", "rotation", "translation", "log_focal", "principal", "albedo")


def displaced_normals(scene: Scene, frags, normals: torch.Tensor, uv: torch.Tensor, displacement: torch.Tensor,
                      face_triangles: torch.Tensor) -> torch.Tensor:
    """Shading normals (F, H, W, 3) of the displaced surface on face pixels; ``normals`` elsewhere."""
    topo = scene.model.topology
    dev = normals.device
    return bump.displaced_normals(scene.camera_vertices(), frags, normals, uv, displacement, face_triangles,
                                  torch.as_tensor(topo.triangle_uvs, device=dev), torch.as_tensor(topo.uvs, device=dev))


def _log_shaded(normals: torch.Tensor, albedo: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """log of the summed channels of albedo (N, 3) * SH shading of normals (N, 3) under sh (N, 9, 3)."""
    from ..render import sh_basis

    shade = torch.bmm(sh_basis(normals, lambertian=True)[:, None, :], sh.to(normals.dtype))[:, 0]
    return torch.log((albedo * shade).sum(-1).clamp(min=1e-4))


def cauchy(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Redescending robust loss: x**2 for |x| << delta, delta**2 log(1 + (x / delta)**2) beyond; a residual far
    beyond the knee (an albedo edge, a misplaced feature) pulls with a force that falls like 1 / |x|."""
    return delta * delta * torch.log1p((x / delta) ** 2)


def photo_footprint(scale: float, crop_size: int, size: int) -> float:
    """Gaussian sigma (pixels of a ``size`` render of the crop) of the photo's own blur: each photo pixel
    averages the scene over its area (a box of one image pixel), the crop resamples it bilinearly (a tent;
    warpAffine pre-blurs by half a crop pixel when it shrinks, ``scale`` = crop pixels per image pixel), and
    the pyramid level averages crop pixels (a box of crop_size / size)."""
    var = scale * scale / 12.0 + (scale * scale / 6.0 if scale >= 1 else 0.25 + 1.0 / 6.0)  # crop pixels^2
    r = size / crop_size
    return float(np.sqrt(var * r * r + (1.0 / 12.0 if r < 1 else 0.0)))


class DetailTerm:
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

    def set_resolution(self, size: int) -> None:
        self.resolution = int(size)

    def _scale(self, size: int) -> float:
        """Pixel lengths are given at a 512 crop; they scale with the rendered size."""
        return size / 512.0

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
        from ..render import interpolate_packed, pixel_normals, rasterize

        state = scene.state
        size = self.resolution
        cached = self._cached(state, size)
        if cached is not None:
            return cached
        dev = state.device
        topo = self.model.topology
        crop, photo, valid = self.target.level(size, dev)
        cam = scene.camera_vertices().detach()
        frags = rasterize(cam, self.triangles, crop.K(scene.K().detach()), (size, size), backend=self.backend)
        normals = pixel_normals(frags, cam, packed=True)
        face = self.face_triangles[frags.pix_triangle]
        # compared pixels: segmented skin on rendered face, eroded, facing the camera
        skin = torch.zeros(frags.frames * size * size, dtype=torch.bool, device=dev)
        skin[frags.pix_index[face]] = True
        skin = skin.reshape(frags.frames, size, size) & valid
        radius = int(round(self.erode * self._scale(size)))
        mask = _morphology(skin, radius)
        points = interpolate_packed(frags, cam)
        facing = -(normals * nnf.normalize(points, dim=-1)).sum(-1)
        keep = mask.reshape(-1)[frags.pix_index] & (facing > self.grazing) & face
        idx = frags.pix_index[keep]
        tri, frame, normals = frags.pix_triangle[keep], frags.pix_frame[keep], normals[keep]
        triangle_uvs = torch.as_tensor(topo.triangle_uvs, device=dev)
        uvs = torch.as_tensor(topo.uvs, device=dev, dtype=cam.dtype)
        tu, tv = _triangle_tangents(cam, frags.triangles, tri, frame, triangle_uvs, uvs)
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
        bad = _morphology(bad, radius, dilate=True)
        inlier = ~bad.reshape(-1)[idx]
        m_in = self._dense(idx[inlier], torch.ones_like(log_photo[inlier]), frags.frames, size)
        data = {"index": idx[inlier], "uv": uv[inlier], "tu": tu[inlier], "tv": tv[inlier],
                "normals": normals[inlier], "albedo": albedo[inlier], "frame": frame[inlier],
                "hp_photo": high_pass(self._dense(idx[inlier], log_photo[inlier], frags.frames, size), m_in,
                                      sigma).reshape(-1)[idx[inlier]],
                "mask": m_in, "size": size, "frames": frags.frames, "band": sigma,
                "footprint": self.footprint * photo_footprint(self.target.crop.scale, self.target.crop.size, size),
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
            m = data["mask"]
            log_r = gaussian_blur(log_r * m, data["footprint"]) / gaussian_blur(m, data["footprint"]).clamp(min=1e-6) * m
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


def line_response(depth: torch.Tensor, length: float, width: float, orientations: int = 8) -> torch.Tensor:
    """How line-like the grooves of a map are: the largest, over ``orientations`` directions, of the average of
    ``depth`` (S, S) (>= 0) under an elongated Gaussian (sigmas ``length`` along and ``width`` across, texels).
    A groove along some direction keeps its full depth; an isolated pit of the same depth is diluted by the
    length (about pit size / (2.5 length))."""
    radius = max(1, int(np.ceil(3 * length)))
    y, x = torch.meshgrid(torch.arange(-radius, radius + 1, dtype=depth.dtype, device=depth.device),
                          torch.arange(-radius, radius + 1, dtype=depth.dtype, device=depth.device), indexing="ij")
    kernels = []
    for k in range(orientations):
        th = np.pi * k / orientations
        along = x * np.cos(th) + y * np.sin(th)
        across = -x * np.sin(th) + y * np.cos(th)
        kern = torch.exp(-0.5 * (along / length) ** 2 - 0.5 * (across / width) ** 2)
        kernels.append(kern / kern.sum())
    out = nnf.conv2d(depth[None, None], torch.stack(kernels)[:, None], padding=radius)
    return out[0].amax(0)


class DisplacementPrior:
    """Priors on the displacement map d (mm), means over the map's texels.

    - ``sparsity``: smooth L1, sqrt(d^2 + eps^2) - eps (``sparsity_eps`` mm): most skin carries no wrinkle, and
      an L1 prior keeps it at zero where the photo gives no clear evidence; raised texels (d > 0) pay
      ``sparsity + raised``: skin detail is mostly creases (grooves), and the sign prior settles the
      shading's ambiguity between a groove and the ridge beside it;
    - ``line``: with ``line`` > 0 (mm), the sparsity weight of each texel is re-set at the start of every
      round (:meth:`update`) from the current map: texels on a line-like groove (:func:`line_response`
      about ``line`` mm deep or more, sigmas ``line_length`` x ``line_width`` texels at 512) pay down to
      ``line_floor`` of it, isolated pits (noise fitted as detail) the full weight. A first round on a zero
      map finds candidates with uniform weights; the next ones keep the grooves and drop the pits
      (a reweighted L1 that prefers elongated support);
    - ``smoothness``: squared texel differences (on a 512 grid, whatever the map's size);
    - ``magnitude``: squared displacement;
    - ``low_frequency``: the squared map blurred by ``low_sigma`` texels (at 512): broad shape belongs to the
      identity and expression coefficients, not to the detail.
    """

    name = "displacement_prior"

    def __init__(self, smoothness: float = 1.0, magnitude: float = 0.1, low_frequency: float = 0.0,
                 low_sigma: float = 16.0, sparsity: float = 0.0, sparsity_eps: float = 0.01, raised: float = 0.0,
                 line: float = 0.0, line_length: float = 6.0, line_width: float = 1.0,
                 line_floor: float = 0.05) -> None:
        self.smoothness = smoothness
        self.magnitude = magnitude
        self.low_frequency = low_frequency
        self.low_sigma = low_sigma
        self.sparsity = sparsity
        self.sparsity_eps = sparsity_eps
        self.raised = raised
        self.line = line
        self.line_length = line_length
        self.line_width = line_width
        self.line_floor = line_floor
        self.texel_weight: torch.Tensor | None = None  # (S, S) sparsity weight per texel (None: uniform)

    def update(self, scene: Scene) -> None:
        """Re-set the per-texel sparsity weights from the current map (called between rounds)."""
        d = scene.state.displacement
        if not self.line or d is None:
            self.texel_weight = None
            return
        with torch.no_grad():
            depth = (-d[0, 0] * 10.0).clamp(min=0)
            size = depth.shape[-1]
            scale = size / 512.0
            small = depth
            if size > 256:  # the response is smooth along the lines: compute it at 256 and upsample
                small = nnf.avg_pool2d(depth[None, None], size // 256)[0, 0]
                scale = 0.5
            r = line_response(small, max(self.line_length * scale, 1.0), max(self.line_width * scale, 0.5))
            if r.shape != depth.shape:
                r = nnf.interpolate(r[None, None], size=depth.shape, mode="bilinear", align_corners=False)[0, 0]
            self.texel_weight = self.line_floor + (1.0 - self.line_floor) / (1.0 + (r / self.line) ** 2)

    def __call__(self, scene: Scene) -> torch.Tensor:
        d = scene.state.displacement[0, 0] * 10.0  # mm
        size = d.shape[-1]
        # differences scaled to a 512 grid so the weight means the same at every pyramid level
        gx = (d[:, 1:] - d[:, :-1]) * (size / 512.0)
        gy = (d[1:, :] - d[:-1, :]) * (size / 512.0)
        e = self.smoothness * ((gx**2).mean() + (gy**2).mean()) + self.magnitude * (d**2).mean()
        if self.sparsity or self.raised:
            eps = self.sparsity_eps
            pen = torch.sqrt(d**2 + eps * eps) - eps
            w = self.sparsity
            if self.texel_weight is not None:
                tw = self.texel_weight
                if tw.shape != d.shape:
                    tw = nnf.interpolate(tw[None, None], size=d.shape, mode="bilinear", align_corners=False)[0, 0]
                w = w * tw
            w = torch.where(d > 0, w + self.raised, w * torch.ones_like(d))
            e = e + (w * pen).mean()
        if self.low_frequency:
            low = gaussian_blur(d[None, :, :, None], self.low_sigma * size / 512.0)
            e = e + self.low_frequency * (low**2).mean()
        frames = scene.state.num_frames
        return e.expand(frames) / frames
