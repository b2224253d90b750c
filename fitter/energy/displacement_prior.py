"""Displacement prior: keeps the UV displacement map sparse (most skin carries no wrinkle), line-like, smooth
and free of low frequencies (broad shape belongs to the identity and expression coefficients)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as nnf

from ..common.filters import gaussian_blur
from ..common.settings import Setting
from ..metrics import MM_PER_CM
from ..scene import Scene
from .base import REFERENCE_SIZE, Term, TermContext, TermSpec, register, spread_over_frames

LINE_RESPONSE_SIZE = 256  # the line response is smooth along the lines: computed at this size, then upsampled


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


class DisplacementPrior(Term):
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
            depth = (-d[0, 0] * MM_PER_CM).clamp(min=0)
            size = depth.shape[-1]
            scale = size / REFERENCE_SIZE
            small = depth
            if size > LINE_RESPONSE_SIZE:
                small = nnf.avg_pool2d(depth[None, None], size // LINE_RESPONSE_SIZE)[0, 0]
                scale = LINE_RESPONSE_SIZE / REFERENCE_SIZE
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
            low = gaussian_blur(d[None, :, :, None], self.low_sigma * size / REFERENCE_SIZE)
            e = e + self.low_frequency * (low**2).mean()
        return spread_over_frames(e, scene.state.num_frames)


def build(ctx: TermContext) -> DisplacementPrior:
    return DisplacementPrior(**{k: float(v) for k, v in ctx.section("displacement_prior").items()})


SPEC = register(TermSpec(
    "displacement_prior", build,
    settings={
        "smoothness": Setting("float", "squared texel differences (mm, reference grid)", low=0),
        "magnitude": Setting("float", "squared displacement (mm)", low=0),
        "sparsity": Setting("float", "smooth L1 of the displacement (mm)", low=0),
        "sparsity_eps": Setting("float", "smoothing of the L1 (mm)", positive=True),
        "raised": Setting("float", "extra sparsity weight of raised texels (skin detail is mostly creases)",
                          low=0),
        "low_frequency": Setting("float", "squared displacement blurred by low_sigma texels", low=0),
        "low_sigma": Setting("float", "blur of the low-frequency penalty (texels, reference grid)",
                             positive=True),
        "line": Setting("float", "> 0: groove depth (mm) that counts as a line (reweighted sparsity)", low=0),
        "line_length": Setting("float", "line detector sigma along the groove (texels)", positive=True),
        "line_width": Setting("float", "line detector sigma across the groove (texels)", positive=True),
        "line_floor": Setting("float", "sparsity weight left on a clear line", low=0, high=1),
    },
    doc="sparse, smooth, detail-only displacement map"))

