"""Synthetic face photos with known geometry: the ground truth of ``facefit bench synthetic``.

A case is a random ICT face (identity ~ N(0, 1), expressions from plausible ranges including extreme ones,
yaw within +-60 deg, pitch +-30 deg, varied focal length), with a random procedural albedo (skin tone with
low-frequency variation, darker brows, redder lips, coloured irises with pupils), random SH lighting and a
random smooth background, rendered with facefit's own rasterizer at 2x and downsampled (antialiasing).
The mouth opening is closed by a dark cap so that open mouths look like mouths, not holes.
"""
from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..camera import focal_from_fov, model_to_camera, project
from ..common.colour import linear_to_srgb
from ..model.morphable import MorphableModel
from ..model.subdivision import detail_mesh_arrays, subdivide
from ..render import (
    interpolate,
    pixel_normals,
    rasterize,
    sh_directional,
    sh_shading,
    uv_fragments,
    vertex_normals,
)

# Expressions grouped by how they are sampled. "Big" ones drive the extreme subset.
BIG_EXPRESSIONS = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "mouthPucker", "mouthFunnel", "browInnerUp_L",
                   "browInnerUp_R", "eyeBlink_L", "eyeBlink_R", "cheekPuff_L", "cheekPuff_R", "mouthStretch_L",
                   "mouthStretch_R", "noseSneer_L", "noseSneer_R", "jawLeft", "jawRight", "mouthFrown_L",
                   "mouthFrown_R", "browDown_L", "browDown_R", "eyeWide_L", "eyeWide_R", "mouthLeft",
                   "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthUpperUp_L", "mouthUpperUp_R")
EXTREME_THRESHOLD = 0.7  # a case is "extreme" when a big expression reaches this
SKIN_TONES = np.array([[0.92, 0.74, 0.63], [0.83, 0.62, 0.50], [0.70, 0.50, 0.38], [0.52, 0.36, 0.27],
                       [0.36, 0.24, 0.18]], np.float32)
IRIS_COLOURS = np.array([[0.25, 0.15, 0.08], [0.15, 0.25, 0.40], [0.20, 0.30, 0.18], [0.35, 0.25, 0.12]],
                        np.float32)


@dataclass
class SyntheticCase:
    index: int
    identity: np.ndarray  # (K_id,)
    expression: np.ndarray  # (K_exp,)
    rotation: np.ndarray  # (3,) axis-angle (facefit convention)
    translation: np.ndarray  # (3,) cm
    focal: float  # pixels
    image_size: tuple[int, int]
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    expression_extreme: bool
    skin: np.ndarray  # (3,) base albedo
    iris: np.ndarray  # (3,)
    light: np.ndarray  # (9, 3) SH
    seed: int
    displacement: np.ndarray | None = None  # (S, S) cm: ground-truth wrinkle detail on the face UV tile
    extras: dict = field(default_factory=dict)
    appearance: str = "clean"  # "clean" (the fitter's own image model) or "wild" (fitter.synth.wild)
    effects: list = field(default_factory=list)  # wild: the fitter.synth.effects.Effect list applied


APPEARANCES = ("clean", "wild")


def sample_clean_case(model: MorphableModel, index: int, seed: int, size: int = 512, detail: bool = True) -> SyntheticCase:
    rng = np.random.default_rng([seed, index])
    names = model.expression_names
    expression = np.zeros(model.num_expression, np.float32)
    kind = rng.choice(["neutral", "moderate", "extreme"], p=[0.2, 0.5, 0.3])
    small = rng.choice(len(names), size=rng.integers(2, 7), replace=False)
    expression[small] = rng.uniform(0.0, 0.35, len(small))
    big = [names.index(n) for n in BIG_EXPRESSIONS if n in names]
    if kind == "moderate":
        pick = rng.choice(big, size=rng.integers(1, 4), replace=False)
        expression[pick] = rng.uniform(0.2, 0.65, len(pick))
    elif kind == "extreme":
        pick = rng.choice(big, size=rng.integers(1, 3), replace=False)
        expression[pick] = rng.uniform(EXTREME_THRESHOLD, 1.0, len(pick))
    extreme = bool(expression[big].max() >= EXTREME_THRESHOLD)

    yaw, pitch, roll = rng.uniform(-60, 60), rng.uniform(-30, 30), rng.uniform(-12, 12)
    from scipy.spatial.transform import Rotation

    rotation = Rotation.from_euler("YXZ", [yaw, pitch, roll], degrees=True).as_rotvec()
    fov = rng.uniform(12.0, 50.0)  # horizontal field of view of the image, degrees
    focal = focal_from_fov(fov, size)
    face_fraction = rng.uniform(0.3, 0.6)  # head width / image width
    depth = focal * 16.0 / (face_fraction * size)  # the head is about 16 cm wide at the cheeks
    shift = rng.uniform(-0.12, 0.12, 2) * size * depth / focal
    translation = np.array([shift[0], shift[1], depth], np.float64)

    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    iris = IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))] * rng.uniform(0.8, 1.2, 3)
    key_dir = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.3), -1.0])
    light_colour = 1.0 + rng.uniform(-0.1, 0.1, 3)
    light = sh_directional(key_dir, diffuse=rng.uniform(0.3, 0.8), ambient=rng.uniform(0.35, 0.7),
                           colour=tuple(light_colour)).numpy()
    return SyntheticCase(
        index=index, identity=rng.standard_normal(model.num_identity).astype(np.float32), expression=expression,
        rotation=rotation, translation=translation, focal=float(focal), image_size=(size, size),
        yaw_deg=float(yaw), pitch_deg=float(pitch), roll_deg=float(roll), expression_extreme=extreme,
        skin=np.clip(skin, 0, 1).astype(np.float32), iris=np.clip(iris, 0, 1).astype(np.float32), light=light,
        seed=int(rng.integers(2**31)),
        displacement=wrinkle_map(np.random.default_rng([seed, index, 3])) if detail else None,
    )


# -- ground-truth detail ---------------------------------------------------------------------------------
DETAIL_SIZE = 512


def _segment_distance(u: np.ndarray, v: np.ndarray, a, b) -> np.ndarray:
    ab = np.subtract(b, a)
    t = np.clip(((u - a[0]) * ab[0] + (v - a[1]) * ab[1]) / max(float(ab @ ab), 1e-12), 0, 1)
    return np.hypot(u - (a[0] + t * ab[0]), v - (a[1] + t * ab[1]))


def wrinkle_map(rng: np.random.Generator, size: int = DETAIL_SIZE) -> np.ndarray:
    """Wrinkle-like displacement (cm, negative = groove) on ICT's face UV tile: forehead lines, crow's feet and
    nasolabial folds placed from the UVs of ICT's landmark vertices, with random depth, count and waviness.
    Row 0 is v = 1 (texel centres as in fitter.render.render_uv)."""
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, 1.0 - c)
    d = np.zeros((size, size))
    depth = rng.uniform(0.6, 1.4)

    def groove(dist: np.ndarray, width: float, amp: float) -> np.ndarray:
        return -amp * np.exp(-((dist / width) ** 2))

    # forehead: horizontal lines above the brows (brows at v ~ 0.80)
    window = np.clip(1 - np.abs(u - 0.5) / 0.22, 0, 1) ** 0.5
    for k in range(rng.integers(2, 6)):
        vk = 0.835 + 0.022 * k + rng.uniform(-0.004, 0.004)
        wave = 0.004 * np.sin(2 * np.pi * (u * rng.uniform(2, 4) + rng.uniform(0, 1)))
        d += groove(v - vk - wave, 0.0035, 0.04 * depth) * window
    # crow's feet at the outer eye corners (u 0.315 and 0.685, v 0.72), rays fanning outwards
    for corner, side in (((0.30, 0.72), -1), ((0.70, 0.72), 1)):
        for angle in np.linspace(-0.5, 0.5, rng.integers(3, 5)) + rng.uniform(-0.1, 0.1):
            end = (corner[0] + side * 0.06 * np.cos(angle), corner[1] + 0.06 * np.sin(angle))
            d += groove(_segment_distance(u, v, np.array(corner), np.array(end)), 0.003, 0.03 * depth)
    # nasolabial folds: from beside the nose wings (u 0.43/0.57, v 0.54) down past the mouth corners
    for top, bottom in (((0.415, 0.555), (0.365, 0.43)), ((0.585, 0.555), (0.635, 0.43))):
        d += groove(_segment_distance(u, v, np.array(top), np.array(bottom)), 0.008, 0.08 * depth)
    return d.astype(np.float32)


# -- static appearance of the model ----------------------------------------------------------------------
@dataclass
class Appearance:
    triangles: np.ndarray  # (T', 3) model triangles + mouth cap (the cap uses vertex index V)
    lips: np.ndarray  # (V,) float weight
    brows: np.ndarray  # (V,) float weight
    sclera: np.ndarray  # (V,) bool
    iris: np.ndarray  # (V,) bool
    pupil: np.ndarray  # (V,) bool
    mouth_loop: np.ndarray  # vertex ids of the mouth opening
    noise_points: np.ndarray  # (V, 3) mean-shape positions for procedural variation


@functools.lru_cache(maxsize=4)
def appearance(model: MorphableModel) -> Appearance:
    topo = model.topology
    mean = model.mean.detach().cpu().numpy()
    lm = mean[topo.landmarks68]
    skin_region = topo.region("face_and_head")
    front = mean[:, 2] > lm[:, 2].min() - 1.0

    def inside(poly_xy: np.ndarray, grow: float = 0.0) -> np.ndarray:
        poly = poly_xy.astype(np.float32)
        d = np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in mean[:, :2]])
        return np.clip((d + grow) / max(grow, 1e-3), 0, 1) if grow else (d >= 0).astype(np.float32)

    lips = inside(lm[48:60, :2], grow=0.15) * front * skin_region
    brows = np.zeros(len(mean), np.float32)
    for a, b in ((17, 22), (22, 27)):
        top = lm[a:b, :2] + [0, 0.35]
        bottom = lm[a:b, :2][::-1] - [0, 0.25]
        brows = np.maximum(brows, inside(np.concatenate([top, bottom]), grow=0.12))
    brows *= front * skin_region
    mats = topo.material_names
    sclera = np.zeros(len(mean), bool)  # the white of the eye: sclera shells and the inner sphere's back
    iris = np.zeros(len(mean), bool)
    pupil = np.zeros(len(mean), bool)
    for name in ("M_ScleraLeft", "M_ScleraRight", "M_IrisLeft", "M_IrisRight"):
        if name not in mats:
            continue
        v, ang = eye_angles(model, name)
        sclera[v] = True
        if name.startswith("M_Iris"):
            iris[v[ang < IRIS_DEG]] = True
            pupil[v[ang < PUPIL_DEG]] = True
    sclera &= ~iris
    loop = mouth_loop(model)
    v = len(mean)
    cap = np.stack([np.full(len(loop), v), np.roll(loop, -1), loop], 1)  # fan around an added centre vertex
    keep = np.ones(len(topo.triangles), bool)
    keep[cornea_triangles(model)] = False  # the clear cornea would hide the iris
    triangles = np.concatenate([topo.triangles[keep], cap]).astype(np.int64)
    return Appearance(triangles, lips.astype(np.float32), brows.astype(np.float32), sclera, iris, pupil, loop, mean)


# ICT's eyes are two spheres each: an outer "sclera" shell whose front cap is the clear cornea, and an inner
# "iris" sphere painted (by texture, which the kit does not ship here) with the iris and pupil at the front.
CORNEA_DEG = 30.0
IRIS_DEG = 28.0
PUPIL_DEG = 11.0


def eye_angles(model: MorphableModel, material: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertex ids of a material's sphere and each one's angle (deg) from the sphere's forward (+z) axis."""
    topo = model.topology
    mean = model.mean.detach().cpu().numpy()
    v = np.unique(topo.triangles[topo.material_triangles(material)])
    d = mean[v] - mean[v].mean(0)
    cos = d[:, 2] / np.linalg.norm(d, axis=1).clip(1e-9)
    return v, np.degrees(np.arccos(np.clip(cos, -1, 1)))


def cornea_triangles(model: MorphableModel) -> np.ndarray:
    """Front-cap triangles of the sclera shells (the clear cornea, which would hide the iris)."""
    topo = model.topology
    out = []
    for sclera in ("M_ScleraLeft", "M_ScleraRight"):
        if sclera not in topo.material_names:
            continue
        v, ang = eye_angles(model, sclera)
        angle = np.full(topo.num_vertices, 180.0)
        angle[v] = ang
        tris = topo.material_triangles(sclera)
        out.append(tris[angle[topo.triangles[tris]].max(1) < CORNEA_DEG])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    """Closed loops of boundary edges (edges used by one triangle), each in traversal order."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    key = np.sort(e, 1)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    boundary = e[counts[inv.reshape(-1)] == 1]
    nxt = {int(a): int(b) for a, b in boundary}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, cur = [], start
        while cur not in seen:
            seen.add(cur)
            loop.append(cur)
            cur = nxt.get(cur, start)
        loops.append(np.asarray(loop))
    return loops


def mouth_loop(model: MorphableModel) -> np.ndarray:
    """The boundary loop of the face surface nearest the inner-lip landmarks (the mouth opening)."""
    topo = model.topology
    mean = model.mean.detach().cpu().numpy()
    tris = topo.triangles[topo.triangles_in(topo.region("face_and_head"))]
    centre = mean[topo.landmarks68[60:68]].mean(0)
    loops = boundary_loops(tris)
    return min(loops, key=lambda loop: np.linalg.norm(mean[loop].mean(0) - centre))


# -- rendering -------------------------------------------------------------------------------------------
@dataclass
class RenderedCase:
    image: np.ndarray  # (H, W, 3) uint8
    camera_vertices: np.ndarray  # (V, 3) ground truth, camera frame (cm)
    model_vertices: np.ndarray  # (V, 3) ground truth, model frame (cm)
    triangle_id: np.ndarray  # (H, W) int64 into appearance(model).triangles at the output resolution (-1 = none)
    barycentrics: np.ndarray  # (H, W, 3) float32
    extras: dict = field(default_factory=dict)
    occlusion: np.ndarray | None = None  # wild: (H, W) bool, face-region pixels hidden by an occluder
    effects: list = field(default_factory=list)  # wild: each applied effect's record (name, family, params)


def vertex_albedo(model: MorphableModel, case: SyntheticCase) -> np.ndarray:
    """Per-vertex albedo (V + 1, 3) for a case (the last row is the mouth cap)."""
    app = appearance(model)
    rng = np.random.default_rng(case.seed)
    p = app.noise_points
    variation = np.ones(len(p), np.float32)
    for _ in range(6):  # low-frequency blotches, a few per cent each
        k = rng.normal(0, 0.35, 3)
        variation += 0.03 * np.cos(p @ k + rng.uniform(0, 2 * np.pi))
    albedo = case.skin[None] * variation[:, None]
    lip_colour = case.skin * np.array([0.95, 0.62, 0.62]) * rng.uniform(0.8, 1.0)
    brow_colour = np.array([0.12, 0.09, 0.07]) * rng.uniform(0.6, 1.6)
    albedo = albedo * (1 - app.lips[:, None]) + lip_colour * app.lips[:, None]
    brow_strength = app.brows[:, None] * rng.uniform(0.6, 0.95)
    albedo = albedo * (1 - brow_strength) + brow_colour * brow_strength
    albedo[app.sclera] = np.array([0.85, 0.83, 0.8])
    albedo[app.iris] = case.iris
    albedo[app.pupil] = 0.03
    cap = np.array([[0.18, 0.05, 0.05]])
    return np.clip(np.concatenate([albedo, cap]), 0, 1).astype(np.float32)


def background(size: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random colour field with a little grain, (H, W, 3) float in [0, 1]."""
    rng = np.random.default_rng(seed + 7)
    h, w = size
    grid = rng.uniform(0.1, 0.9, (4, 4, 3)).astype(np.float32)
    bg = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(bg + rng.normal(0, 0.02, bg.shape), 0, 1).astype(np.float32)


def case_vertices(model: MorphableModel, case: SyntheticCase) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth vertices (1, V, 3) in the model frame and in the camera frame."""
    v = model.vertices(torch.as_tensor(case.identity), torch.as_tensor(case.expression)[None])
    cam = model_to_camera(v, torch.as_tensor(case.rotation, dtype=torch.float32)[None],
                          torch.as_tensor(case.translation, dtype=torch.float32)[None])
    return v, cam


def case_K(case: SyntheticCase, scale: float = 1.0) -> torch.Tensor:
    h, w = case.image_size
    f = case.focal * scale
    return torch.tensor([[[f, 0.0, w * scale / 2], [0.0, f, h * scale / 2], [0.0, 0.0, 1.0]]])


def render_clean_case(model: MorphableModel, case: SyntheticCase, supersample: int = 2) -> RenderedCase:
    """Render a clean case to an 8-bit photo (antialiased by supersampling) plus ground-truth fragments."""
    app = appearance(model)
    with torch.no_grad():
        v_model, cam = case_vertices(model, case)
        centre = cam[:, torch.as_tensor(app.mouth_loop)].mean(1, keepdim=True)
        # push the cap slightly into the mouth so lips always draw over it
        centre = centre + 0.6 * (centre / centre.norm(dim=-1, keepdim=True))
        verts = torch.cat([cam, centre], 1)
        albedo = torch.as_tensor(vertex_albedo(model, case))
        h, w = case.image_size
        big = (h * supersample, w * supersample)
        if case.displacement is None:
            frags = rasterize(verts, app.triangles, case_K(case, supersample), big)
            normals = pixel_normals(frags, verts)
        else:  # the photo shows the truly displaced dense surface (not a bump-mapped coarse one)
            dense, tris, albedo, vertex_n = detailed_geometry(model, case, v_model[0], albedo)
            frags = rasterize(dense, tris, case_K(case, supersample), big)
            normals = torch.nn.functional.normalize(interpolate(frags, vertex_n), dim=-1, eps=1e-12)
        shade = sh_shading(normals, torch.as_tensor(case.light)[None])
        colour = interpolate(frags, albedo) * shade
        bg = torch.as_tensor(background(big, case.seed))[None]
        img = torch.where(frags.mask[..., None], colour, bg)[0].clamp(0, 1).numpy()
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        rng = np.random.default_rng(case.seed + 1)
        img = np.clip(img + rng.normal(0, 1.5 / 255, img.shape), 0, 1)
        image = (linear_to_srgb(img) * 255 + 0.5).astype(np.uint8)
        small = rasterize(verts, app.triangles, case_K(case), (h, w))
    return RenderedCase(
        image=image,
        camera_vertices=cam[0].numpy(),
        model_vertices=v_model[0].numpy(),
        triangle_id=small.triangle_id[0].numpy(),
        barycentrics=small.bary[0].numpy(),
    )


@dataclass(frozen=True)
class DenseLayout:
    """The static part of the twice-subdivided face (the same for every case of a model): its triangles
    without the corneas, their UV corners and coarse materials, and the skin's boundary loops."""

    triangles: np.ndarray  # (T, 3) dense vertex ids (fan-triangulated polygons)
    triangle_uvs: np.ndarray  # (T, 3) ids into the dense UVs
    triangle_material: np.ndarray  # (T,) material index of the coarse polygon (Topology.material_names)
    skin_loops: tuple  # boundary loops of the face-and-head skin triangles (one is the mouth opening)
    num_polygons: int  # polygons of the subdivided mesh the layout was made from (a consistency check)


_DENSE_LAYOUTS: weakref.WeakKeyDictionary[MorphableModel, DenseLayout] = weakref.WeakKeyDictionary()


def dense_layout(model: MorphableModel, mesh) -> DenseLayout:
    """The model's dense layout, made from its first subdivided mesh ``mesh`` and kept (boundary loops of
    the dense mesh take most of a render's time otherwise)."""
    layout = _DENSE_LAYOUTS.get(model)
    if layout is not None:
        if len(mesh.polygons) != layout.num_polygons:
            raise RuntimeError("the subdivided face does not match its cached layout (topology changed?)")
        return layout
    topo = model.topology
    polys, puvs = mesh.polygons, mesh.polygon_uvs
    fans = range(1, polys.shape[1] - 1)
    rows = [polys[:, k + 1] >= 0 for k in fans]
    tris = np.concatenate([polys[:, [0, k, k + 1]][r] for k, r in zip(fans, rows)])
    tuvs = np.concatenate([puvs[:, [0, k, k + 1]][r] for k, r in zip(fans, rows)])
    origin = np.concatenate([mesh.polygon_origin[r] for r in rows])
    cornea = np.unique(topo.triangle_polygon[cornea_triangles(model)])
    keep = ~np.isin(origin, cornea)
    tris, tuvs, origin = tris[keep], tuvs[keep], origin[keep]
    skin_polys = np.flatnonzero(topo.region("face_and_head")[np.where(topo.polygons >= 0, topo.polygons, 0)].all(1))
    loops = tuple(boundary_loops(tris[np.isin(origin, skin_polys)]))
    layout = DenseLayout(tris, tuvs, topo.polygon_material[origin], loops, len(polys))
    _DENSE_LAYOUTS[model] = layout
    return layout


@dataclass
class DenseSurface:
    """A case's displaced dense face in the camera frame, with the mouth cap (its centre is the last vertex)."""

    vertices: torch.Tensor  # (1, V' + 1, 3)
    triangles: np.ndarray  # (T' + cap, 3)
    colour: torch.Tensor  # (V' + 1, 3) the clean per-vertex albedo, subdivided
    normals: torch.Tensor  # (1, V' + 1, 3) shading normals (unnormalised)
    uvs: np.ndarray  # (U', 2) dense UVs
    triangle_uvs: np.ndarray  # (T', 3): the face's triangles only (the cap has no UVs)
    triangle_material: np.ndarray  # (T',)


def detailed_geometry(model: MorphableModel, case: SyntheticCase, v_model: torch.Tensor,
                      albedo: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Camera-space vertices, triangles, albedo and shading normals of the case's face subdivided twice and
    displaced by its wrinkle map (eyes without corneas, mouth closed by a dark cap as in the coarse render).

    Linear subdivision leaves the coarse facets flat, so the dense mesh's own normals would show them; the
    shading normals are the smooth coarse normals plus what the displacement changes:
    n = normalize(n_smooth + n(displaced dense) - n(flat dense))."""
    s = dense_surface(model, case, v_model, albedo)
    return s.vertices, s.triangles, s.colour, s.normals


def dense_surface(model: MorphableModel, case: SyntheticCase, v_model: torch.Tensor,
                  albedo: torch.Tensor | None) -> DenseSurface:
    """:func:`detailed_geometry` with the dense UVs and materials (for the wild appearance's textures);
    without ``albedo`` the colour is left out (zeros)."""
    topo = model.topology
    coarse = v_model.numpy().astype(np.float64)
    normals = vertex_normals(torch.from_numpy(coarse)[None], topo.triangles)[0].numpy()
    islands = uv_fragments(topo.triangle_uvs, topo.uvs, case.displacement.shape, topo.face_triangles()).mask.numpy()
    mesh = detail_mesh_arrays(coarse, topo, case.displacement, levels=2, mask=islands, normals=normals)
    layout = dense_layout(model, mesh)
    if albedo is None:
        colours, albedo = np.zeros((len(mesh.vertices), 3)), torch.zeros(1, 3)
    else:
        colours = subdivide(albedo[:-1].numpy().astype(np.float64), topo, levels=2).base_vertices
    tris = layout.triangles
    centre_lips = mesh.vertices[topo.landmarks68[60:68]].mean(0)
    loop = min(layout.skin_loops, key=lambda lp: np.linalg.norm(mesh.vertices[lp].mean(0) - centre_lips))
    n = len(mesh.vertices)
    cap = np.stack([np.full(len(loop), n), np.roll(loop, -1), loop], 1)
    pts = torch.as_tensor(mesh.vertices, dtype=torch.float32)[None]
    cam = model_to_camera(pts, torch.as_tensor(case.rotation, dtype=torch.float32)[None],
                          torch.as_tensor(case.translation, dtype=torch.float32)[None])
    centre = cam[:, torch.as_tensor(loop)].mean(1, keepdim=True)
    centre = centre + 0.6 * (centre / centre.norm(dim=-1, keepdim=True))
    verts = torch.cat([cam, centre], 1)
    colour = torch.cat([torch.as_tensor(colours, dtype=torch.float32), albedo[-1:]])
    all_tris = np.concatenate([tris, cap]).astype(np.int64)
    flat = torch.as_tensor(mesh.base_vertices, dtype=torch.float32)[None]
    flat_cam = model_to_camera(flat, torch.as_tensor(case.rotation, dtype=torch.float32)[None],
                               torch.as_tensor(case.translation, dtype=torch.float32)[None])
    flat_cam = torch.cat([flat_cam, centre], 1)
    smooth = model_to_camera(torch.as_tensor(mesh.normals, dtype=torch.float32)[None],
                             torch.as_tensor(case.rotation, dtype=torch.float32)[None], torch.zeros(1, 3))
    smooth = torch.cat([smooth, -centre / centre.norm(dim=-1, keepdim=True)], 1)
    normals = smooth + vertex_normals(verts, all_tris) - vertex_normals(flat_cam, all_tris)
    return DenseSurface(verts, all_tris, colour, normals, mesh.uvs, layout.triangle_uvs, layout.triangle_material)


def project_points(points_cam: np.ndarray, case: SyntheticCase) -> np.ndarray:
    """Pixels of camera-frame points for a case's camera."""
    return project(torch.as_tensor(points_cam, dtype=torch.float32)[None], case_K(case))[0].numpy()


def yaw_pitch_roll(rotation: np.ndarray) -> tuple[float, float, float]:
    from scipy.spatial.transform import Rotation

    y, p, r = Rotation.from_rotvec(rotation).as_euler("YXZ", degrees=True)
    return float(y), float(p), float(r)


__all__ = [
    "RenderedCase",
    "SyntheticCase",
    "appearance",
    "boundary_loops",
    "mouth_loop",
    "project_points",
    "render_clean_case",
    "sample_clean_case",
    "vertex_albedo",
    "yaw_pitch_roll",
]
