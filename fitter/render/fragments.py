"""What the rasterizer returns: per-pixel triangle ids, barycentrics and depth, dense and packed."""
from __future__ import annotations

import torch


class Fragments:
    """Rasterization of F frames into (H, W) images.

    Public fields (dense, one entry per pixel):

    - ``triangle_id`` (F, H, W) int64: index into the ``triangles`` given to :func:`rasterize`, -1 where no
      triangle covers the pixel centre (background).
    - ``mask`` (F, H, W) bool: ``triangle_id >= 0``.
    - ``bary`` (F, H, W, 3): perspective-correct barycentrics of the pixel centre in its triangle, in the
      triangle's vertex order; differentiable w.r.t. the vertices; 0 at background.
    - ``depth`` (F, H, W): camera-space z of the surface at the pixel centre (same units as the vertices);
      differentiable; **0 at background** (not inf, so that products with zero weights stay finite).

    Packed fields (one entry per covered pixel, N in all; this is what :func:`interpolate` uses, so work
    and gradients scale with the covered area, not the image):

    - ``pix_index`` (N,) int64 flat index into (F, H, W); ``pix_triangle`` (N,) int64;
      ``pix_bary`` (N, 3); ``pix_depth`` (N,).

    Also kept: ``verts_screen`` (F, V, 3) = (u, v, z) projected vertices in pixels (differentiable),
    ``triangles`` (T, 3), ``image_size`` (H, W), ``backend`` (the backend that decided visibility),
    ``cull_backfaces`` and ``near``.

    ``bary`` and ``depth`` are scattered from the packed values the first time they are read.
    """

    def __init__(
        self,
        triangle_id: torch.Tensor,
        pix_index: torch.Tensor,
        pix_triangle: torch.Tensor,
        pix_bary: torch.Tensor,
        pix_depth: torch.Tensor,
        verts_screen: torch.Tensor,
        triangles: torch.Tensor,
        image_size: tuple[int, int],
        backend: str = "builtin",
        cull_backfaces: bool = False,
        near: float = 1e-3,
    ) -> None:
        self.triangle_id = triangle_id
        self.pix_index = pix_index
        self.pix_triangle = pix_triangle
        self.pix_bary = pix_bary
        self.pix_depth = pix_depth
        self.verts_screen = verts_screen
        self.triangles = triangles
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.backend = backend
        self.cull_backfaces = bool(cull_backfaces)
        self.near = float(near)
        self._bary = None
        self._depth = None
        self._crossings = None  # silhouette crossings, computed by fitter.render.silhouette on demand

    # -- sizes -------------------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self.triangle_id.shape[0]

    @property
    def height(self) -> int:
        return self.image_size[0]

    @property
    def width(self) -> int:
        return self.image_size[1]

    @property
    def device(self) -> torch.device:
        return self.triangle_id.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pix_bary.dtype

    @property
    def num_covered(self) -> int:
        return int(self.pix_index.shape[0])

    @property
    def pix_frame(self) -> torch.Tensor:
        """(N,) frame of each covered pixel."""
        return torch.div(self.pix_index, self.height * self.width, rounding_mode="floor")

    # -- dense views -------------------------------------------------------------------------------------
    @property
    def mask(self) -> torch.Tensor:
        return self.triangle_id >= 0

    @property
    def bary(self) -> torch.Tensor:
        if self._bary is None:
            self._bary = self.scatter(self.pix_bary)
        return self._bary

    @property
    def depth(self) -> torch.Tensor:
        if self._depth is None:
            self._depth = self.scatter(self.pix_depth[:, None])[..., 0]
        return self._depth

    def scatter(self, values: torch.Tensor, background: float | torch.Tensor = 0.0) -> torch.Tensor:
        """Packed per-covered-pixel values (N, C) -> dense (F, H, W, C) with ``background`` elsewhere.

        background: a number, a (C,) colour, or an image (F | 1, H, W, C) (e.g. the photo, to composite
        the render over it; gradients then reach both).
        """
        F, (H, W) = self.frames, self.image_size
        C = values.shape[-1]
        if isinstance(background, torch.Tensor) or background != 0.0:
            bg = torch.as_tensor(background, dtype=values.dtype, device=values.device)
            if bg.dim() == 4:
                out = bg.expand(F, H, W, C).reshape(F * H * W, C)
            else:
                out = bg.expand(F * H * W, C)
            out = out.contiguous()
        else:
            out = values.new_zeros(F * H * W, C)
        return out.index_copy(0, self.pix_index, values).reshape(F, H, W, C)

    def detach(self) -> "Fragments":
        """The same fragments cut from the autograd graph."""
        return Fragments(
            self.triangle_id,
            self.pix_index,
            self.pix_triangle,
            self.pix_bary.detach(),
            self.pix_depth.detach(),
            self.verts_screen.detach(),
            self.triangles,
            self.image_size,
            self.backend,
            self.cull_backfaces,
            self.near,
        )

    def __repr__(self) -> str:
        return (
            f"Fragments(frames={self.frames}, image_size={self.image_size}, covered={self.num_covered}, "
            f"triangles={self.triangles.shape[0]}, backend={self.backend!r}, device={self.device})"
        )
