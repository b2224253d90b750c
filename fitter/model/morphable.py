"""A linear morphable model as a small batched layer: coefficients -> vertices (frames x V x 3)."""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch

from .topology import SurfaceEmbedding, Topology

# Bases gathered for a vertex subset are kept (least recently used first out) up to this size: a term evaluates
# the same subset every optimiser step (PRDL's surface points within a round, the landmark embedding), and
# gathering ~5,000 vertices' columns of both bases cost more than the matrix product it feeds.
SUBSET_CACHE_BYTES = 64 * 2**20


class MorphableModel:
    """vertices = mean + identity @ identity_basis + expression @ expression_basis.

    Vertices are in the model's own frame and units (``units``, ``axes``); the conversion to the OpenCV
    camera frame happens in exactly one place, :func:`fitter.camera.model_to_camera`.
    """

    def __init__(
        self,
        mean: np.ndarray,
        identity_basis: np.ndarray,
        expression_basis: np.ndarray,
        topology: Topology,
        *,
        identity_names: list[str] | None = None,
        expression_names: list[str] | None = None,
        units: str = "cm",
        name: str = "model",
        device: str | torch.device = "cpu",
        expression_bounds: tuple[float, float] | None = None,
    ) -> None:
        n_vertices = mean.shape[0]
        assert identity_basis.shape[1:] == (n_vertices, 3) and expression_basis.shape[1:] == (n_vertices, 3)
        self.name = name
        self.units = units
        self.topology = topology
        self.identity_names = list(identity_names or [f"id{i:03d}" for i in range(len(identity_basis))])
        self.expression_names = list(expression_names or [f"exp{i:03d}" for i in range(len(expression_basis))])
        self.device = torch.device(device)
        # Blendshape models (ICT) have expression weights in a range (0..1); PCA expressions (FLAME, BFM) none.
        self.expression_bounds = expression_bounds
        self.warnings: list[str] = []  # what a loader had to assume or change (shown to users)
        self.source: dict = {"format": name}
        self.extras: dict = {}  # format data kept for later use (e.g. FLAME skinning arrays)
        self.mean = torch.as_tensor(np.asarray(mean, np.float32), device=self.device)
        # Stored as (K, V*3) so a batch of coefficients is one matmul.
        self.identity_basis = torch.as_tensor(
            np.asarray(identity_basis, np.float32).reshape(len(identity_basis), n_vertices * 3), device=self.device
        )
        self.expression_basis = torch.as_tensor(
            np.asarray(expression_basis, np.float32).reshape(len(expression_basis), n_vertices * 3), device=self.device
        )
        self._subset_cache: OrderedDict = OrderedDict()  # see SUBSET_CACHE_BYTES and _subset_bases
        self._subset_owner = None

    # -- sizes -------------------------------------------------------------------------------------------
    @property
    def has_uvs(self) -> bool:
        return self.topology.has_uvs

    @property
    def num_vertices(self) -> int:
        return self.mean.shape[0]

    @property
    def num_identity(self) -> int:
        return self.identity_basis.shape[0]

    @property
    def num_expression(self) -> int:
        return self.expression_basis.shape[0]

    def to(self, device: str | torch.device) -> "MorphableModel":
        """Move the bases to ``device`` (in place); returns self for chaining."""
        self.device = torch.device(device)
        self.mean = self.mean.to(self.device)
        self.identity_basis = self.identity_basis.to(self.device)
        self.expression_basis = self.expression_basis.to(self.device)
        return self

    # -- evaluation --------------------------------------------------------------------------------------
    def vertices(
        self,
        identity: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        frames: int | None = None,
    ) -> torch.Tensor:
        """Vertices (F, V, 3) for identity (K_id,) or (F, K_id) and expression (F, K_exp).

        A 1-D identity is shared by every frame (one subject, many frames). Missing coefficients are zero.
        """
        return self._evaluate(identity, expression, frames, None)

    def vertices_subset(
        self,
        index: torch.Tensor,
        identity: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        frames: int | None = None,
    ) -> torch.Tensor:
        """Only the vertices in ``index`` (F, len(index), 3); cheap when fitting a few landmarks."""
        return self._evaluate(identity, expression, frames, index)

    def embedded_points(self, vertices: torch.Tensor, embedding: SurfaceEmbedding) -> torch.Tensor:
        """Surface points (F, N, 3) of an embedding, from full vertices (F, V, 3)."""
        tris = torch.as_tensor(self.topology.triangles[embedding.triangles], device=vertices.device)
        bary = torch.as_tensor(embedding.barycentrics, dtype=vertices.dtype, device=vertices.device)
        return (vertices[:, tris] * bary[None, :, :, None]).sum(dim=2)

    def _evaluate(self, identity, expression, frames, index) -> torch.Tensor:
        frames = frames or _infer_frames(identity, expression)
        if index is None:
            mean, id_basis, ex_basis = self.mean, self.identity_basis, self.expression_basis
        else:
            mean, id_basis, ex_basis = self._subset_bases(torch.as_tensor(index, device=self.device))
        out = mean.reshape(1, -1).expand(frames, -1)
        if identity is not None and identity.numel() > 0:  # a model may have 0 modes (e.g. BFM 2009 expression)
            identity = identity.reshape(-1, identity.shape[-1])
            out = out + (identity @ id_basis).expand(frames, -1)
        if expression is not None and expression.numel() > 0:
            out = out + expression.reshape(frames, -1) @ ex_basis
        return out.reshape(frames, -1, 3)

    def _subset_bases(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mean and both bases at ``index``'s vertices, gathered once per subset (the same values, so the same
        vertices to the bit). Kept while the model's bases are the same tensors at the same version: a model moved
        with :meth:`to`, given new bases or edited in place gathers afresh."""
        bases = (self.mean, self.identity_basis, self.expression_basis)
        if any(b.requires_grad for b in bases):  # a basis being learned: never keep a gather of it
            return self._gather(index)
        owner = getattr(self, "_subset_owner", None)
        if owner is None or any(a is not b or v != b._version for a, v, b in zip(owner[0], owner[1], bases)):
            self._subset_cache = OrderedDict()
            self._subset_owner = (bases, tuple(b._version for b in bases))
        cache = self._subset_cache
        key = (str(index.device), index.cpu().numpy().tobytes())
        hit = cache.pop(key, None)
        if hit is None:
            hit = self._gather(index)
        size = _nbytes(hit)
        if size <= SUBSET_CACHE_BYTES:
            held = sum(_nbytes(v) for v in cache.values())
            while cache and size + held > SUBSET_CACHE_BYTES:
                held -= _nbytes(cache.popitem(last=False)[1])
            cache[key] = hit
        return hit

    def _gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cols = (index[:, None] * 3 + torch.arange(3, device=self.device)).reshape(-1)
        return self.mean[index], self.identity_basis[:, cols], self.expression_basis[:, cols]

    def __getstate__(self) -> dict:
        """Pickled (e.g. to a Ray worker) without the gathered subsets."""
        state = dict(self.__dict__)
        state.pop("_subset_cache", None)
        state.pop("_subset_owner", None)
        return state


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def neutral_face(model: MorphableModel, identity: torch.Tensor | np.ndarray, region: np.ndarray) -> np.ndarray:
    """The identity's face region at zero expression (N, 3), model units: what identities are compared by.
    ``identity``: a tensor, or an array (e.g. from params.npz), taken as float32."""
    if not isinstance(identity, torch.Tensor):
        identity = torch.as_tensor(np.asarray(identity), dtype=torch.float32)
    with torch.no_grad():
        zero = torch.zeros(1, model.num_expression, device=identity.device)
        return model.vertices(identity, zero)[0].cpu().numpy()[region]


def _infer_frames(identity, expression) -> int:
    if expression is not None:
        return math.prod(expression.shape[:-1])
    if identity is not None and identity.dim() == 2:
        return identity.shape[0]
    return 1
