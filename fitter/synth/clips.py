"""Synthetic video clips and multi-view captures with known ground truth, for ``facefit bench video``.

A clip is one random subject (identity, skin, eyes, light and camera from :func:`~fitter.synth.scenes.sample_case`)
moving over time. Every track is a smooth function of time sampled at the frame times, so the same seed gives
the same motion at any frame rate:

- head pose: yaw / pitch / roll, each a sum of a few low-frequency sinusoids (within +-30 deg), and a small
  translation drift;
- expressions: random sparse expressions held as keyframes every 0.6-1.6 s, eased from one to the next;
- blinks: both eyes close for 100-250 ms (``eyeBlink_L/R`` rise to 1 and fall back) every 2-6 s;
- speech: ``jawOpen`` opens and closes at a 3-6 Hz syllable rate during runs of speech separated by pauses.

Frames are rendered one by one through :func:`~fitter.synth.scenes.render_case` (same subject, that frame's
expression and pose). The multi-view generator puts 3-5 cameras around the head (known K, R, t as a
:class:`~fitter.io.rig.Rig`) and renders one instant from each.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..io.rig import Rig, RigCamera, intrinsic_matrix
from ..model.morphable import MorphableModel
from ..render import sh_rotation
from .cases import render_case, sample_case
from .lighting import seen_from
from .scenes import RenderedCase, SyntheticCase

# Head pose: amplitude limits (deg) of yaw, pitch and roll, each a sum of POSE_TERMS sinusoids whose
# frequencies lie in POSE_HZ (slow turns and nods; people rarely turn faster than ~0.5 Hz when talking).
POSE_LIMITS_DEG = np.array([30.0, 20.0, 10.0])
POSE_TERMS = 3
POSE_HZ = (0.05, 0.4)
DRIFT_CM = np.array([2.0, 1.5, 3.0])  # translation drift amplitude (x, y, depth), same frequencies as the pose
# Expressions: keyframes this far apart (s), each with 1-3 strong and a few weak expressions.
EXPRESSION_HOLD_S = (0.6, 1.6)
STRONG_RANGE = (0.15, 0.6)
WEAK_RANGE = (0.0, 0.2)
# Blinks (both eyes): spontaneous blinks come every few seconds and last 100-250 ms (closing + opening).
BLINK_INTERVAL_S = (2.0, 6.0)
BLINK_DURATION_S = (0.10, 0.25)
BLINK_CLOSED_FRACTION = 0.2  # the lids stay shut for this fraction of a blink, between closing and opening
BLINK_NAMES = ("eyeBlink_L", "eyeBlink_R")
# Speech: jaw opening per syllable at a 3-6 Hz syllable rate, in runs of speech separated by pauses.
JAW_NAME = "jawOpen"
SYLLABLE_HZ = (3.0, 6.0)
SPEECH_RUN_S = (0.8, 2.5)
PAUSE_S = (0.3, 1.0)
JAW_AMPLITUDE = (0.15, 0.5)  # peak jawOpen of a syllable, varying slowly within this range
JAW_AMPLITUDE_HZ = 0.7  # how fast the syllable amplitude varies
SPEECH_RAMP_S = 0.08  # speech fades in and out over this time at the ends of a run
# Multi-view: cameras spread over this yaw range around the head, with a little pitch.
VIEW_YAW_SPREAD_DEG = (60.0, 120.0)
VIEW_PITCH_DEG = 10.0


@dataclass
class SyntheticClip:
    """Ground truth of a clip: per-frame arrays (T, ...) and the subject's constant appearance (``base``)."""

    base: SyntheticCase  # identity, skin, iris, light, focal, image size, seed; its pose/expression unused
    fps: float
    times: np.ndarray  # (T,) seconds
    expression: np.ndarray  # (T, E)
    yaw_pitch_roll: np.ndarray  # (T, 3) degrees, Euler "YXZ" as in scenes.sample_case
    rotation: np.ndarray  # (T, 3) axis-angle (facefit convention)
    translation: np.ndarray  # (T, 3) cm
    blinks: np.ndarray  # (N, 2) start and end times (s) of each blink
    speech: np.ndarray  # (M, 2) start and end times (s) of each run of speech
    syllable_hz: float
    extras: dict = field(default_factory=dict)

    @property
    def identity(self) -> np.ndarray:
        return self.base.identity

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsics shared by all frames (principal point at the image centre)."""
        h, w = self.base.image_size
        return intrinsic_matrix(self.base.focal, self.base.focal, w / 2.0, h / 2.0)

    def __len__(self) -> int:
        return len(self.times)

    def case(self, k: int) -> SyntheticCase:
        """Frame k as a :class:`SyntheticCase` (the subject's appearance, this frame's expression and pose)."""
        yaw, pitch, roll = (float(v) for v in self.yaw_pitch_roll[k])
        return dataclasses.replace(self.base, index=k, expression=self.expression[k].astype(np.float32),
                                   rotation=self.rotation[k].copy(), translation=self.translation[k].copy(),
                                   yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll,
                                   expression_extreme=False, extras={"time": float(self.times[k])})


# -- tracks: continuous functions of time ------------------------------------------------------------------
def sinusoid_track(rng: np.random.Generator, times: np.ndarray, limit: float, terms: int,
                   hz: tuple[float, float]) -> np.ndarray:
    """A sum of ``terms`` sinusoids with random frequencies in ``hz`` whose amplitudes add up to at most
    ``limit``, so the track never leaves [-limit, limit]."""
    weights = rng.dirichlet(np.ones(terms)) * limit * rng.uniform(0.6, 1.0)
    freqs = rng.uniform(*hz, terms)
    phases = rng.uniform(0, 2 * np.pi, terms)
    return (weights * np.sin(2 * np.pi * freqs * times[:, None] + phases)).sum(1)


def ease(s: np.ndarray) -> np.ndarray:
    """Cosine ease from 0 to 1 over s in [0, 1]: zero slope at both ends, so chained keyframes stay smooth."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(s, 0.0, 1.0))


def keyframe_track(key_times: np.ndarray, key_values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Values (T, E) eased between keyframes (N, E) at ``key_times`` (N,), held after the last."""
    seg = np.clip(np.searchsorted(key_times, times, side="right") - 1, 0, len(key_times) - 2)
    s = (times - key_times[seg]) / (key_times[seg + 1] - key_times[seg])
    e = ease(s)[:, None]
    return key_values[seg] * (1 - e) + key_values[seg + 1] * e


def event_windows(rng: np.random.Generator, duration: float, gap: tuple[float, float],
                  length: tuple[float, float], first: float = 0.0) -> np.ndarray:
    """(N, 2) start/end times of events of random ``length`` separated by random ``gap``s, from ``first``."""
    out, t = [], first
    while t < duration:
        d = rng.uniform(*length)
        out.append((t, t + d))
        t += d + rng.uniform(*gap)
    return np.asarray(out, np.float64).reshape(-1, 2)


def blink_track(windows: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Eyelid closure (T,) in [0, 1]: per blink an eased closing, a short shut phase and an eased opening."""
    out = np.zeros_like(times)
    for start, end in windows:
        d = end - start
        ramp = d * (1 - BLINK_CLOSED_FRACTION) / 2
        closing = ease((times - start) / ramp)
        opening = 1 - ease((times - (end - ramp)) / ramp)
        inside = (times > start) & (times < end)
        out = np.where(inside, np.maximum(out, np.minimum(closing, opening)), out)
    return out


def speech_track(rng: np.random.Generator, runs: np.ndarray, times: np.ndarray, syllable_hz: float) -> np.ndarray:
    """jawOpen (T,): a raised cosine per syllable, its peak varying slowly in JAW_AMPLITUDE, faded in and out at
    the ends of each run of speech and zero in the pauses."""
    envelope = np.zeros_like(times)
    for start, end in runs:
        fade_in = ease((times - start) / SPEECH_RAMP_S)
        fade_out = 1 - ease((times - (end - SPEECH_RAMP_S)) / SPEECH_RAMP_S)
        fade = np.minimum(fade_in, fade_out)
        envelope = np.maximum(envelope, np.where((times > start) & (times < end), fade, 0.0))
    lo, hi = JAW_AMPLITUDE
    amplitude = lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * JAW_AMPLITUDE_HZ * times + rng.uniform(0, 2 * np.pi)))
    syllables = 0.5 - 0.5 * np.cos(2 * np.pi * syllable_hz * times + rng.uniform(0, 2 * np.pi))
    return envelope * amplitude * syllables


def expression_keyframes(rng: np.random.Generator, names: list[str], duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Keyframe times (N,) covering the clip and sparse random expressions (N, E), without the blink and jaw
    channels (driven by their own tracks)."""
    key_times = [0.0]
    while key_times[-1] <= duration:
        key_times.append(key_times[-1] + rng.uniform(*EXPRESSION_HOLD_S))
    free = [i for i, n in enumerate(names) if n not in BLINK_NAMES and n != JAW_NAME]
    values = np.zeros((len(key_times), len(names)))
    for row in values:
        strong = rng.choice(free, size=rng.integers(1, 4), replace=False)
        weak = rng.choice(free, size=rng.integers(0, 4), replace=False)
        row[weak] = rng.uniform(*WEAK_RANGE, len(weak))
        row[strong] = rng.uniform(*STRONG_RANGE, len(strong))
    values[0] *= rng.uniform(0, 1)  # clips start anywhere from neutral to expressive
    return np.asarray(key_times), values


def sample_clip(model: MorphableModel, seed: int, fps: float = 25.0, duration: float = 3.0, size: int = 256,
                detail: bool = False, appearance: str = "clean") -> SyntheticClip:
    """A random clip of ``duration`` seconds at ``fps``: ground-truth tracks of one random subject, rendered with
    ``appearance`` (``clean`` or ``wild``: see fitter.synth.cases.sample_case)."""
    if not (fps > 0 and duration > 0):
        raise ValueError(f"fps and duration must be > 0, got {fps} and {duration}")
    base = sample_case(model, 0, seed, size=size, detail=detail, appearance=appearance)
    rng = np.random.default_rng([seed, 1])  # the tracks' own stream: independent of fps
    times = np.arange(int(round(duration * fps))) / float(fps)
    names = model.expression_names

    ypr = np.stack([sinusoid_track(rng, times, lim, POSE_TERMS, POSE_HZ) for lim in POSE_LIMITS_DEG], 1)
    rotation = Rotation.from_euler("YXZ", ypr, degrees=True).as_rotvec()
    drift = np.stack([sinusoid_track(rng, times, lim, POSE_TERMS, POSE_HZ) for lim in DRIFT_CM], 1)
    translation = base.translation[None] + drift

    key_times, key_values = expression_keyframes(rng, names, duration)
    expression = keyframe_track(key_times, key_values, times)
    blinks = event_windows(rng, duration, BLINK_INTERVAL_S, BLINK_DURATION_S, first=rng.uniform(0.2, 1.5))
    for name in BLINK_NAMES:
        if name in names:
            expression[:, names.index(name)] = blink_track(blinks, times)
    syllable_hz = float(rng.uniform(*SYLLABLE_HZ))
    speech = event_windows(rng, duration, PAUSE_S, SPEECH_RUN_S, first=rng.uniform(0.0, 0.5))
    if JAW_NAME in names:
        expression[:, names.index(JAW_NAME)] = speech_track(rng, speech, times, syllable_hz)
    return SyntheticClip(base, float(fps), times, expression.astype(np.float32), ypr, rotation, translation,
                         blinks, speech, syllable_hz)


# -- rendering ---------------------------------------------------------------------------------------------
def with_look(model: MorphableModel, case: SyntheticCase, appearance: str | None) -> SyntheticCase:
    """``case`` with ``appearance``'s look: the effects a case of the same seed has with that appearance (drawn
    once per subject, index 0), keeping this case's face, pose and camera; the case itself when it already has
    that appearance (or ``appearance`` is None)."""
    if appearance is None or appearance == case.appearance:
        return case
    look = sample_case(model, 0, case.seed, size=case.image_size[0], detail=case.displacement is not None,
                       appearance=appearance)
    return dataclasses.replace(case, appearance=look.appearance, effects=look.effects)


def render_clip(model: MorphableModel, clip: SyntheticClip, appearance: str | None = None,
                supersample: int = 2) -> Iterator[RenderedCase]:
    """The clip's frames, rendered one at a time (a long clip is never held in memory), with the clip's own look
    (``sample_clip(..., appearance=...)``) or ``appearance``'s."""
    look = with_look(model, clip.base, appearance)
    for k in range(len(clip)):
        case = dataclasses.replace(clip.case(k), appearance=look.appearance, effects=look.effects)
        yield render_case(model, case, supersample=supersample)


# -- multi-view ------------------------------------------------------------------------------------------
@dataclass
class MultiViewScene:
    """One instant seen by several cameras. ``head`` holds the head pose in the world frame (origin near the
    head, axes those of a front camera: x right, y down, z away from the front camera), ``views`` the same
    instant in each camera's frame, as render_case takes it."""

    head: SyntheticCase
    rig: Rig
    views: dict[str, SyntheticCase]


def view_case(head: SyntheticCase, camera: RigCamera) -> SyntheticCase:
    """The world-frame head pose of ``head`` seen from ``camera``: ``R_view = R_cam R_head`` and
    ``t_view = R_cam t_head + t_cam`` (``x_cam = R_cam x_world + t_cam``), with the camera's focal length, and
    ``head``'s light (SH, or a wild render's lighting effect) fixed in the world: each camera sees it from its
    own side, as a rig in one room does (before late 2026-12-03 every view was lit from its own camera's side).

    render_case puts the principal point at the image centre, so the camera's K must too."""
    h, w = camera.image_size
    K = camera.K
    if K is None or abs(K[0, 0] - K[1, 1]) > 1e-9 * K[0, 0] or not np.allclose(K[:2, 2], [w / 2.0, h / 2.0]):
        raise ValueError(f"camera {camera.name!r}: render_case needs square pixels and a centred principal point")
    r_head = Rotation.from_rotvec(head.rotation).as_matrix()
    rotation = Rotation.from_matrix(camera.R @ r_head).as_rotvec()
    translation = camera.R @ head.translation + camera.t
    light = (sh_rotation(camera.R) @ torch.as_tensor(head.light, dtype=torch.float32)).numpy()
    effects = [seen_from(e, camera.R) if e.name == "lighting" else e for e in head.effects]
    return dataclasses.replace(head, rotation=rotation, translation=translation, focal=float(K[0, 0]),
                               image_size=(int(h), int(w)), light=light, effects=effects,
                               extras={**head.extras, "camera": camera.name})


def look_at(centre: np.ndarray, target: np.ndarray, down: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """World -> camera rotation (OpenCV axes) of a camera at ``centre`` looking at ``target``, image rows along
    the world direction ``down``."""
    z = np.asarray(target, np.float64) - centre
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(down, np.float64), z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def sample_multiview(model: MorphableModel, seed: int, n_cameras: int | None = None, size: int = 256,
                     detail: bool = False) -> MultiViewScene:
    """3-5 cameras (or ``n_cameras``) spread in yaw around a random head, all looking at it from the distance
    scenes.sample_case would put a single camera at, with that case's focal length."""
    rng = np.random.default_rng([seed, 2])
    n = int(n_cameras or rng.integers(3, 6))
    single = sample_case(model, 0, seed, size=size, detail=detail)
    distance = float(single.translation[2])
    yaw, pitch, roll = rng.uniform(-20, 20), rng.uniform(-10, 10), rng.uniform(-8, 8)
    rotation = Rotation.from_euler("YXZ", [yaw, pitch, roll], degrees=True).as_rotvec()
    head = dataclasses.replace(single, rotation=rotation, translation=rng.uniform(-1.0, 1.0, 3), yaw_deg=float(yaw),
                               pitch_deg=float(pitch), roll_deg=float(roll))
    spread = np.radians(rng.uniform(*VIEW_YAW_SPREAD_DEG))
    azimuths = np.linspace(-spread / 2, spread / 2, n) + rng.uniform(-0.05, 0.05, n)
    elevations = np.radians(rng.uniform(-VIEW_PITCH_DEG, VIEW_PITCH_DEG, n))
    K = intrinsic_matrix(single.focal, single.focal, size / 2.0, size / 2.0)
    cameras = {}
    for i, (a, e) in enumerate(zip(azimuths, elevations)):
        # the front camera (a = e = 0) sits at -z looking along +z; positive elevation is above (y is down)
        centre = distance * np.array([np.sin(a) * np.cos(e), -np.sin(e), -np.cos(a) * np.cos(e)])
        R = look_at(centre, np.zeros(3))
        name = f"cam{i}"
        cameras[name] = RigCamera(name, (size, size), K.copy(), R, -R @ centre)
    rig = Rig(cameras, True, 1.0, {"format": "synthetic", "seed": int(seed), "units": "cm"})
    return MultiViewScene(head, rig, {name: view_case(head, cam) for name, cam in cameras.items()})


def render_multiview(model: MorphableModel, scene: MultiViewScene, appearance: str | None = None,
                     supersample: int = 2) -> dict[str, RenderedCase]:
    """The instant rendered from every camera of the scene."""
    look = with_look(model, scene.head, appearance)
    return {name: render_case(model, view_case(look, camera), supersample=supersample)
            for name, camera in scene.rig.cameras.items()}
