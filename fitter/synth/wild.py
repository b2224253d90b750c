"""The wild appearance: synthetic faces that contain what the fitter cannot represent.

The clean renders use the fitter's own image model (smooth per-vertex albedo, SH Lambertian light, nothing in
front of the face, a smooth background): judged on them, the photometric stages look better than they are.
A wild case is the same random face (identity, expression, pose, camera and wrinkles as ``sample_case``
draws them) seen as a photograph: skin texture with pores, freckles, moles, facial hair and hair-by-hair
eyebrows; hair with volume and sometimes a fringe; a key light with GGX highlights on an oily T-zone, soft
cast shadows and ambient occlusion, subsurface-softened diffuse light; glasses, hands, microphones and hats
in front of the face; photographic or procedural backgrounds; clothes; and a camera's blur, noise, white
balance, exposure and JPEG. Some faces are small in the frame.

Each effect is drawn from its own seeded stream (fitter.synth.effects) and listed, with its parameters, in
the case (``case.effects``) and in the rendered case; the pixels of the face hidden by an occluder are
recorded (``RenderedCase.occlusion``). See docs/benchmark.md for every effect and its ranges.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as nnf

from ..camera import MODEL_TO_OPENCV, model_to_camera
from ..camera import project as project_camera
from ..model.morphable import MorphableModel
from ..render import (
    interpolate_packed,
    rasterize,
    sample_texture,
    sh_shading,
    vertex_normals,
)
from .backgrounds import render_background, sample_background
from .camera_effects import apply_optics, apply_sensor, encode, sample_camera
from .clothing import clothing_props, sample_clothing
from .effects import Effect, effect_rng, find
from .eyes import MOUTH, TEETH, TOOTH_WIDTH_CM, eye_albedo, mouth_rim_teeth
from .hair import (
    HAIR_SHEEN,
    HEAD_CENTRE_Z,
    fringe_layer,
    hair_fuzz,
    hair_shell,
    hair_tangents,
    hair_textures,
    kajiya_kay,
    long_hair,
    sample_fringe,
    sample_hair,
    strand_streaks,
)
from .lighting import environment_sh, key_light, sample_lighting
from .occluders import build_occluders, glasses_geometry, lens_layer, sample_occluders
from .reflectance import SKIN_F0, environment_specular, ggx_specular, subsurface_blur
from .scenes import (
    RenderedCase,
    SyntheticCase,
    appearance,
    case_K,
    case_vertices,
    cornea_triangles,
    dense_surface,
    project_points,
)
from .shadows import ambient_occlusion, depth_view, shadow
from .shapes import PATTERN_FABRIC, PATTERN_GRILLE, PATTERN_KNIT, Prop
from .skin import (
    ALBEDO,
    BUMP,
    HAIR,
    ROUGHNESS,
    SCALP,
    SPECULAR,
    TEXTURE_SIZE,
    sample_albedo,
    skin_maps,
)

SUPERSAMPLE = 2  # rendered at this multiple of the output size, then area-downsampled (antialiasing)
SHADOW_MAP_SIZE = 1024  # pixels of the key light's depth map (about 0.5 mm per pixel over a head)
BUMP_STRENGTH = 0.06  # how far the pore/grain vector (unit-variance components) tilts the specular normal
ENV_SPECULAR = 0.5  # the room reflected by skin: dimmer than the SH radiance (the room is not all light)
FACE_REGION = "face"  # the occlusion mask records the pixels of this model region hidden by occluders
OCCLUDED_COVERAGE = 0.5  # an output pixel is occluded when occluders cover at least this share of it
TEETH_FROM_RIM = 0.45  # mouth-cap pixels this close to the upper rim (interpolated rim weight) show teeth
TEETH_LIGHT = 0.6  # least key light and sky that reach the teeth
CROWN_HEIGHT = 11.0  # cm, model frame: hair falls away from the crown, above and behind the head's centre
STRAND_CONTRAST = 2.5  # how strongly the screen-space strand streaks modulate hair albedo
LENS_DEPTH_TOLERANCE_CM = 0.3  # surfaces nearer than the lenses' nearest rim point, less this, are in front
SH_Y0 = 0.2820948  # the constant SH basis function: coefficient 0 times this is the mean radiance
REQUIRED = ("lighting", "skin_texture")  # the render cannot do without these; every other effect can go
SMALL_FACE_PX = (60.0, 120.0)  # face width (landmark box) of the small-face cases, output pixels

# Kinds of scene triangles.
SKIN, EYE, MOUTH_CAP, HAIR_SHELL, PROP = range(5)


# -- sampling -------------------------------------------------------------------------------------------
def sample_wild(model: MorphableModel, case: SyntheticCase, seed: int, index: int,
                without: tuple[str, ...] | frozenset = ()) -> list[Effect]:
    """Every effect of a wild case, from (seed, index); ``without`` names effects to leave out."""
    missing = sorted(set(without) & set(REQUIRED))
    if missing:
        raise ValueError(f"the wild appearance cannot render without {missing}; leave them out of `without`")
    hair, hair_colour = sample_hair(seed, index)
    presents_male = effect_rng(seed, index, "presentation").random() < 0.5  # facial hair only
    rng = effect_rng(seed, index, "reflectance")
    effects = sample_lighting(seed, index)
    effects += [
        Effect("specular", "reflectance", {"strength": rng.uniform(0.4, 1.1)}),
        Effect("subsurface", "reflectance", {"sigma_cm": [rng.uniform(0.15, 0.3), rng.uniform(0.06, 0.12),
                                                          rng.uniform(0.03, 0.07)], "mix": rng.uniform(0.5, 0.85)}),
        Effect("cast_shadows", "shadow", {"softness_cm": find(effects, "lighting").params["key_softness_cm"]}),
        Effect("ambient_occlusion", "shadow", {"strength": rng.uniform(0.6, 1.0)}),
    ]
    effects += sample_albedo(seed, index, hair_colour, presents_male)
    effects += hair + sample_fringe(seed, index, hair[0])
    effects += sample_occluders(seed, index, hair[0].params["style"])
    effects += sample_background(seed, index) + sample_clothing(seed, index)
    effects += sample_camera(seed, index)
    rng = effect_rng(seed, index, "small_face")
    if rng.random() < 0.2:
        effects.append(Effect("small_face", "framing", {"face_width_px": rng.uniform(*SMALL_FACE_PX)}))
    return [e for e in effects if e.name not in set(without)]


def face_width_px(model: MorphableModel, case: SyntheticCase) -> float:
    """Width in pixels of the box around the case's 68 projected landmarks (what a detector's box measures)."""
    with torch.no_grad():
        _, cam = case_vertices(model, case)
    return float(np.ptp(project_points(cam[0, model.topology.landmarks68].numpy(), case)[:, 0]))


def frame_small_face(model: MorphableModel, case: SyntheticCase, width_px: float) -> None:
    """Move the face away along its line of sight until its landmark box is ``width_px`` wide (the face
    stays where it was in the image)."""
    for _ in range(4):  # width ~ 1 / depth; a few fixed-point steps absorb the perspective's departure from it
        case.translation = case.translation * (face_width_px(model, case) / width_px)


# -- rendering ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _coarse_layout(model: MorphableModel) -> tuple[np.ndarray, np.ndarray]:
    """Model triangle ids of appearance(model).triangles' first rows (the corneas removed), their UV rows."""
    keep = np.ones(len(model.topology.triangles), bool)
    keep[cornea_triangles(model)] = False
    ids = np.flatnonzero(keep)
    return ids, model.topology.triangle_uvs[ids]


class _SceneBuilder:
    """Meshes gathered into one triangle list with per-triangle kinds and materials and per-vertex extras."""

    def __init__(self) -> None:
        self.verts, self.normals, self.tris, self.tri_uvs = [], [], [], []
        self.kind, self.prop, self.colour, self.teeth, self.uvs = [], [], [], [], []
        self.nv = self.nuv = 0

    def add(self, verts: torch.Tensor, tris: np.ndarray, normals: torch.Tensor, kind, prop: int = -1,
            colour: torch.Tensor | None = None, uvs: np.ndarray | None = None, tri_uvs: np.ndarray | None = None,
            teeth: torch.Tensor | None = None) -> None:
        n = len(verts)
        self.verts.append(verts)
        self.normals.append(normals)
        self.tris.append(np.asarray(tris, np.int64) + self.nv)
        self.kind.append(np.broadcast_to(np.asarray(kind), (len(tris),)).astype(np.int64))
        self.prop.append(np.full(len(tris), prop, np.int64))
        self.colour.append(torch.zeros(n, 3) if colour is None else colour.float())
        self.teeth.append(torch.zeros(n) if teeth is None else teeth.float())
        if uvs is None:
            self.tri_uvs.append(np.full((len(tris), 3), -1, np.int64))
        else:
            self.uvs.append(np.asarray(uvs, np.float32))
            rows = np.where(tri_uvs >= 0, tri_uvs + self.nuv, -1)
            self.tri_uvs.append(rows)
            self.nuv += len(uvs)
        self.nv += n

    def build(self) -> dict:
        uvs = np.concatenate(self.uvs + [np.full((1, 2), 0.5, np.float32)])  # the last row: "no UV"
        tri_uvs = np.concatenate(self.tri_uvs)
        tri_uvs = np.where(tri_uvs >= 0, tri_uvs, len(uvs) - 1)
        return {"verts": torch.cat(self.verts).float(), "normals": torch.cat(self.normals).float(),
                "tris": np.concatenate(self.tris), "tri_uvs": tri_uvs, "uvs": torch.as_tensor(uvs),
                "kind": np.concatenate(self.kind), "prop": np.concatenate(self.prop),
                "colour": torch.cat(self.colour), "teeth": torch.cat(self.teeth)}


def _to_camera(points: np.ndarray, case: SyntheticCase) -> torch.Tensor:
    return model_to_camera(torch.as_tensor(points, dtype=torch.float32)[None],
                           torch.as_tensor(case.rotation, dtype=torch.float32)[None],
                           torch.as_tensor(case.translation, dtype=torch.float32)[None])[0]


def _pattern(kind: torch.Tensor, period: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N,) albedo multiplier of procedural patterns at camera-frame points."""
    out = torch.ones(len(points))
    q = points / period[:, None].clamp(min=1e-3)
    grille = kind == PATTERN_GRILLE
    if grille.any():
        cell = (q[grille] - q[grille].floor() - 0.5).abs()
        out[grille] = torch.where((cell[:, 0] < 0.28) & (cell[:, 1] < 0.28), 0.25, 1.0)
    knit = kind == PATTERN_KNIT
    if knit.any():
        out[knit] = 0.75 + 0.25 * torch.sin(2 * np.pi * q[knit, 0]).abs()
    fabric = kind == PATTERN_FABRIC
    if fabric.any():  # soft stripes with a fine weave
        stripes = 0.5 + 0.5 * torch.sin(2 * np.pi * q[fabric, 1]).clamp(-0.6, 0.6) / 0.6
        weave = torch.sin(2 * np.pi * 6 * q[fabric, 0]) * torch.sin(2 * np.pi * 6 * q[fabric, 1])
        out[fabric] = 0.82 + 0.15 * stripes + 0.03 * weave
    return out


@dataclass
class _Scene:
    """Everything rasterized for a case (camera frame): the gathered meshes, the props, the shadow casters."""

    mesh: dict  # _SceneBuilder.build()
    props: list
    caster: tuple  # (verts (V, 3), triangles (T, 3)): coarse head, hair, props
    hair_thickness: float
    hair_mask: np.ndarray  # (2, S, S) scalp hair coverage of the skin tiles
    hair_albedo: np.ndarray  # (2, S, S, 3)


def _build_scene(model: MorphableModel, case: SyntheticCase, v_model: torch.Tensor, cam: torch.Tensor) -> _Scene:
    fx = case.effects
    app = appearance(model)
    topo = model.topology
    coarse = torch.cat([cam, _mouth_centre(cam, app.mouth_loop)])  # (V + 1, 3)
    scene = _SceneBuilder()
    # the head: dense displaced surface (or the coarse one without wrinkles), eyes, mouth cap
    if case.displacement is not None:
        surf = dense_surface(model, case, v_model, None)
        verts, tris, normals = surf.vertices[0], surf.triangles, surf.normals[0]
        rows, material, uvs = surf.triangle_uvs, surf.triangle_material, surf.uvs
    else:
        ids, rows = _coarse_layout(model)
        verts, tris = coarse, app.triangles
        normals = vertex_normals(verts[None], tris)[0]
        material, uvs = topo.triangle_material[ids], topo.uvs
    extra = len(tris) - len(rows)  # the mouth cap's fan, after the model's triangles
    tri_uvs = np.concatenate([rows, np.full((extra, 3), -1)])
    material = np.concatenate([material, np.full(extra, -1)])
    names = topo.material_names
    eye_ids = [names.index(n) for n in names if n.startswith(("M_Sclera", "M_Iris"))]
    kind = np.where(material < 0, MOUTH_CAP, np.where(np.isin(material, eye_ids), EYE, SKIN))
    colour = torch.zeros(len(verts), 3)
    colour[:topo.num_vertices] = torch.as_tensor(eye_albedo(model, case.iris, _stream(case, "eyes")))
    rim = tris[kind == MOUTH_CAP][:, 2]
    teeth = torch.zeros(len(verts))
    teeth[rim] = torch.as_tensor(mouth_rim_teeth(verts[rim].numpy(), _head_axis(case, (0.0, 1.0, 0.0))))
    scene.add(verts, tris, normals, kind, colour=colour, uvs=uvs, tri_uvs=tri_uvs, teeth=teeth)

    # hair volume and props, which also cast shadows
    hair = find(fx, "hair")
    if hair:
        hair_mask, hair_albedo = hair_textures(model, hair, TEXTURE_SIZE)
    else:
        hair_mask = np.zeros((2, TEXTURE_SIZE, TEXTURE_SIZE), np.float32)
        hair_albedo = np.zeros((2, TEXTURE_SIZE, TEXTURE_SIZE, 3), np.float32)
    v_np = v_model.numpy()
    n_model = vertex_normals(v_model[None], topo.triangles)[0].numpy()
    caster_v, caster_t = [coarse], [app.triangles]
    if hair:
        shell, shell_ids = hair_shell(model, v_np, n_model, hair, hair_mask)
        if len(shell.triangles):
            sv = _to_camera(shell.vertices, case)
            scene.add(sv, shell.triangles, vertex_normals(sv[None], shell.triangles)[0], HAIR_SHELL,
                      uvs=topo.uvs, tri_uvs=topo.triangle_uvs[shell_ids])
            caster_v.append(sv)
            caster_t.append(shell.triangles)
    thickness = hair.params["thickness_cm"] if hair else 0.0
    props: list[Prop] = build_occluders(v_np, n_model, topo.landmarks68, fx, find(fx, "skin_texture").params["tone"],
                                        thickness)
    clothing = find(fx, "clothing")
    if clothing:
        props += clothing_props(v_np, clothing)
    for k, prop in enumerate(props):
        pv = _to_camera(prop.shape.vertices, case)
        scene.add(pv, prop.shape.triangles, vertex_normals(pv[None], prop.shape.triangles)[0], PROP, prop=k)
        caster_v.append(pv)
        caster_t.append(prop.shape.triangles)
    return _Scene(scene.build(), props, _concat_meshes(caster_v, caster_t), thickness, hair_mask, hair_albedo)


@dataclass
class _Surface:
    """Per covered pixel of the render (N of them): geometry and material."""

    points: torch.Tensor  # (N, 3) camera frame
    normals: torch.Tensor  # (N, 3) unit, facing the camera for two-sided props
    view: torch.Tensor  # (N, 3) unit, towards the camera
    kind: torch.Tensor  # (N,)
    albedo: torch.Tensor  # (N, 3) linear
    roughness: torch.Tensor
    f0: torch.Tensor
    subsurface: torch.Tensor  # (N,) 1 where light scatters under the skin
    bump: torch.Tensor  # (N, 3)
    hair: torch.Tensor  # (N,) 1 where the surface is hair (scalp, brows, beard)
    scalp: torch.Tensor  # (N,) 1 where it is the hair of the head (which hides the face where it covers it)


def _surface(model: MorphableModel, case: SyntheticCase, scene: _Scene, frags) -> _Surface:
    mesh = scene.mesh
    fx = case.effects
    tri = frags.pix_triangle
    points = interpolate_packed(frags, mesh["verts"][None])
    n = nnf.normalize(interpolate_packed(frags, mesh["normals"][None]), dim=-1, eps=1e-12)
    view = -nnf.normalize(points, dim=-1)
    kind = torch.as_tensor(mesh["kind"])[tri]
    n = torch.where(((kind == PROP) & ((n * view).sum(-1) < 0))[:, None], -n, n)  # props are two-sided
    count = len(tri)
    s = _Surface(points, n, view, kind, torch.zeros(count, 3), torch.full((count,), 0.5),
                 torch.full((count,), 0.04), torch.zeros(count), torch.zeros(count, 3), torch.zeros(count),
                 torch.zeros(count))

    # skin and hair: the case's UV textures
    seed = int(_stream(case, "skin").integers(2**31))
    maps = torch.as_tensor(skin_maps(model, fx, scene.hair_mask, scene.hair_albedo, seed).maps)
    textured = (kind == SKIN) | (kind == HAIR_SHELL)
    uv = interpolate_packed(frags, mesh["uvs"], torch.as_tensor(mesh["tri_uvs"]))
    texel = sample_texture(uv[textured][None, None], maps[None])[0, 0]  # (n, C)
    shell = kind[textured] == HAIR_SHELL
    hairy = torch.where(shell, torch.ones(len(texel)), texel[:, HAIR].clamp(0, 1))
    s.albedo[textured] = texel[:, ALBEDO]
    s.roughness[textured] = texel[:, ROUGHNESS]
    s.f0[textured] = SKIN_F0 * texel[:, SPECULAR]
    s.hair[textured] = hairy
    s.scalp[textured] = torch.where(shell, torch.ones(len(texel)), texel[:, SCALP].clamp(0, 1))
    s.subsurface[textured] = 1 - hairy
    s.bump[textured] = texel[:, BUMP]
    # eyes (wet: sharp highlights) and the mouth's inside (teeth along the upper rim)
    eye = kind == EYE
    s.albedo[eye] = interpolate_packed(frags, mesh["colour"][None])[eye]
    s.roughness[eye], s.f0[eye] = 0.06, 0.03
    cap = kind == MOUTH_CAP
    rim = interpolate_packed(frags, mesh["teeth"][None, :, None])[cap, 0]
    # teeth fade in towards the rim, with darker gaps between them (along the head's left-right axis)
    across = points[cap] @ torch.as_tensor(_head_axis(case, (1.0, 0.0, 0.0)))
    gaps = 1 - 0.5 * torch.cos(np.pi * across / TOOTH_WIDTH_CM) ** 16
    teeth = ((rim - TEETH_FROM_RIM) / 0.2).clamp(0, 1) * gaps
    s.albedo[cap] = torch.as_tensor(MOUTH) + teeth[:, None] * (torch.as_tensor(TEETH) - torch.as_tensor(MOUTH))
    s.roughness[cap], s.f0[cap] = 0.3, 0.03
    # props: their materials and patterns
    on_prop = kind == PROP
    if on_prop.any():
        pid = torch.as_tensor(mesh["prop"])[tri[on_prop]]

        def table(field) -> torch.Tensor:
            return torch.as_tensor(np.array([field(p.material) for p in scene.props], np.float32))[pid]

        pattern = _pattern(table(lambda m: m.pattern).long(), table(lambda m: m.period_cm), points[on_prop])
        s.albedo[on_prop] = table(lambda m: m.albedo) * pattern[:, None]
        s.roughness[on_prop] = table(lambda m: m.roughness)
        s.f0[on_prop] = table(lambda m: m.f0)
        s.subsurface[on_prop] = table(lambda m: m.subsurface)
    return s


def _shade(model: MorphableModel, case: SyntheticCase, scene: _Scene, frags,
           s: _Surface) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) outgoing radiance and (N, 3) diffuse irradiance of the covered pixels."""
    fx = case.effects
    mesh = scene.mesh
    light = find(fx, "lighting")
    key_dir, key_rgb = key_light(light)
    env = environment_sh(light)
    shadows = find(fx, "cast_shadows")
    lit = torch.ones(len(s.points))
    if shadows:
        view = depth_view(scene.caster[0], scene.caster[1], key_dir.numpy(), SHADOW_MAP_SIZE)
        lit = shadow(view, s.points, s.normals, shadows.params["softness_cm"])
    ao = torch.ones(len(s.points))
    occ = find(fx, "ambient_occlusion")
    if occ:  # per vertex of the scene, interpolated (occlusion varies slowly over the surface)
        ao_v = ambient_occlusion(scene.caster[0], scene.caster[1], mesh["verts"],
                                 nnf.normalize(mesh["normals"], dim=-1, eps=1e-12))
        ao = 1 - occ.params["strength"] * (1 - interpolate_packed(frags, ao_v[None, :, None])[:, 0])
    # the cap stands for the mouth's cavity but lies deeper than teeth do: teeth get the light of the lips' line
    teeth = (s.kind == MOUTH_CAP) & (s.albedo[:, 0] > 2 * float(MOUTH[0]))
    lit = torch.where(teeth, lit.clamp(min=TEETH_LIGHT), lit)
    ao = torch.where(teeth, ao.clamp(min=TEETH_LIGHT), ao)
    irradiance = (sh_shading(s.normals[None], env)[0].clamp(min=0) * ao[:, None]
                  + key_rgb[None] * ((s.normals @ key_dir).clamp(min=0) * lit)[:, None])
    sub = find(fx, "subsurface")
    if sub:
        px_per_cm = case.focal * frags.width / case.image_size[1] / float(s.points[:, 2].median())
        image = frags.scatter(irradiance)[0].numpy()
        skin = frags.scatter(s.subsurface[:, None])[0, ..., 0].numpy() > 0.5
        image = subsurface_blur(image, skin, np.asarray(sub.params["sigma_cm"]) * px_per_cm, sub.params["mix"])
        irradiance = torch.as_tensor(image).reshape(-1, 3)[frags.pix_index]
    albedo = s.albedo.clone()
    sheen = torch.zeros(len(s.points), 3)
    hairy = s.hair > 0.05
    if hairy.any():  # strands: streaks along the hair's flow and the fibres' anisotropic highlight
        hair = find(fx, "hair")
        crown = _to_camera(np.array([[0.0, CROWN_HEIGHT, HEAD_CENTRE_Z - 3.0]]), case)[0]
        down = torch.as_tensor(_head_axis(case, (0.0, -1.0, 0.0)))
        t = hair_tangents(s.points[hairy], s.normals[hairy], crown, down)
        K = case_K(case, frags.width / case.image_size[1])
        ahead = (project_camera((s.points[hairy] + 0.3 * t)[None], K) - project_camera(s.points[hairy][None], K))[0]
        direction = nnf.normalize(ahead, dim=-1, eps=1e-9)
        noise = torch.as_tensor(_stream(case, "strands").random(frags.image_size, dtype=np.float32))
        pix = frags.pix_index[hairy] % (frags.width * frags.height)
        xy = torch.stack([pix % frags.width, pix // frags.width], -1).float() + 0.5
        streak = 1 + STRAND_CONTRAST * (strand_streaks(xy, direction, noise) - 0.5)
        w = s.hair[hairy][:, None]
        albedo[hairy] = albedo[hairy] * (1 - w + w * streak[:, None])
        kk = kajiya_kay(t, s.view[hairy], key_dir, s.normals[hairy]) * lit[hairy]
        tint = 0.5 + 0.5 * albedo[hairy] / albedo[hairy].mean(-1, keepdim=True).clamp(min=1e-3)
        strength = hair.params["sheen"] if hair else HAIR_SHEEN
        sheen[hairy] = w * strength * kk[:, None] * key_rgb[None] * tint * streak[:, None]
    colour = albedo * irradiance + sheen
    spec = find(fx, "specular")
    if spec:
        ns = nnf.normalize(s.normals + BUMP_STRENGTH * s.bump, dim=-1)
        key_spec = ggx_specular(ns, s.view, key_dir, s.roughness, s.f0) * lit
        env_spec = ENV_SPECULAR * environment_specular(ns, s.view, s.roughness, s.f0, env) * ao[:, None]
        skin_share = (1 - s.hair)[:, None]
        colour = colour + skin_share * spec.params["strength"] * (key_spec[:, None] * key_rgb[None] + env_spec)
    return colour, irradiance


def render_wild(model: MorphableModel, case: SyntheticCase, supersample: int = SUPERSAMPLE) -> RenderedCase:
    """Render a wild case to an 8-bit photo with its ground truth (fragments of the unoccluded face at the
    output resolution, as for clean cases), occlusion mask and effect list."""
    fx = case.effects
    app = appearance(model)
    topo = model.topology
    h, w = case.image_size
    big = (h * supersample, w * supersample)
    with torch.no_grad():
        v_model, cam = case_vertices(model, case)
        scene = _build_scene(model, case, v_model[0], cam[0])
        mesh = scene.mesh
        frags = rasterize(mesh["verts"][None], mesh["tris"], case_K(case, supersample), big)
        surface = _surface(model, case, scene, frags)
        colour, irradiance = _shade(model, case, scene, frags, surface)

        # compose over the background; soft hair outline, fringe and lenses on top
        bg_fx = find(fx, "background_photo") or find(fx, "background_procedural")
        background = render_background(bg_fx, big, supersample) if bg_fx else np.full((*big, 3), 0.3, np.float32)
        image = frags.scatter(colour, torch.as_tensor(background)[None])[0].numpy()
        px_per_cm = case.focal * supersample / float(cam[0, :, 2].mean())
        hair_px = frags.scatter((surface.hair > 0.6).float()[:, None])[0, ..., 0].numpy() > 0.5
        hair = find(fx, "hair")
        covered = frags.mask[0].numpy()
        if hair and hair.params["length_cm"] > 0:
            clothes = np.array([p.name == "clothing" for p in scene.props] + [False])[np.maximum(mesh["prop"], 0)]
            on_clothes = (mesh["kind"] == PROP) & clothes
            paint = ~covered
            paint.reshape(-1)[frags.pix_index.numpy()] |= on_clothes[frags.pix_triangle.numpy()]
            image, curtain = long_hair(image, hair_px, paint, hair.params["length_cm"], px_per_cm,
                                       _stream(case, "long_hair"))
            hair_px |= curtain > 0.5
            covered = covered | (curtain > 0.5)
        image = hair_fuzz(image, hair_px, covered, px_per_cm, _stream(case, "hair_fuzz"))
        # what hides the face: occluding props, and the head's hair (shell, or scalp hair drawn on the skin)
        is_occ = np.array([p.occluder for p in scene.props] + [False])[np.maximum(mesh["prop"], 0)]
        occ_tri = torch.as_tensor((mesh["kind"] == PROP) & is_occ)[frags.pix_triangle]
        occluder = frags.scatter(torch.maximum(occ_tri.float(), surface.scalp)[:, None])[0, ..., 0].numpy()
        fringe = find(fx, "hair_fringe")
        if fringe and hair:
            n_model = vertex_normals(v_model, topo.triangles)[0].numpy()
            cover = fringe_layer(model, cam[0].numpy(), _normals_cam(n_model, case), _head_axis(case, (0, -1, 0)),
                                 lambda p: project_points(p, case) * supersample, frags.depth[0].numpy(), fringe,
                                 hair, px_per_cm)
            irr = frags.scatter(irradiance)[0].numpy()
            variation = 0.7 + 0.6 * _stream(case, "fringe").random((*big, 1), dtype=np.float32)
            strand = np.asarray(hair.params["colour"], np.float32) * variation
            image = image * (1 - cover[..., None]) + cover[..., None] * strand * np.maximum(irr, 0.02)
            occluder = np.maximum(occluder, cover)
        glasses = find(fx, "glasses")
        if glasses:
            g = glasses_geometry(v_model[0, topo.landmarks68].numpy(), v_model[0].numpy(), glasses.params)
            rims_cam = [_to_camera(r, case).numpy() for r in g["rims"]]
            rims = [project_points(r, case) * supersample for r in rims_cam]
            env_colour = (environment_sh(find(fx, "lighting"))[0] * SH_Y0).clamp(min=0).numpy() * 2
            depth = frags.depth[0].numpy()
            lens_depth = min(float(r[:, 2].min()) for r in rims_cam) - LENS_DEPTH_TOLERANCE_CM
            image = lens_layer(image, rims, glasses.params, env_colour, _stream(case, "lenses"),
                               (depth == 0) | (depth > lens_depth))

        # the output: antialiased, occlusion recorded, through the camera
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        occluder = cv2.resize(occluder, (w, h), interpolation=cv2.INTER_AREA)
        coarse = torch.cat([cam[0], _mouth_centre(cam[0], app.mouth_loop)])
        small = rasterize(coarse[None], app.triangles, case_K(case), (h, w))
        face_px = _region_pixels(model, small.triangle_id[0].numpy(), FACE_REGION)
        occlusion = (occluder >= OCCLUDED_COVERAGE) & face_px
        image = apply_optics(image, fx)
        image = apply_sensor(image, fx, face_px & ~occlusion)
        photo = encode(image, fx)
    return RenderedCase(image=photo, camera_vertices=cam[0].numpy(), model_vertices=v_model[0].numpy(),
                        triangle_id=small.triangle_id[0].numpy(), barycentrics=small.bary[0].numpy(),
                        occlusion=occlusion, effects=[e.record() for e in fx])


def _stream(case: SyntheticCase, purpose: str) -> np.random.Generator:
    """The render's own random numbers for one purpose (eyes, skin, strands...), one stream each, so that
    leaving an effect out does not change the others' draws."""
    return effect_rng(case.seed, case.index, f"render:{purpose}")


def _mouth_centre(cam: torch.Tensor, loop: np.ndarray) -> torch.Tensor:
    """The mouth cap's centre vertex (1, 3), pushed into the mouth as in render_case."""
    centre = cam[torch.as_tensor(loop)].mean(0, keepdim=True)
    return centre + 0.6 * (centre / centre.norm(dim=-1, keepdim=True))


def _head_axis(case: SyntheticCase, axis) -> np.ndarray:
    """A model-frame direction in the camera frame."""
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec(case.rotation).as_matrix() @ MODEL_TO_OPENCV.numpy().astype(np.float64)
    return (r @ np.asarray(axis, np.float64)).astype(np.float32)


def _normals_cam(normals_model: np.ndarray, case: SyntheticCase) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    r = Rotation.from_rotvec(case.rotation).as_matrix() @ MODEL_TO_OPENCV.numpy().astype(np.float64)
    return (normals_model @ r.T).astype(np.float32)


def _concat_meshes(verts: list[torch.Tensor], tris: list[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
    offsets = np.cumsum([0] + [len(v) for v in verts[:-1]])
    return torch.cat(verts).float(), np.concatenate([np.asarray(t, np.int64) + o for t, o in zip(tris, offsets)])


def _region_pixels(model: MorphableModel, triangle_id: np.ndarray, region: str) -> np.ndarray:
    """(H, W) bool: pixels whose visible triangle of appearance(model).triangles has a corner in ``region``."""
    app = appearance(model)
    inside = np.concatenate([model.topology.region(region), [False]])  # + the mouth cap's centre
    tri_in = inside[app.triangles].any(1)
    return (triangle_id >= 0) & tri_in[np.maximum(triangle_id, 0)]
