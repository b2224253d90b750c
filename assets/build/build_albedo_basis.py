"""A low-dimensional albedo basis for ICT (which has no albedo model): mesh-Laplacian harmonics.

Reproducible: ``python assets/build/build_albedo_basis.py`` (a few seconds).

The eigenvectors of the cotangent Laplacian of the face-and-head surface with the smallest eigenvalues are the
smoothest functions on the mesh (the mesh's "Fourier" basis). An albedo of K such modes per colour channel
varies slowly over the face, so it cannot copy shading detail: lighting and fine geometry must explain that.
The eigenvalues give a smoothness prior (sum_k lambda_k c_k^2), and a mirror map (each vertex's partner
across x = 0) gives a symmetry prior. Writes ``assets/ict_albedo_basis.npz``:
``vertices`` (N,) ids of the face-and-head vertices, ``basis`` (N, K) float16 (mass-orthonormal),
``eigenvalues`` (K,), ``mirror`` (N,) index into ``vertices`` of each vertex's mirror partner.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from fitter.model import load_ict
from fitter.model.albedo import laplacian_basis


def main() -> None:
    here = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=80)
    parser.add_argument("--out", type=Path, default=here / "assets" / "ict_albedo_basis.npz")
    args = parser.parse_args()
    model = load_ict()
    topo = model.topology
    region = topo.region("face_and_head")
    verts = np.flatnonzero(region)
    local = np.full(topo.num_vertices, -1)
    local[verts] = np.arange(len(verts))
    tris = local[topo.triangles[topo.triangles_in(region)]]
    pts = model.mean.numpy()[verts].astype(np.float64)
    vecs, vals = laplacian_basis(pts, tris, args.modes)
    mirrored = pts * np.array([-1.0, 1.0, 1.0])
    dist, mirror = cKDTree(pts).query(mirrored)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, vertices=verts.astype(np.int32), basis=vecs.astype(np.float16),
                        eigenvalues=vals.astype(np.float32), mirror=mirror.astype(np.int32))
    print(json.dumps({"vertices": int(len(verts)), "modes": args.modes, "eigenvalue_range": [float(vals[0]), float(vals[-1])],
                      "mirror_distance_cm_max": float(dist.max()), "bytes": args.out.stat().st_size}, indent=1))


if __name__ == "__main__":
    main()
