"""The renderer on the shipped ICT model: landmarks land where they should, UV maps reproduce the mesh."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.camera import intrinsics, model_to_camera, project
from fitter.render import (
    interpolate,
    pixel_normals,
    rasterize,
    render_uv,
    sample_texture,
    shade_grey,
    uv_fragments,
    vertex_normals,
)


def frontal(model, size=512, focal=1000.0, depth=60.0):
    verts = model_to_camera(model.mean[None], torch.zeros(1, 3), torch.tensor([[0.0, 0.0, depth]]))
    K = intrinsics(torch.tensor([focal]), torch.tensor([[size / 2.0, size / 2.0]]))
    return verts, K


def test_projected_ict_landmarks_land_on_their_rendered_pixels(ict):
    """Render the face region frontally (60 cm, f = 1000 px, 512 x 512: 0.06 cm per pixel) and look at the
    pixels where the 68 landmark vertices project."""
    model = ict
    topo = model.topology
    verts, K = frontal(model)
    tris_np = topo.triangles[topo.triangles_in(topo.region("face"))]
    frags = rasterize(verts, torch.as_tensor(tris_np), K, (512, 512), backend="builtin")
    lm = torch.as_tensor(topo.landmarks68)
    uv = project(verts[:, lm], K)[0]
    cols, rows = uv[:, 0].floor().long(), uv[:, 1].floor().long()
    points = interpolate(frags, verts)[0]
    tri_ids = frags.triangle_id[0]
    pixel_cm = 60.0 / 1000.0
    ring = {v: set(tris_np[np.any(tris_np == v, axis=1)].ravel().tolist()) for v in lm.tolist()}
    best = []
    for k, v in enumerate(lm.tolist()):
        r, c = int(rows[k]), int(cols[k])
        patch = points[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3)
        ids = tri_ids[r - 1 : r + 2, c - 1 : c + 2].reshape(-1)
        dist = (patch - verts[0, v]).norm(dim=-1).masked_fill(ids < 0, float("inf"))
        j = int(dist.argmin())
        best.append(float(dist[j]))
        if 3 <= k <= 13 or k >= 17:
            # the triangle seen next to the landmark touches the landmark vertex's one-ring
            assert set(tris_np[int(ids[j])].tolist()) & ring[v], k
        if 17 <= k < 60 and bool(frags.mask[0, r, c]):
            # nothing hides an inner landmark: the surface seen at its pixel is not nearer than the vertex
            assert float(frags.depth[0, r, c]) > float(verts[0, v, 2]) - 0.1, k
    best = np.array(best)
    inner = np.r_[3:14, 17:60]  # chin, brows, nose, eyes, outer lips
    assert best[inner].max() < 1.7 * pixel_cm, best[inner].max()
    assert best[60:].max() < 2.5 * pixel_cm  # inner lips curl into the mouth
    # the contour (0-2, 14-16) lies on the side of the face and may be hidden by the cheek in a frontal view
    # (the reason for Topology.contour_substitutes): not asserted.


def test_ict_render_is_sane_and_culling_keeps_the_visible_face(ict):
    model = ict
    topo = model.topology
    verts, K = frontal(model, size=256, focal=500.0)
    tris = torch.as_tensor(topo.triangles)
    frags = rasterize(verts, tris, K, 256)
    culled = rasterize(verts, tris, K, 256, cull_backfaces=True)
    # a closed-ish head seen from the front: culling changes almost nothing that is visible
    same = (frags.triangle_id == culled.triangle_id).float().mean()
    assert float(same) > 0.99
    normals = pixel_normals(frags, verts)
    assert torch.isfinite(normals).all()
    # normals of visible surface face the camera (negative z in the camera frame), nearly everywhere
    facing = (normals[..., 2] < 0)[frags.mask].float().mean()
    assert float(facing) > 0.97
    grey = shade_grey(frags, verts)
    assert grey.shape == (1, 256, 256, 1) and float(grey.min()) >= 0 and float(grey.max()) <= 1
    assert float(grey[frags.mask].mean()) > 0.3 and torch.all(grey[~frags.mask] == 0)


def test_uv_rendering_of_positions_reproduces_the_mesh(ict):
    model = ict
    topo = model.topology
    verts = model.mean[None]
    face_tris = topo.material_triangles("M_Face")
    size = 512
    maps, mask = render_uv(verts, topo.triangles, topo.triangle_uvs, topo.uvs, size, triangle_subset=face_tris)
    assert maps.shape == (1, 3, size, size) and mask.shape == (size, size)
    # coverage: texel count matches the UV area of the face triangles
    uvc = topo.uvs[topo.triangle_uvs[face_tris]]
    uv_area = 0.5 * np.abs(
        (uvc[:, 1, 0] - uvc[:, 0, 0]) * (uvc[:, 2, 1] - uvc[:, 0, 1])
        - (uvc[:, 2, 0] - uvc[:, 0, 0]) * (uvc[:, 1, 1] - uvc[:, 0, 1])
    ).sum()
    assert abs(int(mask.sum()) / (uv_area * size * size) - 1.0) < 0.02
    # sampling the position map at each triangle corner's UV gives back that corner's vertex position, where
    # the bilinear footprint (2 x 2 texels) lies on triangles around that vertex (not across a UV gap to
    # another island: upper and lower eyelids sit less than a texel apart in UV)
    uvf = uv_fragments(topo.triangle_uvs, topo.uvs, size, face_tris)
    corner_uv = topo.uvs[topo.triangle_uvs[face_tris]].reshape(-1, 2)
    corner_v = topo.triangles[face_tris].reshape(-1)
    sampled = sample_texture(torch.as_tensor(corner_uv)[None, None], maps)[0, 0]
    err = (sampled - verts[0, torch.as_tensor(corner_v)]).norm(dim=-1).numpy()
    local = _footprint_is_local(corner_uv, corner_v, uvf.triangle_id.numpy(), topo.triangles, topo.num_vertices)
    assert local.mean() > 0.85
    e = err[local]
    assert np.median(e) < 0.005 and np.percentile(e, 99) < 0.05, np.percentile(e, [50, 99, 100])  # cm
    assert e.max() < 0.25  # where UVs are most stretched one texel spans more than 1 cm
    # and every covered texel's position lies on the mesh: recompute it from (triangle, barycentrics)
    tid = uvf.triangle_id[uvf.mask]
    bary = uvf.bary[uvf.mask]
    again = (verts[0, torch.as_tensor(topo.triangles)[tid]] * bary[..., None]).sum(1)
    assert torch.allclose(again, maps[0].permute(1, 2, 0)[uvf.mask], atol=1e-5)
    assert set(np.unique(tid.numpy())) <= set(face_tris.tolist())


def test_uv_normal_map_and_batched_attributes(ict):
    model = ict
    topo = model.topology
    frames = torch.stack([model.mean, model.mean * 1.1])
    normals = vertex_normals(frames, topo.triangles)
    face_tris = topo.material_triangles("M_Face")
    maps, mask = render_uv(normals, topo.triangles, topo.triangle_uvs, topo.uvs, 128, triangle_subset=face_tris)
    assert maps.shape == (2, 3, 128, 128)
    length = maps.norm(dim=1)[:, mask]
    assert float(length.min()) > 0.5 and float(length.max()) <= 1.0 + 1e-5
    assert torch.allclose(maps[0][:, mask], maps[1][:, mask], atol=1e-4)  # scaling keeps normals
    # gradients reach the attributes
    v = model.mean[None].clone().requires_grad_(True)
    pos, _ = render_uv(v, topo.triangles, topo.triangle_uvs, topo.uvs, 64, triangle_subset=face_tris)
    pos.sum().backward()
    assert v.grad is not None and float(v.grad.abs().sum()) > 0


@pytest.mark.parametrize("tile", [0, 1])
def test_uv_tiles_select_materials(ict, tile):
    topo = ict.topology
    uvf = uv_fragments(topo.triangle_uvs, topo.uvs, 64, tile=tile)
    seen = np.unique(uvf.triangle_id[uvf.mask].numpy())
    materials = {topo.material_names[m] for m in np.unique(topo.triangle_material[seen])}
    if tile == 1:
        assert materials == {"M_BackHead"}
    else:
        assert "M_Face" in materials and "M_BackHead" not in materials


def _footprint_is_local(corner_uv, corner_v, tid, triangles, n_vertices):
    """Whether the 4 texels a bilinear look-up at each UV reads are covered by triangles touching the one-ring
    of the corresponding vertex."""
    import scipy.sparse as sp

    size = tid.shape[0]
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    adjacency = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_vertices,) * 2)
    adjacency = adjacency + sp.eye(n_vertices, format="csr")
    x0 = np.floor(corner_uv[:, 0] * size - 0.5).astype(int)
    y0 = np.floor((1.0 - corner_uv[:, 1]) * size - 0.5).astype(int)
    ok = np.ones(len(corner_uv), bool)
    for dy in (0, 1):
        for dx in (0, 1):
            t = tid[np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)]
            touch = np.zeros(len(corner_uv), bool)
            for k in range(3):
                touch |= np.asarray(adjacency[corner_v, triangles[np.maximum(t, 0), k]]).ravel() > 0
            ok &= (t >= 0) & touch
    return ok
