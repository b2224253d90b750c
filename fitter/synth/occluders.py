"""Things in front of the face: glasses, a hand, a microphone, a hat. 3D props placed from the case's own
landmarks (model frame, so they follow the head), rasterized with the head so that they occlude it, cast
shadows on it and are lit like it. Glasses' lenses are a 2D layer (tint, reflections, glare) drawn over the
render inside the projected rims.
"""
from __future__ import annotations

import cv2
import numpy as np

from .effects import Effect, effect_rng
from .shapes import (
    PATTERN_GRILLE,
    PATTERN_KNIT,
    PATTERN_NONE,
    Material,
    Prop,
    Shape,
    ellipsoid,
    lathe,
    merge_shapes,
    tube,
)

FRAME_COLOURS = np.array([[0.01, 0.01, 0.01], [0.06, 0.03, 0.015], [0.18, 0.1, 0.04], [0.5, 0.45, 0.35],
                          [0.35, 0.35, 0.37], [0.25, 0.02, 0.02], [0.02, 0.04, 0.12]], np.float32)
FABRIC_COLOURS = np.array([[0.02, 0.02, 0.02], [0.6, 0.6, 0.58], [0.05, 0.08, 0.2], [0.3, 0.04, 0.03],
                           [0.12, 0.15, 0.08], [0.35, 0.25, 0.12], [0.45, 0.3, 0.05], [0.12, 0.12, 0.13]],
                          np.float32)


LENS_DISTANCE_CM = 1.4  # lens plane in front of the eyelids' landmarks (vertex distance ~12 mm from the cornea)


def _rot(axis: str, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def sample_occluders(seed: int, index: int, hair_style: str) -> list[Effect]:
    """Each occluder independently, on a share of faces (a hat is rarer over long hair volume)."""
    out = []
    rng = effect_rng(seed, index, "glasses")
    if rng.random() < 0.3:
        out.append(Effect("glasses", "occluder", {
            "lens_width_cm": rng.uniform(4.3, 5.6), "lens_height_cm": rng.uniform(2.8, 4.4),
            "roundness": rng.uniform(0.25, 1.0), "rim_cm": rng.uniform(0.06, 0.26), "gap_cm": rng.uniform(1.3, 2.1),
            "colour": FRAME_COLOURS[rng.integers(len(FRAME_COLOURS))], "tint": rng.uniform(0.0, 0.5)
            if rng.random() < 0.15 else 0.0, "glare": rng.uniform(0.0, 1.0), "glare_angle": rng.uniform(0, 180),
            "tilt_deg": rng.uniform(4, 12), "drop_cm": rng.uniform(-0.1, 0.5)}))
    rng = effect_rng(seed, index, "hand")
    if rng.random() < 0.12:
        out.append(Effect("hand", "occluder", {
            "pose": str(rng.choice(["mouth", "chin", "cheek"])), "side": int(rng.choice([-1, 1])),
            "scale": rng.uniform(0.9, 1.1), "curl": rng.uniform(0.3, 1.6), "spread_deg": rng.uniform(0, 14),
            "offset": rng.uniform(-1.0, 1.0, 3), "roll_deg": rng.uniform(-20, 20)}))
    rng = effect_rng(seed, index, "microphone")
    if rng.random() < 0.08:
        out.append(Effect("microphone", "occluder", {
            "radius_cm": rng.uniform(2.2, 3.2), "forward_cm": rng.uniform(3.0, 7.0), "side_cm": rng.uniform(-3, 3),
            "below_cm": rng.uniform(1.0, 4.5), "handle_deg": rng.uniform(-30, 30), "foam": bool(rng.random() < 0.3),
            "colour": FABRIC_COLOURS[rng.integers(len(FABRIC_COLOURS))]}))
    rng = effect_rng(seed, index, "hat")
    if rng.random() < (0.06 if hair_style == "long" else 0.12):
        out.append(Effect("hat", "occluder", {
            "kind": str(rng.choice(["cap", "beanie", "brimmed"])), "rim_above_brow_cm": rng.uniform(1.5, 4.5),
            "tilt_deg": rng.uniform(-8, 10), "brim_cm": rng.uniform(5.0, 8.0), "brim_drop_deg": rng.uniform(5, 25),
            "colour": FABRIC_COLOURS[rng.integers(len(FABRIC_COLOURS))], "yaw_deg": rng.uniform(-15, 15)}))
    return out


def build_occluders(v_model: np.ndarray, normals: np.ndarray, landmarks68: np.ndarray, effects: list[Effect],
                    skin_tone: np.ndarray, hair_thickness_cm: float) -> list[Prop]:
    """Props (model frame) of the occluder effects for a case whose vertices and unit normals are
    ``v_model``, ``normals`` (V, 3)."""
    lm = v_model[landmarks68]
    out = []
    for e in effects:
        if e.name == "glasses":
            out.append(glasses(lm, v_model, e.params))
        elif e.name == "hand":
            out += hand(lm, v_model, normals, landmarks68, e.params, skin_tone)
        elif e.name == "microphone":
            out += microphone(lm, e.params)
        elif e.name == "hat":
            out += hat(lm, v_model, e.params, hair_thickness_cm)
    return out


# -- glasses --------------------------------------------------------------------------------------------
def lens_outline(width: float, height: float, roundness: float, n: int = 28) -> np.ndarray:
    """(n, 2) a superellipse: roundness 1 is an ellipse, lower values are squarer."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    e = 2.0 / (1.0 + 2.0 * (1 - roundness) + 1e-9) + 0.0
    x = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** e * width / 2
    y = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** e * height / 2
    return np.stack([x, y], 1)


def glasses_geometry(lm: np.ndarray, v_model: np.ndarray, p: dict) -> dict:
    """Rim loops (2 x (n, 3)), bridge and temple paths in the model frame."""
    eyes = [lm[36:42].mean(0), lm[42:48].mean(0)]
    centre = (eyes[0] + eyes[1]) / 2
    half = max(np.linalg.norm(eyes[1] - eyes[0]) / 2, p["lens_width_cm"] / 2 + p["gap_cm"] / 2 - 0.3)
    front = max(lm[36:48, 2].max() + LENS_DISTANCE_CM, lm[27, 2] + 0.5)  # in front of the eyes and the bridge
    tilt = _rot("x", p["tilt_deg"])
    outline = lens_outline(p["lens_width_cm"], p["lens_height_cm"], p["roundness"])
    rims = []
    for side in (-1, 1):
        c = np.array([centre[0] + side * (p["gap_cm"] / 2 + p["lens_width_cm"] / 2), centre[1] - p["drop_cm"], front])
        pts = np.concatenate([outline, np.zeros((len(outline), 1))], 1)
        pts[:, 2] -= 0.25 * (pts[:, 0] * side) ** 2 / p["lens_width_cm"]  # wrap round the face a little
        rims.append(pts @ tilt.T + c)
    inner = [r[np.argmin(np.abs(r[:, 0] - centre[0]) + 3 * np.abs(r[:, 1] - centre[1] - 0.4))] for r in rims]
    bridge = np.stack([inner[0], (inner[0] + inner[1]) / 2 + [0, 0.35, 0.25], inner[1]])
    temples = []
    width = np.abs(v_model[:, 0]).max()
    for r, side in zip(rims, (-1, 1)):
        outer = r[np.argmax(r[:, 0] * side + 0.5 * r[:, 1])]
        ear = np.array([side * (min(width, 8.0) - 0.3), outer[1] - 0.4, -1.5])
        hinge = outer + [side * 0.5, 0, -0.6]
        temples.append(np.stack([outer, hinge, hinge + (ear - hinge) * 0.5 + [side * 0.4, 0, 0], ear]))
    return {"rims": rims, "bridge": bridge, "temples": temples, "half": half}


def glasses(lm: np.ndarray, v_model: np.ndarray, p: dict) -> Prop:
    g = glasses_geometry(lm, v_model, p)
    r = p["rim_cm"]
    parts = [tube(rim, r, sides=8, closed=True, aspect=0.8) for rim in g["rims"]]
    parts.append(tube(g["bridge"], r * 0.8, sides=6))
    parts += [tube(t, max(r * 0.8, 0.09), sides=6, aspect=0.5) for t in g["temples"]]
    metal = float(np.mean(p["colour"])) > 0.3
    return Prop("glasses", merge_shapes(parts), Material(np.asarray(p["colour"]), roughness=0.25 if metal else 0.3,
                                                            f0=0.5 if metal else 0.045))


def lens_layer(image: np.ndarray, rims_px: list[np.ndarray], p: dict, env_colour: np.ndarray,
               rng: np.random.Generator, behind: np.ndarray | None = None) -> np.ndarray:
    """Composite the lenses over a linear image (H, W, 3): tint, a Fresnel reflection of the room with a
    coated lens' colour, and a glare band. rims_px: the projected rim loops (n, 2) in pixels; ``behind``
    (H, W) bool: where the render lies behind the lenses (a hand in front of them is not tinted)."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for rim in rims_px:
        cv2.fillPoly(mask, [np.round(rim * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    m = mask.astype(np.float32)[..., None] / 255
    if behind is not None:
        m = m * behind[..., None]
    if m.max() == 0:
        return image
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1  # work inside the lenses' box only
    a = np.radians(p["glare_angle"])
    proj = ((np.arange(x0, x1)[None] - xs.mean()) * np.cos(a)
            + (np.arange(y0, y1)[:, None] - ys.mean()) * np.sin(a)).astype(np.float32)
    span = max(x1 - x0, y1 - y0)
    band = np.exp(-0.5 * ((proj / span - rng.uniform(-0.3, 0.3)) / 0.12) ** 2)
    coating = np.array([0.8, 1.0, 0.85], np.float32) if rng.random() < 0.5 else np.array([0.95, 0.8, 1.0], np.float32)
    reflection = (0.03 + 0.4 * p["glare"] * band)[..., None] * (env_colour * coating).astype(np.float32)
    box = image[y0:y1, x0:x1]
    mb = m[y0:y1, x0:x1]
    tinted = box * (1 - p["tint"] * np.array([0.8, 0.8, 0.75], np.float32))
    out = image.copy()
    out[y0:y1, x0:x1] = box * (1 - mb) + (tinted * 0.96 + reflection) * mb
    return out


# -- hand -----------------------------------------------------------------------------------------------
PALM_HALF_THICKNESS_CM = 1.3


def hand_shape(p: dict) -> Shape:
    """A right hand in its own frame: palm in the xy plane facing -z (its back towards +z), fingers along +y,
    the forearm down -y; rounded fingertips."""
    s = p["scale"]
    parts = [ellipsoid((4.0 * s, 4.7 * s, PALM_HALF_THICKNESS_CM * s), rings=12, segments=18)]
    curl = p["curl"]
    for k, (x, length) in enumerate(zip((-2.8, -0.95, 0.95, 2.75), (7.0, 7.8, 7.4, 5.8))):
        spread = np.radians(p["spread_deg"] * (k - 1.5) / 1.5)
        pts = [np.array([x * 0.9 * s, 3.4 * s, 0.0])]
        direction = np.array([np.sin(spread), np.cos(spread), 0.0])
        for j, share in enumerate((0.45, 0.3, 0.25)):  # three phalanges, each bending a little more
            bend = curl * (j + 1) * 0.4
            d = direction * np.cos(bend) + np.array([0, 0, -1.0]) * np.sin(bend)
            pts.append(pts[-1] + d * length * share * s)
        radius = np.array([0.92, 0.85, 0.78, 0.72]) * s
        parts.append(tube(np.stack(pts), radius, sides=10, caps=False))
        parts.append(ellipsoid((0.72 * s,) * 3, rings=6, segments=10).transformed(None, pts[-1]))
    thumb = np.stack([[-3.0, -2.0, -0.4], [-5.2, 0.2, -1.0], [-6.4, 2.4, -1.6 - 0.6 * curl]]) * s
    parts.append(tube(thumb, np.array([1.35, 1.05, 0.9]) * s, sides=10, caps=False))
    parts.append(ellipsoid((0.9 * s,) * 3, rings=6, segments=10).transformed(None, thumb[-1]))
    arm = np.stack([[0, -3.8, 0.0], [0, -10, 0.3], [0, -32, 1.5]]) * s
    parts.append(tube(arm, np.array([2.4, 2.8, 3.6]) * s, sides=16))
    return merge_shapes(parts)


def hand(lm: np.ndarray, v_model: np.ndarray, normals: np.ndarray, landmarks68: np.ndarray, p: dict,
         skin_tone: np.ndarray) -> list[Prop]:
    """A hand over the mouth, under the chin, or on a cheek, its palm just off the skin."""
    shape = hand_shape(p)
    side = p["side"]
    if side > 0:  # a left hand: mirror in x (and flip the winding)
        shape = Shape(shape.vertices * [-1, 1, 1], shape.triangles[:, ::-1].copy())
    off = np.asarray(p["offset"]) * 0.6
    gap = PALM_HALF_THICKNESS_CM * p["scale"] + 0.4
    if p["pose"] == "mouth":  # palm on the mouth, fingers up and across, the wrist below to one side
        anchor = lm[60:68].mean(0) + [0, -0.6, 0]
        rot = _rot("z", side * 80 + p["roll_deg"])
        normal = np.array([0.0, 0.0, 1.0])
    elif p["pose"] == "chin":  # the chin resting on a loose fist, the forearm down
        shape = hand_shape(dict(p, curl=max(p["curl"], 1.4)))
        if side > 0:
            shape = Shape(shape.vertices * [-1, 1, 1], shape.triangles[:, ::-1].copy())
        anchor = lm[8] + [0, -2.6, -0.5]
        rot = _rot("x", 20) @ _rot("y", side * 20) @ _rot("z", side * 10 + p["roll_deg"])
        normal = np.array([0.0, -0.4, 1.0])
    else:  # a palm on one cheek, fingers up the side of the face
        anchor = lm[4 if side < 0 else 12]
        normal = normals[landmarks68[4 if side < 0 else 12]]
        rot = _rot("y", side * 50) @ _rot("z", p["roll_deg"] - side * 15)
    normal = normal / max(np.linalg.norm(normal), 1e-9)
    centre = anchor + normal * gap + off
    shape = shape.transformed(rot, centre)
    tone = np.asarray(skin_tone) * np.array([1.04, 0.98, 0.96])
    return [Prop("hand", shape, Material(tone, roughness=0.5, f0=0.028, subsurface=1.0))]


# -- microphone -----------------------------------------------------------------------------------------
def microphone(lm: np.ndarray, p: dict) -> list[Prop]:
    mouth = lm[60:68].mean(0)
    r = p["radius_cm"]
    head_centre = mouth + [p["side_cm"], -p["below_cm"], p["forward_cm"] + r]
    ball = ellipsoid((r, r * 1.05, r), rings=14, segments=22).transformed(None, head_centre)
    direction = np.array([np.sin(np.radians(p["handle_deg"])), -1.0, 0.35])
    direction /= np.linalg.norm(direction)
    base = head_centre + direction * r * 0.8
    handle = tube(np.stack([base, base + direction * 6, base + direction * 22]), np.array([1.3, 1.5, 1.9]) * r / 2.6,
                  sides=14)
    grille = Material(np.asarray(p["colour"]) if p["foam"] else np.array([0.2, 0.2, 0.21]),
                      roughness=0.9 if p["foam"] else 0.35, f0=0.03 if p["foam"] else 0.4,
                      pattern=PATTERN_KNIT if p["foam"] else PATTERN_GRILLE, period_cm=0.18)
    body = Material(np.array([0.015, 0.015, 0.016]), roughness=0.3, f0=0.05)
    return [Prop("microphone_head", ball, grille), Prop("microphone_handle", handle, body)]


# -- hat ------------------------------------------------------------------------------------------------
def hat(lm: np.ndarray, v_model: np.ndarray, p: dict, hair_thickness_cm: float) -> list[Prop]:
    brow = lm[17:27, 1].mean()
    rim_y = brow + p["rim_above_brow_cm"]
    band = v_model[np.abs(v_model[:, 1] - rim_y) < 1.0]
    xs, zs = band[:, 0], band[:, 2]
    cx, cz = 0.0, (zs.max() + zs.min()) / 2
    pad = 0.4 + hair_thickness_cm * 0.6
    rx, rz = np.abs(xs).max() + pad, (zs.max() - zs.min()) / 2 + pad
    top = v_model[:, 1].max() + hair_thickness_cm + 0.8
    height = top - rim_y
    kind = p["kind"]
    t = np.linspace(0, 1, 10)
    if kind == "beanie":
        dome = np.stack([np.cos(t * np.pi / 2) * 1.02, 0.15 + np.sin(t * np.pi / 2) * 1.05], 1)
        prof = np.concatenate([[[1.02, -0.3]], dome])
    else:
        prof = np.concatenate([[[1.0, 0.0]], np.stack([np.cos(t * np.pi / 2), 0.25 + 0.75 * np.sin(t * np.pi / 2)], 1)])
    if kind == "brimmed":
        prof = np.array([[1.05, 0.0], [1.0, 0.75], [0.9, 1.0], [0.0, 1.02]])
    crown = lathe(prof, 28)
    crown = Shape(crown.vertices * [rx, height, rz] + [cx, rim_y, cz], crown.triangles)
    material = Material(np.asarray(p["colour"]), roughness=0.8, f0=0.03,
                        pattern=PATTERN_KNIT if kind == "beanie" else PATTERN_NONE, period_cm=0.5)
    parts = [crown]
    if kind == "cap":
        a = np.linspace(-np.pi / 2, np.pi / 2, 14)
        front = np.stack([np.sin(a) * rx, np.zeros_like(a), np.cos(a) * rz], 1)
        outer = np.stack([np.sin(a) * rx * 0.9, np.zeros_like(a), np.cos(a) * (rz + p["brim_cm"]) - 0.5], 1)
        parts.append(_slab(front, outer, 0.35).transformed(_rot("x", p["brim_drop_deg"]), [cx, rim_y + 0.3, cz]))
    elif kind == "brimmed":
        a = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        inner = np.stack([np.sin(a) * rx, np.zeros_like(a), np.cos(a) * rz], 1)
        outer = np.stack([np.sin(a) * (rx + p["brim_cm"]), np.zeros_like(a), np.cos(a) * (rz + p["brim_cm"])], 1)
        outer[:, 1] -= 1.0 * np.cos(a) ** 2  # brim drooping front and back
        parts.append(_slab(inner, outer, 0.3, closed=True).transformed(None, [cx, rim_y + 0.2, cz]))
    shape = merge_shapes(parts)
    rot = _rot("y", p["yaw_deg"]) @ _rot("x", -p["tilt_deg"])
    pivot = np.array([cx, rim_y, cz])
    shape = Shape((shape.vertices - pivot) @ rot.T + pivot, shape.triangles)
    return [Prop("hat", shape, material)]


def _slab(inner: np.ndarray, outer: np.ndarray, thickness: float, closed: bool = False) -> Shape:
    """A thin sheet between two matching polylines (a brim): top, bottom and the outer edge."""
    n = len(inner)
    up = np.array([0.0, thickness / 2, 0.0])
    verts = np.concatenate([inner + up, outer + up, outer - up, inner - up])
    rings = 4
    rows = []
    for r in range(rings if closed else rings - 1):
        a, b = r * n, ((r + 1) % rings) * n
        for k in range(n if closed else n - 1):
            k1 = (k + 1) % n
            rows += [[a + k, a + k1, b + k1], [a + k, b + k1, b + k]]
    return Shape(verts, np.asarray(rows, np.int64))


__all__ = ["PATTERN_NONE", "build_occluders", "glasses_geometry", "lens_layer", "sample_occluders"]
