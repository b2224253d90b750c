"""Hair: the scalp's hair as texture, a shell of hair volume over it, a fringe over the forehead, and long hair
falling behind the shoulders.

The hairline is a height on the mean head as a function of the azimuth around it (front, temples,
sideburns, over the ears, the nape), jittered per case. Scalp hair is an albedo with strand-like streaks;
short to long styles add a shell: the scalp pushed out along its normals by a thickness that grows from the
hairline upwards, rasterized with the head (so it occludes, casts shadows and has a silhouette). The fringe
is a 2D layer of strands drawn from the projected front hairline down over the forehead, lit by the light
the forehead receives; long hair is a 2D layer behind the head.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..model.morphable import MorphableModel
from .effects import Effect, effect_rng
from .shapes import Shape
from .skin import draw_strokes, sample_hair_colour, smooth_noise
from .uvmaps import uv_geometry, vertex_uvs

HEAD_CENTRE_Z = 1.0  # cm: the azimuth around the head is measured about the vertical line x = 0, z = this
BROW_HEIGHT = 6.3  # cm: the brows' height on ICT's mean head (landmarks 19 and 24)
EAR_TOP_HEIGHT = 4.6  # cm: just above the ears' tops (hair over the ears starts here)
HAIRLINE_SOFTNESS_CM = 0.6  # hair density fades in over about this height at the hairline
SHELL_START_CM = 0.9  # the shell begins this far above the hairline, where the scalp texture is all hair
SHELL_TAPER_CM = 3.5  # ... and reaches its full thickness this much higher


def sample_hair(seed: int, index: int) -> tuple[list[Effect], np.ndarray]:
    """The hair effect (style, colour, hairline, volume) and the hair colour (brows and beards share it)."""
    rng = effect_rng(seed, index, "hair")
    colour = sample_hair_colour(rng)
    style = str(rng.choice(["bald", "buzz", "short", "medium", "long"], p=[0.08, 0.12, 0.35, 0.25, 0.2]))
    params = {"style": style, "colour": colour, "front_cm": rng.uniform(4.2, 6.5),
              "recession_cm": rng.uniform(0.0, 2.5) if rng.random() < 0.35 else 0.0,
              "sideburn_cm": rng.uniform(0.5, 3.5), "nape_cm": rng.uniform(4.0, 8.0),
              "thickness_cm": {"bald": 0.0, "buzz": 0.0, "short": rng.uniform(0.4, 1.2),
                               "medium": rng.uniform(1.0, 2.2), "long": rng.uniform(1.2, 2.5)}[style],
              "length_cm": rng.uniform(12.0, 30.0) if style == "long" else 0.0,
              "streaks": rng.uniform(0.3, 0.8), "sheen": rng.uniform(0.05, 0.2), "seed": int(rng.integers(2**31))}
    if style == "bald":  # bald on top; hair (or not) on the sides and back
        params["front_cm"] = 12.0
    return [Effect("hair", "hair", params)], colour


def hairline_height(position: np.ndarray, params: dict, jitter: np.ndarray | None = None) -> np.ndarray:
    """Height (cm, model frame) above which the scalp carries hair, at mean-head points (..., 3)."""
    x, z = position[..., 0], position[..., 2] - HEAD_CENTRE_Z
    a = np.degrees(np.abs(np.arctan2(x, z)))
    front = BROW_HEIGHT + params["front_cm"]
    sideburn = EAR_TOP_HEIGHT - params["sideburn_cm"]
    nape = -params["nape_cm"]
    y = np.interp(a, [0, 30, 58, 72, 80, 88, 115, 150, 180],
                  [front, front, 5.6, sideburn, sideburn, EAR_TOP_HEIGHT, EAR_TOP_HEIGHT, nape + 2.0, nape])
    y = y + params["recession_cm"] * np.exp(-0.5 * ((a - 28) / 9) ** 2)
    return y if jitter is None else y + jitter


def hair_textures(model: MorphableModel, effect: Effect, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(2, S, S) hair coverage and (2, S, S, 3) hair albedo over both skin tiles."""
    p = effect.params
    geo = uv_geometry(model, size)
    rng = np.random.default_rng(p["seed"])
    cm = geo.texels_per_cm
    masks, albedos = np.zeros((2, size, size), np.float32), np.zeros((2, size, size, 3), np.float32)
    for tile in range(2):
        pos = geo.position[tile]
        y0 = hairline_height(pos, p, 0.15 * smooth_noise(rng, size, 1.5 * cm))
        # hairs thin out towards the hairline: a strand-like noise decides which texels there are hair
        strands = cv2.GaussianBlur(rng.random((size, size), dtype=np.float32), (0, 0), sigmaX=0.6,
                                   sigmaY=max(1.0, 0.1 * cm))
        strands = (strands - strands.mean()) / max(float(strands.std()), 1e-6)
        mask = np.clip(2 * ((pos[..., 1] - y0) / HAIRLINE_SOFTNESS_CM + 0.35 * strands), 0, 1)
        if p["style"] == "bald":
            mask *= np.clip((BROW_HEIGHT + 5.0 - pos[..., 1]) / 1.0, 0, 1)  # the top is bare
        # strands: fine noise stretched along the texture's vertical (the hair's flow on both tiles), and
        # broader clumps
        grain = rng.standard_normal((size, size)).astype(np.float32)
        streak = cv2.GaussianBlur(grain, (0, 0), sigmaX=0.5, sigmaY=max(1.5, 0.35 * cm))
        streak /= max(float(streak.std()), 1e-6)
        clumps = smooth_noise(rng, size, 1.2 * cm)
        shade = np.clip(1 + 0.25 * p["streaks"] * streak + 0.25 * clumps, 0.3, 2.0)
        masks[tile] = mask  # defined beyond the UV islands too, so look-ups at their borders read hair
        albedos[tile] = np.asarray(p["colour"], np.float32)[None, None] * shade[..., None]
    if p["style"] == "buzz":  # skin shows through short hair
        masks *= 0.75
    return masks, albedos


def hair_shell(model: MorphableModel, vertices: np.ndarray, normals: np.ndarray, effect: Effect,
               coverage: np.ndarray) -> tuple[Shape, np.ndarray]:
    """The hair volume: scalp triangles pushed out along the case's normals (model frame), and the model
    triangle ids they copy (for their UVs). Only triangles whose corners are all fully hair in the
    ``coverage`` texture (2, S, S) (:func:`hair_textures`) are used, so the shell shows hair only. Empty for
    bald and buzz cuts."""
    p = effect.params
    if p["thickness_cm"] <= 0:
        return Shape(np.zeros((0, 3)), np.zeros((0, 3), np.int64)), np.zeros(0, np.int64)
    topo = model.topology
    mean = model.mean.detach().cpu().numpy()
    above = mean[:, 1] - hairline_height(mean, p)
    skin = topo.region("face_and_head")
    # the shell starts inside the textured hair, so its edge lies on hair, and grows without a step
    azimuth = np.degrees(np.abs(np.arctan2(mean[:, 0], mean[:, 2] - HEAD_CENTRE_Z)))
    flat_front = 0.35 + 0.65 * np.clip((azimuth - 25) / 45, 0, 1)  # hair lies flatter over the forehead
    grow = p["thickness_cm"] * flat_front * np.clip((above - SHELL_START_CM) / SHELL_TAPER_CM, 0, 1) ** 2
    uv = vertex_uvs(model)
    size = coverage.shape[1]
    tile = np.clip(np.floor(uv[:, 0]).astype(int), 0, 1)
    col = np.clip(((uv[:, 0] - tile) * size).astype(int), 0, size - 1)
    row = np.clip(((1 - uv[:, 1]) * size).astype(int), 0, size - 1)
    hairy = skin & (above > SHELL_START_CM - 0.3) & (coverage[tile, row, col] > 0.98)
    tris = np.flatnonzero(hairy[topo.triangles].all(1))
    shell = vertices + normals * (grow[:, None] + 0.03)
    return Shape(shell, topo.triangles[tris]), tris


def sample_fringe(seed: int, index: int, hair: Effect) -> list[Effect]:
    """A fringe on some faces with hair (an occluder of the forehead)."""
    rng = effect_rng(seed, index, "hair_fringe")
    if hair.params["style"] in ("bald", "buzz") or rng.random() > 0.3:
        return []
    return [Effect("hair_fringe", "occluder", {
        "strands": int(rng.integers(250, 700)), "length_cm": rng.uniform(3.0, 6.5),
        "span_deg": rng.uniform(25, 55), "sweep": rng.uniform(-0.8, 0.8), "curl": rng.uniform(-0.3, 0.3),
        "seed": int(rng.integers(2**31))})]


def fringe_layer(model: MorphableModel, case_vertices_cam: np.ndarray, vertex_normals_cam: np.ndarray,
                 down_cam: np.ndarray, project, depth: np.ndarray, effect: Effect, hair: Effect,
                 scale: float) -> np.ndarray:
    """(H, W) strand coverage in [0, 1] of the fringe at the render's resolution. Roots are the visible
    front-hairline vertices (depth-tested against the render's ``depth``, 0 = nothing); each strand falls
    along the projected downward direction of the head (``down_cam``, camera frame), swept sideways, for
    ``length_cm``; ``project`` maps camera points (N, 3) to pixels; ``scale`` is pixels per centimetre at
    the face."""
    p = effect.params
    rng = np.random.default_rng(p["seed"])
    mean = model.mean.detach().cpu().numpy()
    x, z = mean[:, 0], mean[:, 2] - HEAD_CENTRE_Z
    a = np.degrees(np.arctan2(x, z))
    y0 = hairline_height(mean, hair.params)
    roots = np.flatnonzero((np.abs(a) < p["span_deg"]) & (np.abs(mean[:, 1] - y0 - 0.3) < 0.5)
                           & model.topology.region("face_and_head"))
    h, w = depth.shape
    canvas = np.zeros((h, w), np.uint8)
    if len(roots) == 0:
        return canvas.astype(np.float32)
    pick = roots[rng.integers(len(roots), size=p["strands"])]
    lift = hair.params["thickness_cm"] * 0.3 + 0.15  # the fringe lies on the hair volume, in front of the skin
    start3 = case_vertices_cam[pick] + vertex_normals_cam[pick] * lift
    down3 = case_vertices_cam[pick] + vertex_normals_cam[pick] * lift + np.asarray(down_cam)[None] * 1.0
    start, down = project(start3), project(down3)
    ok = (start[:, 0] >= 0) & (start[:, 0] < w) & (start[:, 1] >= 0) & (start[:, 1] < h)
    col, row = np.clip(start[:, 0].astype(int), 0, w - 1), np.clip(start[:, 1].astype(int), 0, h - 1)
    seen = ok & ((depth[row, col] == 0) | (start3[:, 2] < depth[row, col] + 0.6))
    facing = (vertex_normals_cam[pick] * start3).sum(1) < 0
    keep = seen & facing
    start, down = start[keep], down[keep]
    n = len(start)
    if n == 0:
        return canvas.astype(np.float32)
    d = down - start
    d /= np.linalg.norm(d, axis=1, keepdims=True).clip(1e-6)
    side = np.stack([-d[:, 1], d[:, 0]], 1)
    length = p["length_cm"] * scale * rng.uniform(0.6, 1.1, n)
    pts = [start]
    steps = 6
    sweep = p["sweep"] + rng.normal(0, 0.12, n)
    for k in range(1, steps + 1):
        t = k / steps
        bend = sweep * t * t + p["curl"] * np.sin(np.pi * t)
        pts.append(start + (d * t + side * bend[:, None] * 0.6) * length[:, None] / 1.0)
    thick = max(1, int(round(scale * 0.04)))
    for k in range(steps):
        draw_strokes(canvas, pts[k], pts[k + 1], thick)
    cover = canvas.astype(np.float32) / 255
    return np.clip(cover + 0.5 * cv2.GaussianBlur(cover, (0, 0), max(0.7, scale * 0.05)), 0, 1)


FUZZ_CM = 0.12  # stray hairs blur the hair's outline over about this width


def hair_fuzz(image: np.ndarray, hair: np.ndarray, covered: np.ndarray, px_per_cm: float,
              rng: np.random.Generator) -> np.ndarray:
    """Soften the hair's outline against the background: beyond the rendered hair (``hair`` (H, W) bool,
    ``covered`` the pixels any surface covers), a thin streaky fringe of the nearby hair colour fades out,
    as stray hairs do in a photo. image (H, W, 3) linear."""
    if not hair.any():
        return image
    sigma = max(0.8, FUZZ_CM * px_per_cm)
    m = hair.astype(np.float32)
    soft = cv2.GaussianBlur(m, (0, 0), sigma)
    streaks = cv2.GaussianBlur(rng.random(m.shape, dtype=np.float32), (0, 0), 0.7)
    alpha = np.clip(soft * 2.2 * (0.3 + 1.4 * (streaks - 0.4)), 0, 1) * ~covered
    colour = cv2.GaussianBlur(image * m[..., None], (0, 0), sigma) / np.maximum(soft, 1e-4)[..., None]
    return image * (1 - alpha[..., None]) + colour * alpha[..., None]


HAIR_SHEEN_EXPONENT = 30.0  # sharpness of the Kajiya-Kay highlight band
HAIR_SHEEN = 0.1  # strength of that band relative to the key light, for hair without a hair effect (brows)
STRAND_STEPS = 4  # streak length (each way, in pixels of the render) of the screen-space strand texture


def hair_tangents(points: torch.Tensor, normals: torch.Tensor, crown: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """(N, 3) unit strand directions on the scalp: away from the crown along the surface (hair falls from the
    crown), the head's down direction where that is undefined. Camera frame."""
    d = points - crown[None]
    t = d - (d * normals).sum(-1, keepdim=True) * normals
    fallback = down[None] - (down[None] * normals).sum(-1, keepdim=True) * normals
    t = torch.where(t.norm(dim=-1, keepdim=True) < 1e-3, fallback, t)
    return torch.nn.functional.normalize(t, dim=-1, eps=1e-9)


def kajiya_kay(tangents: torch.Tensor, view: torch.Tensor, light: torch.Tensor, normals: torch.Tensor,
               exponent: float = HAIR_SHEEN_EXPONENT) -> torch.Tensor:
    """(N,) the anisotropic highlight of fibres (Kajiya and Kay 1989): strongest where the half vector is
    perpendicular to the strand; faded on the side away from the light."""
    h = torch.nn.functional.normalize(view + light[None], dim=-1)
    th = (tangents * h).sum(-1)
    facing = ((normals @ light) * 2 + 0.5).clamp(0, 1)
    return (1 - th * th).clamp(min=0) ** (exponent / 2) * facing


def strand_streaks(pixels: torch.Tensor, directions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(N,) white noise averaged along each pixel's strand direction on the screen (a line-integral
    convolution): streaks that follow the hair. pixels (N, 2) (x, y), directions (N, 2) unit, noise (H, W)."""
    h, w = noise.shape
    total = torch.zeros(len(pixels))
    for k in range(-STRAND_STEPS, STRAND_STEPS + 1):
        q = (pixels + k * directions).round().long()
        total += noise[q[:, 1].clamp(0, h - 1), q[:, 0].clamp(0, w - 1)]
    return total / (2 * STRAND_STEPS + 1)


LONG_HAIR_SPREAD_CM = 1.5  # long hair hangs this far out beside the head's hair


def long_hair(image: np.ndarray, hair: np.ndarray, paintable: np.ndarray, length_cm: float, px_per_cm: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Long hair hanging from the head: a curtain from the rendered hair (``hair`` (H, W) bool) down by
    ``length_cm``, a little wider than the head's hair, streaked along its fall and darker inside, painted
    where ``paintable`` (background and clothes: the head stays in front of it). Returns the image and the
    curtain's coverage (H, W) in [0, 1]."""
    h, w = hair.shape
    if not hair.any():
        return image, np.zeros((h, w), np.float32)
    pad = max(1, int(LONG_HAIR_SPREAD_CM * px_per_cm))
    wide = cv2.dilate(hair.astype(np.uint8), np.ones((1, 2 * pad + 1), np.uint8)) > 0
    has = wide.any(0)
    top = np.argmax(wide, axis=0)
    bottom = h - 1 - np.argmax(wide[::-1], axis=0)
    cols = np.flatnonzero(has)
    span = max(cols.max() - cols.min(), 1)
    t = (np.arange(w) - cols.min()) / span  # 0 .. 1 across the curtain
    ragged = cv2.resize(rng.standard_normal((1, 24)).astype(np.float32), (w, 1), interpolation=cv2.INTER_CUBIC)[0]
    length = length_cm * px_per_cm * (0.75 + 0.25 * np.sqrt(np.clip(np.sin(np.pi * t), 0, 1)) + 0.05 * ragged)
    rows = np.arange(h)[:, None]
    cover = ((rows >= top[None]) & (rows <= (bottom + length)[None]) & has[None]).astype(np.float32)
    cover = cv2.GaussianBlur(cover, (0, 0), max(1.0, 0.15 * px_per_cm)) * paintable
    colour = image[hair].mean(0)
    streak = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0),
                              sigmaX=max(0.6, 0.04 * px_per_cm), sigmaY=max(2.0, 1.5 * px_per_cm))
    streak /= max(float(streak.std()), 1e-6)
    # waves: the streaks and the shading sway sideways as the hair falls; locks catch the light unevenly
    sway = (np.sin(rows / max(2.0, 2.5 * px_per_cm) + rng.uniform(0, 6)) * 0.6 * px_per_cm).astype(np.float32)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    streak = cv2.remap(streak, xs + sway, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    locks = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), max(1.0, 0.8 * px_per_cm))
    locks /= max(float(locks.std()), 1e-6)
    depth = np.clip((rows - bottom[None]) / np.maximum(length[None], 1), 0, 1)  # darker as it falls
    shade = np.clip(1 + 0.15 * streak + 0.25 * locks, 0.3, 2) * (1 - 0.35 * depth)
    painted = image * (1 - cover[..., None]) + cover[..., None] * colour[None, None] * shade[..., None]
    return painted.astype(np.float32), cover
