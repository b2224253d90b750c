"""Albedo for models without an albedo model: a smooth basis of mesh-Laplacian harmonics.

albedo(v) = sum_k basis[v, k] * coeffs[k, c] per colour channel c, over the basis' vertices. The basis is
normalised so each mode has unit RMS over the basis vertices (unweighted; ICT's face is evenly meshed, so
this is close to the area-weighted RMS); coefficient 0 (the constant mode) is
the mean albedo itself. ICT's basis ships as an asset (assets/build/build_albedo_basis.py); for other models
:func:`laplacian_basis` computes one.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..assets import asset_path
from .morphable import MorphableModel


@dataclass
class AlbedoBasis:
    vertices: torch.Tensor  # (N,) int64 model vertex ids the albedo covers
    basis: torch.Tensor  # (N, K) float32, unit RMS over the vertices per mode; mode 0 is constant 1
    eigenvalues: torch.Tensor  # (K,) Laplacian eigenvalues (smoothness prior weights), 1/cm^2
    mirror: torch.Tensor  # (N,) index into ``vertices`` of each vertex's mirror partner

    @property
    def modes(self) -> int:
        return self.basis.shape[1]

    def per_vertex(self, coeffs: torch.Tensor, num_vertices: int, fill: float = 0.5) -> torch.Tensor:
        """(K, 3) coefficients -> (V, 3) albedo for every model vertex (``fill`` outside the basis)."""
        out = torch.full((num_vertices, coeffs.shape[-1]), fill, dtype=coeffs.dtype, device=coeffs.device)
        return out.index_copy(0, self.vertices, self.basis @ coeffs)

    def constant(self, colour: torch.Tensor) -> torch.Tensor:
        """Coefficients (K, 3) of a uniform albedo."""
        c = torch.zeros(self.modes, colour.shape[-1], dtype=colour.dtype, device=colour.device)
        c[0] = colour
        return c


def cotan_laplacian(points: np.ndarray, triangles: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Cotangent stiffness matrix L (positive semi-definite) and lumped (diagonal) mass matrix M."""
    n = len(points)
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, o = triangles[:, k], triangles[:, (k + 1) % 3], triangles[:, (k + 2) % 3]
        u, v = points[i] - points[o], points[j] - points[o]
        cot = (u * v).sum(1) / np.maximum(np.linalg.norm(np.cross(u, v), axis=1), 1e-12)
        rows += [i, j]
        cols += [j, i]
        vals += [-0.5 * cot, -0.5 * cot]
    off = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    L = off - sp.diags(np.asarray(off.sum(1)).ravel())
    tri_area = 0.5 * np.linalg.norm(np.cross(points[triangles[:, 1]] - points[triangles[:, 0]],
                                              points[triangles[:, 2]] - points[triangles[:, 0]]), axis=1)
    area = np.zeros(n)
    for k in range(3):
        np.add.at(area, triangles[:, k], tri_area / 3.0)
    return L.tocsr(), sp.diags(np.maximum(area, 1e-12)).tocsr()


def laplacian_basis(points: np.ndarray, triangles: np.ndarray, modes: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``modes`` smoothest Laplacian eigenvectors (N, K), mass-orthonormal, deterministic signs."""
    import scipy.sparse.linalg as spla

    L, M = cotan_laplacian(points, triangles)
    vals, vecs = spla.eigsh(L, k=modes, M=M, sigma=-1e-6, which="LM")
    order = np.argsort(vals)
    vals, vecs = np.clip(vals[order], 0, None), vecs[:, order]
    vecs *= np.sign(vecs[np.abs(vecs).argmax(0), np.arange(vecs.shape[1])])
    return vecs, vals


@functools.lru_cache(maxsize=4)
def albedo_basis(model: MorphableModel, modes: int = 80) -> AlbedoBasis:
    """The model's albedo basis: ICT's shipped asset, or one computed from the mean shape."""
    from scipy.spatial import cKDTree

    topo = model.topology
    region = topo.regions.get("face_and_head", topo.regions.get("face"))
    data = None
    if model.name == "ict-face-light":

        with np.load(asset_path("ict_albedo_basis.npz")) as d:
            data = {k: d[k] for k in d.files}
    mean = model.mean.detach().cpu().numpy().astype(np.float64)
    if data is None:
        verts = np.flatnonzero(region)
        local = np.full(topo.num_vertices, -1)
        local[verts] = np.arange(len(verts))
        vecs, vals = laplacian_basis(mean[verts], local[topo.triangles[topo.triangles_in(region)]], modes)
        _, mirror = cKDTree(mean[verts]).query(mean[verts] * [-1.0, 1.0, 1.0])
        data = {"vertices": verts, "basis": vecs, "eigenvalues": vals, "mirror": mirror}
    basis = data["basis"][:, :modes].astype(np.float64)
    rms = np.sqrt((basis**2).mean(0))  # unit RMS per mode (mode 0 becomes the constant 1)
    basis = basis / rms
    basis[:, 0] = np.abs(basis[:, 0])
    dev = model.device
    return AlbedoBasis(
        vertices=torch.as_tensor(data["vertices"].astype(np.int64), device=dev),
        basis=torch.as_tensor(basis, dtype=torch.float32, device=dev),
        eigenvalues=torch.as_tensor(data["eigenvalues"][:modes], dtype=torch.float32, device=dev),
        mirror=torch.as_tensor(data["mirror"].astype(np.int64), device=dev),
    )
