"""Linear subdivision of a mesh's polygons and its displacement by a UV map: the geometry of the detail mesh
(``mesh_detail.obj``, written by :mod:`fitter.export.detail_mesh`) and of the synthetic scenes' wrinkles.

Subdivision is *linear* (it stays on the coarse surface; no Catmull-Clark smoothing): per level each quad
(a, b, c, d) becomes four quads through its edge midpoints and its centre, each triangle four triangles
through its edge midpoints; winding is kept. Positions, UVs and normals of new vertices are the midpoints /
centre averages of their parents, so after L levels every new vertex is the bilinear (quads) or linear
(triangles) interpolation of the coarse polygon at a dyadic parameter. UVs are subdivided per UV index:
an edge on a UV seam (two UV pairs for one vertex pair) gets one new vertex with one new UV per side.
Normals are the coarse vertex normals given by the caller (facefit's exports pass the area-weighted
:func:`fitter.render.vertex_normals`) interpolated linearly and renormalised at the end.

Displacement: every vertex of a subdivided polygon of the face material (``M_Face``) moves along its
interpolated normal by d(uv), d sampled bilinearly from the displacement map (cm, texel centres at
u = (c + 0.5) / W, v = 1 - (r + 0.5) / H, the map dilated beyond its islands first). A vertex with several
face UVs (a seam inside the face tile) takes the mean of its samples.

``region="face"`` (default): only the polygons of the region are subdivided; the rest of the head keeps its
coarse polygons. The vertices that subdivision puts on edges shared with a coarse polygon are not sampled:
they are placed on the straight edge between its two (displaced) end vertices and inserted into the coarse
neighbour, which becomes an n-gon — so the output is watertight, without T-junctions, and the coarse part
is exactly mesh.obj's (except that the shared border vertices are displaced with the face). ``region=None``
(or ``"all"``) subdivides everything and displaces only the face material.

What needs the renderer is passed in, not computed here (the model layer sits below it): the coarse vertex
normals and the map's valid texels (its UV islands, e.g. ``fitter.export.uv_layout.uv_mask``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.arrays import one_frame_vertices, scalar_map, texel_mask, unit_vectors
from ..common.filters import dilate_map
from ..common.uv_lookup import sample_map
from .topology import FACE_MATERIAL, Topology


@dataclass
class DetailMesh:
    """Arrays of a subdivided (and displaced) mesh. Polygons are (P, K) rows padded with -1 (triangles,
    quads, and n-gons where a coarse polygon borders the subdivided region)."""

    vertices: np.ndarray  # (V', 3) float64, displaced
    base_vertices: np.ndarray  # (V', 3) on the coarse (linearly subdivided) surface
    normals: np.ndarray | None  # (V', 3) unit interpolated coarse normals (the displacement directions)
    uvs: np.ndarray  # (U', 2)
    polygons: np.ndarray  # (P', K) int64
    polygon_uvs: np.ndarray  # (P', K) int64
    polygon_material: np.ndarray  # (P',) int
    polygon_origin: np.ndarray  # (P',) index of the coarse polygon each polygon comes from
    subdivided: np.ndarray  # (P',) bool: the polygon comes from a subdivided coarse polygon
    displaced: np.ndarray  # (V',) bool: the vertex was moved by d(uv) n
    displacement: np.ndarray  # (V',) cm applied along the normal (0 where not displaced)
    on_border: np.ndarray  # (V',) bool: vertex on an edge shared with a coarse polygon (interpolated)
    border: np.ndarray  # (B, 4): border vertex, coarse end vertices a and b, t (it sits at (1 - t) a + t b)
    levels: int
    num_coarse_vertices: int

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)


def _region_polygons(topology: Topology, region) -> np.ndarray:
    polys = topology.polygons
    if region is None or (isinstance(region, str) and region == "all"):
        return np.ones(len(polys), bool)
    if isinstance(region, str) and region not in topology.regions and region == "face":
        # No "face" region (a user model): the face material's polygons, else those in UV tile 0.
        if FACE_MATERIAL in topology.material_names:
            return topology.polygon_material == topology.material_names.index(FACE_MATERIAL)
        u = np.where(topology.polygon_uvs >= 0, topology.uvs[np.maximum(topology.polygon_uvs, 0)][..., 0], 0.5)
        return ((u >= 0) & (u <= 1)).all(1)
    mask = topology.region(region) if isinstance(region, str) else np.asarray(region, bool)
    if mask.shape == (len(polys),):  # a polygon mask
        return mask
    ok = np.where(polys >= 0, mask[np.maximum(polys, 0)], True)
    return ok.all(1)


def _edge_keys(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(a, b) * n + np.maximum(a, b)


def _subdivide_once(state: dict, sub: np.ndarray) -> tuple[dict, np.ndarray, tuple]:
    """One level of linear subdivision of the polygons flagged in ``sub``; returns the new state, the new
    ``sub`` flags and this level's vertex edge map (sorted keys, midpoint vertex ids, the key base)."""
    pos, nrm, uv = state["pos"], state["nrm"], state["uv"]
    polys, puvs, pmat = state["polys"], state["puvs"], state["pmat"]
    Vn, Un = len(pos), len(uv)
    S, SU = polys[sub], puvs[sub]
    nS = len(S)
    n = np.where(S[:, 3] >= 0, 4, 3)
    k = np.arange(4)
    valid = k[None] < n[:, None]
    nxt = (k[None] + 1) % n[:, None]
    rows = np.arange(nS)[:, None]
    ea, eb = S, S[rows, nxt]
    ua, ub = SU, SU[rows, nxt]

    vkey = _edge_keys(ea, eb, Vn)
    ekeys, inv = np.unique(vkey[valid], return_inverse=True)
    edge_v = np.full((nS, 4), -1, np.int64)
    edge_v[valid] = Vn + inv
    E = len(ekeys)
    ukey = _edge_keys(ua, ub, Un)
    ukeys, uinv = np.unique(ukey[valid], return_inverse=True)
    edge_u = np.full((nS, 4), -1, np.int64)
    edge_u[valid] = Un + uinv
    EU = len(ukeys)

    quad = n == 4
    Q = int(quad.sum())
    centre_v = np.full(nS, -1, np.int64)
    centre_v[quad] = Vn + E + np.arange(Q)
    centre_u = np.full(nS, -1, np.int64)
    centre_u[quad] = Un + EU + np.arange(Q)

    a, b = ekeys // Vn, ekeys % Vn
    qa = S[quad]
    new_pos = np.concatenate([pos, 0.5 * (pos[a] + pos[b]), pos[qa].mean(1)])
    new_nrm = np.concatenate([nrm, 0.5 * (nrm[a] + nrm[b]), nrm[qa].mean(1)])
    au, bu = ukeys // Un, ukeys % Un
    new_uv = np.concatenate([uv, 0.5 * (uv[au] + uv[bu]), uv[SU[quad]].mean(1)])

    def children(c, m, centre):
        """Child polygons (rows of 4, -1 padded) from corners c, edge midpoints m (nS, 4), centres (nS,)."""
        cq, mq, zq = c[quad], m[quad], centre[quad]
        q_children = np.stack([
            np.stack([cq[:, 0], mq[:, 0], zq, mq[:, 3]], 1),
            np.stack([mq[:, 0], cq[:, 1], mq[:, 1], zq], 1),
            np.stack([zq, mq[:, 1], cq[:, 2], mq[:, 2]], 1),
            np.stack([mq[:, 3], zq, mq[:, 2], cq[:, 3]], 1),
        ], 1)  # (Q, 4, 4)
        ct, mt = c[~quad], m[~quad]
        pad = np.full(len(ct), -1, np.int64)
        t_children = np.stack([
            np.stack([ct[:, 0], mt[:, 0], mt[:, 2], pad], 1),
            np.stack([mt[:, 0], ct[:, 1], mt[:, 1], pad], 1),
            np.stack([mt[:, 2], mt[:, 1], ct[:, 2], pad], 1),
            np.stack([mt[:, 0], mt[:, 1], mt[:, 2], pad], 1),
        ], 1)  # (T, 4, 4)
        out = np.empty((nS, 4, 4), np.int64)
        out[quad] = q_children
        out[~quad] = t_children
        return out.reshape(-1, 4)

    child_p = children(S.astype(np.int64), edge_v, centre_v)
    child_u = children(SU.astype(np.int64), edge_u, centre_u)
    child_m = np.repeat(pmat[sub], 4)
    keep = ~sub
    new_state = {
        "pos": new_pos, "nrm": new_nrm, "uv": new_uv,
        "polys": np.concatenate([polys[keep], child_p]),
        "puvs": np.concatenate([puvs[keep], child_u]),
        "pmat": np.concatenate([pmat[keep], child_m]),
        "origin": np.concatenate([state["origin"][keep], np.repeat(state["origin"][sub], 4)]),
    }
    new_sub = np.concatenate([np.zeros(int(keep.sum()), bool), np.ones(len(child_p), bool)])
    return new_state, new_sub, (ekeys, Vn + np.arange(E), Vn)


def subdivide(vertices, topology: Topology, levels: int = 2, region="face", normals=None) -> DetailMesh:
    """Linear subdivision of ``region``'s polygons (see the module notes), without displacement.

    normals: the coarse vertex normals (V, 3), interpolated like the positions and renormalised into
    ``DetailMesh.normals``; None leaves ``normals`` None."""
    if not 0 <= int(levels) <= 4:
        raise ValueError("levels must be between 0 and 4 (each level multiplies the polygons by 4)")
    levels = int(levels)
    V = one_frame_vertices(vertices)
    if len(V) != topology.num_vertices:
        raise ValueError(f"{len(V)} vertices for a topology of {topology.num_vertices}")
    n0 = np.zeros_like(V) if normals is None else unit_vectors(np.asarray(normals, np.float64).reshape(-1, 3))
    polys = np.asarray(topology.polygons, np.int64)
    puvs = np.asarray(topology.polygon_uvs, np.int64)
    pmat = np.asarray(topology.polygon_material, np.int64)
    sub0 = _region_polygons(topology, region)
    state = {"pos": V.copy(), "nrm": n0.copy(), "uv": np.asarray(topology.uvs, np.float64),
             "polys": polys, "puvs": puvs, "pmat": pmat, "origin": np.arange(len(polys))}

    # Coarse edges shared by a subdivided and a kept polygon: their subdivision vertices hang on the edge.
    def poly_edges(p):
        n = (p >= 0).sum(1)
        k = np.arange(p.shape[1])
        nxt = (k[None] + 1) % n[:, None]
        valid = k[None] < n[:, None]
        return p, p[np.arange(len(p))[:, None], nxt], valid

    a_s, b_s, ok_s = poly_edges(polys[sub0])
    sub_keys = np.unique(_edge_keys(a_s, b_s, len(V))[ok_s])
    a_k, b_k, ok_k = poly_edges(polys[~sub0])
    keep_keys = _edge_keys(a_k, b_k, len(V))
    hanging = np.intersect1d(sub_keys, keep_keys[ok_k]) if levels else np.zeros(0, np.int64)
    chains = np.stack([hanging // len(V), hanging % len(V)], 1)  # (Hn, 2), from min to max vertex

    sub = sub0
    for _ in range(levels):
        state, sub, (ekeys, mids, base) = _subdivide_once(state, sub)
        if len(chains):
            key = _edge_keys(chains[:, :-1], chains[:, 1:], base)
            at = np.minimum(np.searchsorted(ekeys, key), len(ekeys) - 1)
            if not np.array_equal(ekeys[at], key):
                raise RuntimeError("subdivision lost a border edge (non-manifold input?)")
            new = np.empty((len(chains), 2 * chains.shape[1] - 1), np.int64)
            new[:, 0::2] = chains
            new[:, 1::2] = mids[at]
            chains = new

    pos, nrm, uv = state["pos"], state["nrm"], state["uv"]
    polys, puvs, pmat, origin = state["polys"], state["puvs"], state["pmat"], state["origin"]
    border = np.zeros((0, 4))
    if len(chains):
        polys, puvs, uv = _stitch(polys, puvs, uv, sub, chains)
        inner = chains.shape[1] - 2
        t = np.arange(1, inner + 1) / (inner + 1)
        border = np.stack([chains[:, 1:-1].ravel(), np.repeat(chains[:, 0], inner),
                           np.repeat(chains[:, -1], inner), np.tile(t, len(chains))], 1)
    on_border = np.zeros(len(pos), bool)
    on_border[border[:, 0].astype(np.int64)] = True
    return DetailMesh(
        vertices=pos.copy(), base_vertices=pos, normals=None if normals is None else unit_vectors(nrm), uvs=uv,
        polygons=polys, polygon_uvs=puvs, polygon_material=pmat, polygon_origin=origin,
        subdivided=np.asarray(sub, bool),
        displaced=np.zeros(len(pos), bool), displacement=np.zeros(len(pos)), on_border=on_border,
        border=border, levels=levels, num_coarse_vertices=len(V),
    )


def _stitch(polys, puvs, uv, sub, chains):
    """Insert the hanging vertices of ``chains`` into the kept (coarse) polygons that own those edges."""
    n_mid = chains.shape[1] - 2
    lookup = {(int(c[0]), int(c[-1])): c for c in chains}
    kept = np.flatnonzero(~sub)
    new_polys, new_uvs, extra_uv = [], [], []
    next_uv = len(uv)
    t = np.arange(1, n_mid + 1) / (n_mid + 1)
    touched = []
    for i in kept:
        p, pu = polys[i], puvs[i]
        n = int((p >= 0).sum())
        corners, cuvs, changed = [], [], False
        for k in range(n):
            a, b = int(p[k]), int(p[(k + 1) % n])
            corners.append(a)
            cuvs.append(int(pu[k]))
            chain = lookup.get((min(a, b), max(a, b)))
            if chain is None:
                continue
            inner = chain[1:-1] if a < b else chain[-2:0:-1]
            ua, ub = uv[pu[k]], uv[pu[(k + 1) % n]]
            new_uv = ua[None] + t[:, None] * (ub - ua)[None]
            corners += [int(x) for x in inner]
            cuvs += list(range(next_uv, next_uv + n_mid))
            extra_uv.append(new_uv)
            next_uv += n_mid
            changed = True
        if changed:
            touched.append(i)
            new_polys.append(corners)
            new_uvs.append(cuvs)
    if not touched:
        return polys, puvs, uv
    width = max(polys.shape[1], max(len(c) for c in new_polys))
    out_p = np.full((len(polys), width), -1, np.int64)
    out_u = np.full((len(polys), width), -1, np.int64)
    out_p[:, :polys.shape[1]] = polys
    out_u[:, :puvs.shape[1]] = puvs
    for i, c, cu in zip(touched, new_polys, new_uvs):
        out_p[i, :] = -1
        out_u[i, :] = -1
        out_p[i, :len(c)] = c
        out_u[i, :len(cu)] = cu
    return out_p, out_u, np.concatenate([uv] + extra_uv)


def detail_mesh_arrays(vertices, topology: Topology, disp_cm, levels: int = 2, region="face", mask=None,
                       material: str | None = FACE_MATERIAL, normals=None, dilate_px: int = 8) -> DetailMesh:
    """Subdivide (:func:`subdivide`) and displace: p + d(uv) n for the vertices of subdivided polygons of
    ``material`` (see the module notes). disp_cm: (H, W) cm over the face tile (row 0 at v = 1), or None
    for no displacement; normals: the coarse vertex normals (V, 3), required with a displacement; mask: the
    map's valid texels (None: all), dilated ``dilate_px`` texels before sampling as in displacement.exr."""
    if disp_cm is not None and normals is None:
        raise ValueError("displacing needs the coarse vertex normals: pass normals=(V, 3), e.g. from "
                         "fitter.render.vertex_normals")
    mesh = subdivide(vertices, topology, levels, region, normals)
    if disp_cm is None:
        return mesh
    d = scalar_map(disp_cm)
    if material and material in topology.material_names:
        mat_id = topology.material_names.index(material)
        face_poly = mesh.subdivided & (mesh.polygon_material == mat_id)
    else:
        face_poly = mesh.subdivided.copy()
    m = texel_mask(mask, d.shape)
    d = dilate_map(np.where(m, d, 0.0), m, dilate_px, fill=0.0)

    P, PU = mesh.polygons[face_poly], mesh.polygon_uvs[face_poly]
    ok = P >= 0
    cv, cu = P[ok], PU[ok]
    pairs = np.unique(np.stack([cv, cu], 1), axis=0)  # each (vertex, uv) once
    samples = sample_map(d, mesh.uvs[pairs[:, 1]])
    V = mesh.num_vertices
    total = np.bincount(pairs[:, 0], samples, V)
    count = np.bincount(pairs[:, 0], None, V)
    displaced = (count > 0) & ~mesh.on_border
    value = np.where(displaced, total / np.maximum(count, 1), 0.0)
    verts = mesh.base_vertices + value[:, None] * mesh.normals
    if mesh.on_border.any():
        _place_border_vertices(verts, mesh)
    mesh.vertices = verts
    mesh.displaced = displaced
    mesh.displacement = value
    return mesh


def _place_border_vertices(verts: np.ndarray, mesh: DetailMesh) -> None:
    """Put every hanging vertex on the straight edge between its (displaced) coarse end vertices."""
    h, a, b = (mesh.border[:, k].astype(np.int64) for k in range(3))
    t = mesh.border[:, 3:4]
    verts[h] = (1 - t) * verts[a] + t * verts[b]
