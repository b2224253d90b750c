"""Subjects of many frames: a clip, unordered photos of one person, or a multi-view capture, with one identity.

A subject is frames x views: each image is one view at one time instant; expression and head pose belong to
the instant, identity to the subject, cameras to the views (fitter.state). A single photo is 1 x 1 and goes
through :func:`fitter.optimize.fit.fit_subject` directly; this module schedules the phases a subject of many
frames needs on top of it, every phase being ``fit_stages`` runs of the preset's stage lists:

1. **Starts.** Every detected image gets the closed-form start of a photo (fitter.optimize.init), its rotation
   from ``[video] start_rotation`` (MediaPipe's transform, the 3D landmarks' pose guide, or PnP alone). The
   instants' head poses are those starts (one camera) or their consensus through the rig (multi-view: the
   calibrated extrinsics, or extrinsics estimated from the starts for an uncalibrated rig, the first view
   being the world). Instants without any detection keep their slot and are filled in time afterwards.
2. **Keyframes -> identity.** 8-16 instants (``[video] keyframes_*``) that are confidently detected, sharp,
   near-neutral (the blendshape scores) and spread over yaw, pitch and (a clip) time are fitted jointly with
   the preset's own photo ``[[stages]]``: identity (and focal length, and an uncalibrated rig's extrinsics)
   shared, the per-frame terms of ``[video] averaged_terms`` divided by the number of instants, so that many
   correlated frames count like one photo against the identity prior instead of being over-trusted (eos scales
   its prior by the image count to the same effect); the views of one instant add up (they are independent
   evidence), each weighted by how far the face is turned from it (fitter.optimize.views). A multi-view subject
   then runs ``[[rig_stages]]`` on the same keyframes: the views of one instant compared with each other
   (``crossview``: one skin point, one colour), the cue that places cameras the landmarks cannot.
3. **Tracking** (``[[track_stages]]``), identity fixed: instants in time order, ``track_chunk`` at a time, each
   warm-started from the previous one's result, the temporal term seeing the two instants before as constants.
   Unordered photos have no time: each is refitted alone with the photo stages and the shared identity.
4. **Windows** (``[[window_stages]]``): overlapping windows of ``window`` instants with the temporal term;
   where the window stages free the identity (fast) it is carried from window to window and their mean
   (weighted by size) is the subject's; default keeps the keyframes' identity (its image terms read more).
5. **Polish** (``[[polish_stages]]``): the windows again with that consensus identity fixed, so every frame
   agrees with the one identity that is exported.

Segments: a run without detections longer than ``max_gap_s``, or a face jumping more than ``cut_jump`` face
sizes between consecutive frames (a cut), starts a new segment; the temporal term never links two segments
and tracking restarts from the closed-form start.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..camera import MODEL_TO_OPENCV, matrix_to_axis_angle
from ..energy.base import TermContext, registered_terms
from ..energy.landmarks import landmark_embedding
from ..energy.pose_guidance import embedded_mean, guide_rotation
from ..energy.temporal import CONTEXT_KEY
from ..evidence import Evidence, FrameEvidence
from ..io.rig import Rig
from ..model.morphable import MorphableModel
from ..scene import Scene
from ..state import RIG_PARAMETERS, VIEW_PARAMETERS, FitState
from .fit import fit_stages, focal_guess
from .init import InitSettings, embedding_bases, initialise
from .presets import validate
from .schedule import StageLog
from .shot_identity import identity_distances_mm, landmark_stages, shot_instants

PER_INSTANT = ("expression", "rotation", "translation")
CONTEXT_INSTANTS = 2  # a second difference reaches two instants back
# Half of a keyframe candidate's value is its quality (confidence x sharpness x neutrality), half how far its
# pose lies from the keyframes already chosen (saturating at [video] keyframe_spread_deg).
SPREAD_SHARE = 0.5
SHARPNESS_SIZE = 128  # the face crop is resampled to this side before its Laplacian variance is measured
# Blendshape scores that say nothing about how neutral a face is: MediaPipe's own "neutral" and eye gaze.
NOT_EXPRESSION = ("_neutral", "eyeLook")

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class FrameSource:
    """Per-image evidence too big to hold for a whole clip, loaded for the phases whose terms need it:
    ``photo(k)`` (float32 sRGB in [0, 1]) and ``masks(k)`` (PartMasks or None) of image k."""

    photo: Callable[[int], np.ndarray] | None = None
    masks: Callable[[int], object] | None = None


@dataclass
class SubjectFit:
    """The fit of a subject of many frames: the final state (every instant and image, identity shared) and
    what each phase did."""

    state: FitState
    evidence: Evidence  # every image, with its segment
    detected: np.ndarray  # (F,) bool per image
    instant_detected: np.ndarray  # (T,) bool: some image of the instant has a detection
    keyframes: list[int]  # instants the identity was fitted from
    segments: np.ndarray  # (T,) segment of each instant
    times: np.ndarray | None  # (T,) seconds (None for unordered photos)
    ordered: bool  # instants follow each other in time
    focal_guesses: list[float]  # per view
    phases: dict[str, list[StageLog]] = field(default_factory=dict)  # phase -> every stage run
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    suspects: list[dict] = field(default_factory=list)  # stages the no-harm guard rejected, by phase
    rmse_px: np.ndarray | None = None  # (F,) landmark RMSE per image (NaN without a detection)
    nme: np.ndarray | None = None  # (F,)
    landmarks_fitted: np.ndarray | None = None  # (F, N, 2) projected model landmarks
    rig: dict = field(default_factory=dict)  # calibrated / scale_known / fitted extrinsics
    shots: list[dict] = field(default_factory=list)  # a cut clip: each segment's own identity's distance (mm)
    photos: list[dict] = field(default_factory=list)  # unordered photos: each one's own identity's distance (mm)

    @property
    def num_instants(self) -> int:
        return self.state.num_instants

    def vertices(self, model: MorphableModel, instant: int | None = None) -> torch.Tensor:
        """Fitted model-frame vertices (V, 3) of an instant, or the neutral face (zero expression)."""
        with torch.no_grad():
            s = self.state
            expression = torch.zeros(1, model.num_expression) if instant is None else s.expression[instant:instant + 1]
            return model.vertices(s.identity, expression.to(s.device))[0]


# -- small geometry helpers -----------------------------------------------------------------------------
def mean_rotation(matrices: list[np.ndarray]) -> np.ndarray:
    """The chordal L2 mean of rotations (3, 3): the rotation nearest to their sum."""
    u, _, vt = np.linalg.svd(np.sum(matrices, 0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def rotvec_matrix(v) -> np.ndarray:
    return Rotation.from_rotvec(np.asarray(v, np.float64)).as_matrix()


def yaw_pitch(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch) in degrees of head rotations (N, 3) axis-angle (intrinsic Y-X-Z, as the benchmarks)."""
    return Rotation.from_rotvec(np.asarray(rotation, np.float64)).as_euler("YXZ", degrees=True)[:, :2]


def face_sharpness(rgb: np.ndarray, landmarks: np.ndarray, weights: np.ndarray) -> float:
    """Variance of the Laplacian of the grey face crop resampled to SHARPNESS_SIZE (scale-free: a blurred or
    motion-smeared frame scores low whatever the face's size)."""
    pts = landmarks[weights > 0]
    if len(pts) < 2:
        return 0.0
    lo, hi = np.floor(pts.min(0)).astype(int), np.ceil(pts.max(0)).astype(int)
    h, w = rgb.shape[:2]
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.resize(grey, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def neutrality(frame: FrameEvidence) -> float:
    """1 - the strongest expression score of the detector (1 without scores): near-neutral frames read the
    identity best."""
    scores = frame.face.blendshapes or {}
    values = [v for k, v in scores.items() if not k.startswith(NOT_EXPRESSION)]
    return 1.0 - float(max(values, default=0.0))


# -- segments and keyframes -----------------------------------------------------------------------------
def find_segments(times: np.ndarray | None, detected: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                  max_gap_s: float, cut_jump: float, cuts: list[int] = ()) -> np.ndarray:
    """Segment of each instant (T,): a new one after a run without detections longer than ``max_gap_s``, or at
    a cut: the face centre jumping more than ``cut_jump`` face sizes between consecutive detections, or a shot
    cut before one of the instants ``cuts`` (:func:`shot_cuts`; also when it falls on an undetected instant
    between two detections)."""
    segments = np.zeros(len(detected), np.int64)
    if times is None:
        return segments
    shot = np.zeros(len(detected), bool)
    shot[list(cuts)] = True
    current, last, cut_since = 0, None, False
    for i in range(len(detected)):
        cut_since = cut_since or bool(shot[i])
        if detected[i] and last is not None:
            gap = times[i] - times[last]
            jump = np.linalg.norm(centres[i] - centres[last]) / max(sizes[last], 1e-6)
            if (i - last > 1 and gap > max_gap_s) or jump > cut_jump or cut_since:
                current += 1
        segments[i] = current
        if detected[i]:
            last, cut_since = i, False
    return segments


def splitting_cuts(segments: np.ndarray, detected: np.ndarray, cuts: list[int]) -> list[int]:
    """The segment starts that a shot cut made: a start with a cut since the last detected instant before it (a
    cut into a stretch without any face, and out of it again, splits the clip once, where the face returns)."""
    out = []
    for i in np.flatnonzero(np.diff(segments) != 0) + 1:
        before = np.flatnonzero(detected[:i])
        since = before[-1] if len(before) else -1
        if any(since < c <= i for c in cuts):
            out.append(int(i))
    return out


def shot_cuts(changes: np.ndarray | None, shot_cut: float) -> list[int]:
    """Instants whose colour change from the one before exceeds ``shot_cut`` (a shot cut precedes them)."""
    if changes is None:
        return []
    return [int(i) for i in np.flatnonzero(np.nan_to_num(changes, nan=0.0) > shot_cut)]


def select_keyframes(quality: np.ndarray, angles: np.ndarray, count: int, spread_deg: float) -> list[int]:
    """``count`` indices (sorted) maximising quality and spread: greedy, each pick valuing its quality and its
    distance in ``angles`` (yaw, pitch, and for a clip the time coordinate) to the picks so far, saturating at
    ``spread_deg``."""
    n = len(quality)
    if count >= n:
        return list(range(n))
    best = quality / max(float(quality.max()), 1e-12)
    chosen = [int(np.argmax(best))]
    for _ in range(count - 1):
        d = np.linalg.norm(angles[:, None, :] - angles[None, chosen, :], axis=-1).min(1)
        value = best * ((1 - SPREAD_SHARE) + SPREAD_SHARE * np.minimum(d / spread_deg, 1.0))
        value[chosen] = -np.inf
        chosen.append(int(np.argmax(value)))
    return sorted(chosen)


def time_coordinate(times: np.ndarray, count: int, spread_deg: float) -> np.ndarray:
    """Capture times as a keyframe-spread coordinate in degrees: ``count`` keyframes evenly spaced over the clip
    lie ``spread_deg`` apart, as far as two fully spread poses. A single image's identity error drifts along a
    clip with its pose and expression, so keyframes that all fall in one part of it share their error
    (flame-head-tracker fits evenly spaced frames)."""
    span = float(times.max() - times.min()) if len(times) else 0.0
    if span <= 0:
        return np.zeros(len(times))
    return (times - times.min()) / span * max(count - 1, 1) * spread_deg


# -- presets of a phase ---------------------------------------------------------------------------------
@dataclass
class RigFreedom:
    """What the fit may move of the cameras: focal lengths, extrinsics (uncalibrated rig), the rig's scale."""

    focal: bool = True
    extrinsics: bool = False
    scale: bool = False


def phase_preset(preset: dict, stages: list[dict], instants: int, freedom: RigFreedom, identity: bool,
                 rig_moves: bool, views: bool = False) -> dict:
    """``preset`` whose ``stages`` are a phase's: averaged terms divided by the number of instants fitted
    together (the views of one instant are independent evidence, consecutive instants are not); identity,
    focal length and the rig freed only as the phase and the rig allow; stages marked ``subjects = false`` left
    out (they run for single photos only); with ``views`` (a multi-view subject)
    the view-weighted terms trust each view by how far the face is turned from it (fitter.optimize.views)."""
    video = preset["video"]
    averaged = set(video["averaged_terms"])
    divisor = float(instants) ** float(video["averaged_power"])
    out = dict(preset)
    out["stages"] = []
    for stage in stages:
        if not stage.get("subjects", True):  # a photo-only stage (default's 256-px photometric stage)
            continue
        free = [p for p in stage["free"] if (identity or p != "identity") and (freedom.focal or p != "log_focal")]
        free = [p for p in free if p not in RIG_PARAMETERS]
        if rig_moves and {"rotation", "translation"} & set(free):  # the head moves: so do the cameras
            free += list(VIEW_PARAMETERS) if freedom.extrinsics else []
            free += ["rig_log_scale"] if freedom.scale else []
        weights = {k: (float(v) / divisor if k in averaged else float(v)) for k, v in stage["weights"].items()}
        extra = rig_rates(stage, free)
        if views and video["view_weighted_terms"]:
            extra["view_weights"] = {"degrees": float(video["view_noise_deg"]),
                                     "power": float(video["view_noise_power"]),
                                     "terms": list(video["view_weighted_terms"])}
        out["stages"].append(dict(stage, free=free, weights=weights, **extra))
    return out


def rig_rates(stage: dict, free: list[str]) -> dict:
    """A stage whose learning rates are a table per parameter (Adam) gets rates for the rig parameters it now
    moves: a view's rotation and translation those of the head, the rig's log scale the head rotation's (both
    dimensionless, ~1e-3 a step); the table's smallest rate where it has no rate for the head."""
    lr = stage.get("lr")
    if not isinstance(lr, dict):
        return {}
    like = {"view_rotation": "rotation", "view_translation": "translation", "rig_log_scale": "rotation"}
    added = {p: lr.get(like[p], min(lr.values())) for p in free if p in like and p not in lr}
    return {"lr": {**lr, **added}} if added else {}


# -- the schedule ---------------------------------------------------------------------------------------
class SubjectFitter:
    """One subject's phases (see the module docstring); ``run()`` returns the :class:`SubjectFit`."""

    def __init__(self, model: MorphableModel, evidence: Evidence, preset: dict, rig: Rig | None = None,
                 view_names: list[str] | None = None, progress: Progress | None = None,
                 source: FrameSource | None = None) -> None:
        if not evidence.frames:
            raise ValueError("a subject needs at least one frame")
        self.model = model
        self.preset = preset
        self.video = preset["video"]
        self.progress = progress
        self.source = source or FrameSource()
        self._masks: dict[int, object] = {}
        self.warnings: list[str] = []
        self.phases: dict[str, list[StageLog]] = {}
        self.suspects: list[dict] = []
        self.timings: dict[str, float] = {}
        frames = evidence.frames
        self.detected = np.array([bool(f.detected) for f in frames])
        if not self.detected.any():
            raise ValueError("no frame of the subject has a detected face")
        instants = evidence.instants()
        self.instant = np.arange(len(frames)) if instants is None else instants
        self.views = evidence.views()
        self.num_instants = int(self.instant.max()) + 1
        self.num_views = int(self.views.max()) + 1
        self.instant_detected = np.zeros(self.num_instants, bool)
        np.logical_or.at(self.instant_detected, self.instant, self.detected)
        times = [f.time_s for f in frames]
        self.ordered = all(t is not None for t in times)  # a clip (or camera videos): instants follow in time
        self.times = None
        if all(t is not None for t in times):
            self.times = np.zeros(self.num_instants)
            self.times[self.instant] = np.asarray(times, np.float64)
        self.rig = rig
        self.view_names = view_names
        self.multiview = rig is not None and self.num_views > 1
        self.freedom = self._freedom()
        centres, sizes = self._face_centres(frames)
        cuts = shot_cuts(self._colour_changes(frames), float(self.video["shot_cut"]))
        self.segments = find_segments(self.times, self.instant_detected, centres, sizes,
                                      float(self.video["max_gap_s"]), float(self.video["cut_jump"]), cuts)
        self._warn_shot_cuts(frames, splitting_cuts(self.segments, self.instant_detected, cuts))
        self.evidence = Evidence([dataclasses.replace(f, segment=int(self.segments[i]))
                                  for f, i in zip(frames, self.instant)])

    # -- cameras -----------------------------------------------------------------------------------------
    def _freedom(self) -> RigFreedom:
        if self.rig is None:
            return RigFreedom(focal=float(self.preset["camera"]["focal_px"]) <= 0)
        cams = [self.rig.cameras[n] for n in self.view_names]
        known_k = all(c.K is not None for c in cams)
        scale_known = str(self.rig.source.get("units", "cm")) != "unknown"
        return RigFreedom(focal=not known_k, extrinsics=self.multiview and not self.rig.calibrated,
                          scale=self.multiview and self.rig.calibrated and not scale_known)

    def _colour_changes(self, frames: list[FrameEvidence]) -> np.ndarray | None:
        """(T,) each instant's colour change from the instant before (a one-camera clip; None otherwise)."""
        if self.num_views > 1 or all(f.colour_change is None for f in frames):
            return None
        out = np.full(self.num_instants, np.nan)
        for f, i in zip(frames, self.instant):
            out[i] = np.nan if f.colour_change is None else f.colour_change
        return out

    def _warn_shot_cuts(self, frames: list[FrameEvidence], cuts: list[int]) -> None:
        """Say where shot cuts split the clip: its shots still share one identity, which is wrong when they
        show different people."""
        if not cuts:
            return
        number = self._frame_numbers(frames)
        where = ", ".join(str(number[i]) for i in cuts[:8])
        where += ", ..." if len(cuts) > 8 else ""
        plural = "s" if len(cuts) > 1 else ""
        self.warnings.append(f"{len(cuts)} shot cut{plural} (before frame{plural} {where}): the {len(cuts) + 1} shots "
                             "are not linked in time but are fitted with one identity; if they show different "
                             "people, fit each shot on its own (--start/--end; only the largest face of a frame is "
                             "fitted, so crop a clip that shows two people)")

    def _frame_numbers(self, frames: list[FrameEvidence]) -> dict[int, int]:
        """Each instant's source frame number (the instant's own index where its frame has none), for messages."""
        return {int(i): f.frame_index if f.frame_index is not None else int(i) for f, i in zip(frames, self.instant)}

    def _face_centres(self, frames: list[FrameEvidence]) -> tuple[np.ndarray, np.ndarray]:
        """Per instant: the centre and size (px) of the face in the first view that detected it."""
        centres = np.zeros((self.num_instants, 2))
        sizes = np.ones(self.num_instants)
        seen = np.zeros(self.num_instants, bool)
        for f, i in zip(frames, self.instant):
            if f.detected and not seen[i]:
                pts = f.face.landmarks[f.face.landmark_weights > 0]
                if len(pts):
                    centres[i] = pts.mean(0)
                    sizes[i] = float(np.sqrt(np.prod(np.maximum(pts.max(0) - pts.min(0), 1.0))))
                    seen[i] = True
        return centres, sizes

    def focal_guesses(self) -> list[float]:
        out = []
        for v in range(self.num_views):
            cam = self.rig.cameras[self.view_names[v]] if self.rig is not None else None
            if cam is not None and cam.K is not None:
                out.append(float(np.sqrt(cam.K[0, 0] * cam.K[1, 1])))
                continue
            frame = next(f for f in self.evidence.frames if f.view == v)
            out.append(focal_guess(frame.image_size, self.preset, frame.exif_focal_35mm))
        return out

    # -- 1. starts ---------------------------------------------------------------------------------------
    def image_starts(self, focals: list[float]) -> list[FitState | None]:
        """The closed-form start of every detected image in its own camera (None without a detection)."""
        model, preset = self.model, self.preset
        fmt = self.evidence.landmark_format
        embedding = landmark_embedding(model, fmt)
        settings = InitSettings(**preset["init"], sigma=float(preset["landmarks"]["sigma"]))
        mode = self.video["start_rotation"]
        points = embedded_mean(model, fmt) if mode == "landmarks3d" else None
        if mode == "pnp":
            settings = dataclasses.replace(settings, use_transform=False)
        starts: list[FitState | None] = []
        for f in self.evidence.frames:
            if not f.detected:
                starts.append(None)
                continue
            focal = focals[f.view]
            rotation = None
            if points is not None:
                h, w = f.image_size
                K = np.array([[focal, 0, w / 2.0], [0, focal, h / 2.0], [0, 0, 1.0]])
                guide = guide_rotation(f.face, points, K, "landmarks3d")
                if guide is not None:
                    rotation = matrix_to_axis_angle(guide @ MODEL_TO_OPENCV.numpy().astype(np.float64))
            try:
                starts.append(initialise(model, embedding, f.face.landmarks, f.face.landmark_weights, f.image_size,
                                         focal, blendshapes=f.face.blendshapes, transform=f.face.transform,
                                         settings=settings, rotation=rotation, fix_rotation=rotation is not None))
            except RuntimeError as exc:  # PnP failed on this frame: leave it out of the data
                self.warnings.append(f"frame {len(starts)}: no closed-form start ({exc}); treated as undetected")
                starts.append(None)
        return starts

    def initial_state(self, starts: list[FitState | None], focals: list[float]) -> FitState:
        """Every instant and image: identity the mean of the starts', head poses per instant (through the rig),
        cameras per view; instants without a detection filled in time."""
        model = self.model
        ok = [s for s in starts if s is not None]
        first = next(f for f in self.evidence.frames)
        state = FitState.single(model.num_identity, model.num_expression, first.image_size, focals[0],
                                frames=self.num_instants, device=model.device)
        state.identity = torch.stack([s.identity for s in ok]).mean(0)
        state.log_focal = torch.tensor([math.log(f) for f in focals], device=model.device)
        sizes, principal = [], []
        for v in range(self.num_views):
            frame = next(f for f in self.evidence.frames if f.view == v)
            h, w = frame.image_size
            sizes.append([h, w])
            cam = self.rig.cameras[self.view_names[v]] if self.rig is not None else None
            principal.append(cam.K[:2, 2].tolist() if cam is not None and cam.K is not None else [w / 2.0, h / 2.0])
        state.image_size = torch.tensor(sizes, dtype=torch.int64, device=model.device)
        state.principal = torch.tensor(principal, dtype=torch.float32, device=model.device)
        state.frame_view = torch.as_tensor(self.views, device=model.device)
        if self.evidence.instants() is not None:
            state.frame_instant = torch.as_tensor(self.instant, device=model.device)
        expression = np.zeros((self.num_instants, model.num_expression))
        rotation = np.zeros((self.num_instants, 3))
        translation = np.tile([0.0, 0.0, 60.0], (self.num_instants, 1))
        if self.multiview:
            extrinsics = self._rig_extrinsics(starts)
            state.view_rotation = torch.tensor(np.stack([matrix_to_axis_angle(r) for r, _ in extrinsics]),
                                               dtype=torch.float32, device=model.device)
            state.view_translation = torch.tensor(np.stack([t for _, t in extrinsics]), dtype=torch.float32,
                                                  device=model.device)
            fixed = np.ones(self.num_views, bool) if not self.freedom.extrinsics else np.arange(self.num_views) == 0
            state.view_fixed = torch.as_tensor(fixed, device=model.device)
            if self.freedom.scale:
                state.rig_log_scale = torch.zeros((), device=model.device)
        for i in np.flatnonzero(self.instant_detected):
            images = [k for k in np.flatnonzero(self.instant == i) if starts[k] is not None]
            if not images:
                self.instant_detected[i] = False
                continue
            exprs, rots, trans = [], [], []
            for k in images:
                s = starts[k]
                r = rotvec_matrix(s.rotation[0].cpu().numpy())
                t = s.translation[0].cpu().numpy().astype(np.float64)
                if self.multiview:  # the head in the world: undo the view's extrinsics
                    rv, tv = extrinsics[self.views[k]]
                    r, t = rv.T @ r, rv.T @ (t - tv)
                exprs.append(s.expression[0].cpu().numpy())
                rots.append(r)
                trans.append(t)
            expression[i] = np.mean(exprs, 0)
            rotation[i] = matrix_to_axis_angle(mean_rotation(rots))
            translation[i] = np.mean(trans, 0)
            if self.multiview:  # one position seen by every view (each start's depth is a monocular guess)
                translation[i] = self._rig_translation(images, extrinsics, state, expression[i], rotation[i])
        dt = torch.float32
        state.expression = torch.tensor(expression, dtype=dt, device=model.device)
        state.rotation = torch.tensor(rotation, dtype=dt, device=model.device)
        state.translation = torch.tensor(translation, dtype=dt, device=model.device)
        fill_undetected(state, self.instant_detected, self.segments, self.times)
        return state

    def _rig_translation(self, images: list[int], extrinsics: list, state: FitState, expression: np.ndarray,
                         rotation: np.ndarray) -> np.ndarray:
        """The head's world translation that best projects its landmarks into every view of the instant, for a
        fixed rotation and shape: linear least squares after multiplying each projection by its depth
        (f (q + R_v t)_x - (u - cx) (q + R_v t)_z = 0, q the rest of the point's camera position), each row
        divided by the point's depth so that it weighs like a pixel residual."""
        mean, id_basis, ex_basis = embedding_bases(self.model, landmark_embedding(self.model,
                                                                                  self.evidence.landmark_format))
        points = mean + id_basis @ state.identity.cpu().numpy() + ex_basis @ expression
        head = rotvec_matrix(rotation) @ MODEL_TO_OPENCV.numpy().astype(np.float64)
        K = state.K().cpu().numpy().astype(np.float64)
        rows, rhs = [], []
        for k in images:
            face = self.evidence.frames[k].face
            rv, tv = extrinsics[self.views[k]]
            q = points @ (rv @ head).T + tv
            f, cx, cy = K[k, 0, 0], K[k, 0, 2], K[k, 1, 2]
            w = np.sqrt(np.asarray(face.landmark_weights, np.float64)) / np.clip(q[:, 2], 1e-3, None)
            for axis, c in ((0, cx), (1, cy)):
                d = face.landmarks[:, axis] - c
                rows.append((f * rv[axis][None, :] - d[:, None] * rv[2][None, :]) * w[:, None])
                rhs.append((d * q[:, 2] - f * q[:, axis]) * w)
        t, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
        return t

    def _rig_extrinsics(self, starts: list[FitState | None]) -> list[tuple[np.ndarray, np.ndarray]]:
        """World -> camera (R, t) per view: the rig's (calibrated), or estimated from the per-image starts with
        the first view as the world (uncalibrated: R_v = R_iv R_i0^T, t_v = t_iv - R_v t_i0, averaged)."""
        if not self.freedom.extrinsics:
            return [(np.asarray(self.rig.cameras[n].R, np.float64), np.asarray(self.rig.cameras[n].t, np.float64))
                    for n in self.view_names]
        poses: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for k, s in enumerate(starts):
            if s is not None:
                poses[(int(self.instant[k]), int(self.views[k]))] = (rotvec_matrix(s.rotation[0].cpu().numpy()),
                                                                     s.translation[0].cpu().numpy())
        out = [(np.eye(3), np.zeros(3))]
        for v in range(1, self.num_views):
            rs, ts = [], []
            for i in range(self.num_instants):
                if (i, 0) in poses and (i, v) in poses:
                    (r0, t0), (rv, tv) = poses[(i, 0)], poses[(i, v)]
                    r = rv @ r0.T
                    rs.append(r)
                    ts.append(tv - r @ t0)
            if not rs:
                self.warnings.append(f"view {self.view_names[v]}: never detected together with the first view "
                                     f"({self.view_names[0]}); its extrinsics start at the identity")
                out.append((np.eye(3), np.zeros(3)))
                continue
            out.append((mean_rotation(rs), np.mean(ts, 0)))
        return out

    # -- phases ------------------------------------------------------------------------------------------
    def _images_of(self, instants: list[int]) -> list[int]:
        """Detected images of the instants, ordered by instant then view."""
        wanted = set(instants)
        images = [k for k in range(len(self.instant)) if self.instant[k] in wanted and self.detected[k]]
        return sorted(images, key=lambda k: (self.instant[k], self.views[k]))

    def _run(self, phase: str, state: FitState, instants: list[int], stages: list[dict], identity: bool,
             focals: list[float], context: list[int] | None = None, rig_moves: bool = False) -> FitState:
        """Fit ``stages`` to the detected images of ``instants`` starting from ``state``; returns the sub-state."""
        images = self._images_of(instants)
        sub = state.select(instants, images)
        if context:
            sub.extras[CONTEXT_KEY] = {name: getattr(state, name)[context].detach().clone() for name in PER_INSTANT}
            sub.extras[CONTEXT_KEY]["times"] = torch.as_tensor(self.times[context], dtype=torch.float32)
        preset = phase_preset(self.preset, stages, len(instants), self.freedom, identity, rig_moves,
                              views=self.multiview)
        fit = fit_stages(self.model, self.phase_evidence(images, stages), preset, initial=sub, focal_guesses=focals,
                         focal_std=False)
        self.phases.setdefault(phase, []).extend(fit.stages)
        self.warnings.extend(fit.warnings)
        if fit.suspect is not None:
            self.suspects.append({"phase": phase, "instants": [int(instants[0]), int(instants[-1])], **fit.suspect})
        return fit.state

    def phase_evidence(self, images: list[int], stages: list[dict]) -> Evidence:
        """The images' evidence, with photos and part masks loaded when the stages weigh a term needing them."""
        specs = registered_terms()
        needs = {need for stage in stages for name, w in stage["weights"].items() if float(w) and name in specs
                 for need in specs[name].needs}
        frames = []
        for k in images:
            frame = self.evidence.frames[k]
            if "photo" in needs and frame.photo is None and self.source.photo is not None:
                frame = dataclasses.replace(frame, photo=self.source.photo(k))
            if "masks" in needs and frame.masks is None and self.source.masks is not None:
                if k not in self._masks:
                    self._masks[k] = self.source.masks(k)
                frame = dataclasses.replace(frame, masks=self._masks[k])
            frames.append(frame)
        return Evidence(frames)

    def _tick(self, phase: str, done: int, total: int) -> None:
        if self.progress:
            self.progress(phase, done, total)

    def shot_identities(self, state: FitState, focals: list[float]) -> list[dict]:
        """A clip cut into segments: each segment's own identity from a few of its frames (the preset's
        landmark-only photo stages, from the starts) and its distance from the first segment's; a warning for
        a segment that looks like another person (fitter.optimize.shot_identity)."""
        if not self.ordered or len(np.unique(self.segments)) < 2:
            return []
        picks = shot_instants(self.segments, self.instant_detected, int(self.video["shot_frames_min"]),
                              int(self.video["shot_frames"]))
        stages = landmark_stages(self.preset["stages"])
        if len(picks) < 2 or not stages:  # a config of image stages only: nothing cheap to compare shots with
            return []
        identities = [self._run("shots", state, instants, stages, True, focals).identity.detach()
                      for instants in picks.values()]
        number = self._frame_numbers(self.evidence.frames)
        rows = []
        for segment, distance in zip(picks, identity_distances_mm(self.model, identities)):
            members = np.flatnonzero(self.segments == segment)
            rows.append({"segment": segment, "frames": f"{number[int(members[0])]}-{number[int(members[-1])]}",
                         "identity_distance_mm": distance})
        limit = float(self.video["shot_identity_mm"])
        far = [row for row in rows[1:] if row["identity_distance_mm"] > limit]
        if far:
            self.warnings.append(
                f"frames {', '.join(r['frames'] for r in far)} may show another person than frames "
                f"{rows[0]['frames']}: their faces differ by "
                f"{', '.join(format(r['identity_distance_mm'], '.2f') for r in far)} mm (one person's shots differ "
                f"by less than {limit:g} mm, [video] shot_identity_mm); one identity is fitted to all: fit each "
                "shot on its own (--start/--end)")
        return rows

    def photo_identities(self, state: FitState, focals: list[float]) -> list[dict]:
        """Unordered photos of one person (not a clip, not a rig, even one of one camera): each detected photo's own
        identity (the preset's landmark-only photo stages, from its start) and its distance from the mean identity
        of the other photos (leave one out), so that a photo of another person can be named (fitter.app.subject;
        docs/video.md)."""
        if self.ordered or self.rig is not None or not float(self.video["photo_identity_mm"]):
            return []
        instants = [int(i) for i in np.flatnonzero(self.instant_detected)]
        stages = landmark_stages(self.preset["stages"])
        if len(instants) < 2 or not stages:
            return []
        identities = [self._run("photos", state, [i], stages, True, focals).identity.detach() for i in instants]
        rows = []
        for n, i in enumerate(instants):
            others = torch.stack([x for m, x in enumerate(identities) if m != n]).mean(0)
            rows.append({"image": i, "identity_distance_mm": identity_distances_mm(self.model, [others,
                                                                                                identities[n]])[1]})
        return rows

    def keyframe_instants(self, state: FitState) -> list[int]:
        candidates = np.flatnonzero(self.instant_detected)
        count = int(np.clip(math.ceil(len(candidates) / int(self.video["keyframe_spacing"])),
                            int(self.video["keyframes_min"]), int(self.video["keyframes_max"])))
        quality = np.zeros(len(candidates))
        for n, i in enumerate(candidates):
            frames = [self.evidence.frames[k] for k in self._images_of([int(i)])]
            confidence = np.mean([f.face.score * float(np.mean(f.face.landmark_weights > 0)) for f in frames])
            sharp = np.mean([f.sharpness if f.sharpness is not None else 1.0 for f in frames])
            quality[n] = confidence * sharp * np.mean([neutrality(f) for f in frames])
        spread = float(self.video["keyframe_spread_deg"])
        angles = yaw_pitch(state.rotation[torch.as_tensor(candidates)].cpu().numpy())
        if self.times is not None:  # a clip: spread over its time as well as over pose
            angles = np.concatenate([angles, time_coordinate(self.times[candidates], count, spread)[:, None]], 1)
        picked = select_keyframes(quality, angles, count, spread)
        return [int(candidates[p]) for p in picked]

    def run(self) -> SubjectFit:
        start = time.perf_counter()
        focals = self.focal_guesses()
        starts = self.image_starts(focals)
        self.detected &= np.array([s is not None for s in starts])
        state = self.initial_state(starts, focals)
        self.timings["starts"] = time.perf_counter() - start
        t = time.perf_counter()
        shots = self.shot_identities(state, focals)
        self.timings["shots"] = time.perf_counter() - t
        t = time.perf_counter()
        photos = self.photo_identities(state, focals)
        self.timings["photos"] = time.perf_counter() - t

        t = time.perf_counter()
        keys = self.keyframe_instants(state)
        self._tick("keyframes", 0, 1)
        sub = self._run("keyframes", state, keys, self.preset["stages"], True, focals, rig_moves=True)
        state.assign(sub, keys, PER_INSTANT + ("identity", "log_focal") + RIG_PARAMETERS)
        state.albedo = sub.albedo
        rig_stages = self.preset.get("rig_stages", [])
        if self.multiview and rig_stages:  # views of one instant compared with each other (crossview)
            sub = self._run("rig", state, keys, rig_stages, True, focals, rig_moves=True)
            state.assign(sub, keys, PER_INSTANT + ("identity", "log_focal") + RIG_PARAMETERS)
        self._tick("keyframes", 1, 1)
        self.timings["keyframes"] = time.perf_counter() - t
        self.timings["keyframe_count"] = float(len(keys))

        t = time.perf_counter()
        if self.ordered:
            self.track(state, focals)
        else:
            self.refit_each(state, focals, exclude=keys)  # the keyframes were fitted with the final identity
        self.timings["track"] = time.perf_counter() - t
        if self.ordered:
            t = time.perf_counter()
            identities = self.windows(state, focals, "window", self.preset.get("window_stages", []), identity=True)
            if identities:
                weights = np.array([w for _, w in identities], np.float64)
                state.identity = (torch.stack([i for i, _ in identities]) * torch.as_tensor(
                    weights / weights.sum(), dtype=torch.float32, device=state.device)[:, None]).sum(0)
            self.timings["windows"] = time.perf_counter() - t
            t = time.perf_counter()
            self.windows(state, focals, "polish", self.preset.get("polish_stages", []), identity=False)
            self.timings["polish"] = time.perf_counter() - t
        fill_undetected(state, self.instant_detected, self.segments, self.times)
        result = SubjectFit(state, self.evidence, self.detected, self.instant_detected, keys, self.segments,
                            self.times, self.ordered, focals, self.phases, self.timings,
                            list(dict.fromkeys(self.warnings)), self.suspects, shots=shots, photos=photos)
        t = time.perf_counter()
        measure_subject(self.model, result, self.preset)
        result.rig = self.rig_summary(state)
        self.timings["measure"] = time.perf_counter() - t
        self.timings["total"] = time.perf_counter() - start
        return result

    def warm_start(self, state: FitState, part: list[int], previous: int, starts: FitState) -> None:
        """Start ``part`` from instant ``previous``'s expression and pose; an instant whose closed-form start
        (``starts``, every instant) is turned more than ``track_restart_deg`` from it keeps that start's pose."""
        limit = float(self.video["track_restart_deg"])
        values = {name: getattr(state, name).detach().clone() for name in PER_INSTANT}
        prev = rotvec_matrix(values["rotation"][previous].cpu().numpy())
        for i in part:
            values["expression"][i] = values["expression"][previous]
            own = rotvec_matrix(starts.rotation[i].cpu().numpy())
            if np.degrees(np.arccos(np.clip((np.trace(prev.T @ own) - 1) / 2, -1, 1))) <= limit:
                values["rotation"][i] = values["rotation"][previous]
                values["translation"][i] = values["translation"][previous]
            else:
                values["rotation"][i], values["translation"][i] = starts.rotation[i], starts.translation[i]
        for name, value in values.items():
            setattr(state, name, value)

    def track(self, state: FitState, focals: list[float]) -> None:
        """Frame by frame (``track_chunk`` instants at a time) with the identity fixed, warm-started from the
        previous instant and linked to the two before by the temporal term."""
        stages = self.preset.get("track_stages", [])
        if not stages:
            return
        chunk = int(self.video["track_chunk"])
        order = [i for i in range(self.num_instants) if self.instant_detected[i]]
        starts = state.detached()  # every instant's closed-form start (keyframes: their joint fit)
        done = 0
        for segment in np.unique(self.segments[order]):
            members = [i for i in order if self.segments[i] == segment]
            for c in range(0, len(members), chunk):
                part = members[c:c + chunk]
                before = members[max(0, c - CONTEXT_INSTANTS):c]
                if before:  # warm start: the previous instant's result, its pose unless the frame's own start
                    self.warm_start(state, part, before[-1], starts)  # is far from it (a fast turn, --every)
                sub = self._run("track", state, part, stages, False, focals,
                                context=before if len(before) == CONTEXT_INSTANTS and self.times is not None else None)
                state.assign(sub, part, PER_INSTANT)
                done += len(part)
                self._tick("track", done, len(order))

    def refit_each(self, state: FitState, focals: list[float], exclude: list[int]) -> None:
        """Unordered photos: each refitted alone with the photo stages and the shared identity fixed."""
        order = [i for i in range(self.num_instants) if self.instant_detected[i] and i not in exclude]
        for n, i in enumerate(order):
            sub = self._run("refit", state, [i], self.preset["stages"], False, focals)
            state.assign(sub, [i], PER_INSTANT)
            self._tick("refit", n + 1, len(order))

    def windows(self, state: FitState, focals: list[float], phase: str, stages: list[dict],
                identity: bool) -> list[tuple[torch.Tensor, int]]:
        """Overlapping windows over every segment; returns each window's identity and size (identity free)."""
        if not stages:
            return []
        size, overlap = int(self.video["window"]), int(self.video["window_overlap"])
        step = max(1, size - overlap)
        order = [i for i in range(self.num_instants) if self.instant_detected[i]]
        plan = []
        for segment in np.unique(self.segments[order]):
            members = [i for i in order if self.segments[i] == segment]
            starts = list(range(0, max(len(members) - overlap, 1), step))
            for s in starts:
                plan.append((members, s))
        identities = []
        for n, (members, s) in enumerate(plan):
            part = members[s:s + size]
            if len(part) < 1:
                continue
            before = members[max(0, s - CONTEXT_INSTANTS):s]
            context = before if len(before) == CONTEXT_INSTANTS and self.times is not None else None
            sub = self._run(phase, state, part, stages, identity, focals, context=context)
            state.assign(sub, part, PER_INSTANT + (("identity",) if identity else ()))
            if identity:
                identities.append((sub.identity.detach().clone(), len(part)))
            self._tick(phase, n + 1, len(plan))
        return identities

    def rig_summary(self, state: FitState) -> dict:
        if not self.multiview:
            return {}
        with torch.no_grad():
            r, t = state.view_extrinsics()
        return {"calibrated": bool(self.rig.calibrated), "extrinsics_fitted": self.freedom.extrinsics,
                "scale_fitted": self.freedom.scale,
                "scale": float(state.rig_log_scale.exp()) if state.rig_log_scale is not None else 1.0,
                "views": {name: {"R": r[v].tolist(), "t": t[v].tolist()} for v, name in enumerate(self.view_names)}}


def fill_undetected(state: FitState, detected: np.ndarray, segments: np.ndarray, times: np.ndarray | None) -> None:
    """Instants without a detection get their pose and expression interpolated in time (linearly, between the
    nearest detected instants of their segment; held at a segment's ends; the nearest in order without times)."""
    if detected.all() or not detected.any():
        return
    t = times if times is not None else np.arange(len(detected), dtype=np.float64)
    for name in PER_INSTANT:
        value = getattr(state, name).detach().cpu().numpy().copy()
        for segment in np.unique(segments):
            inside = segments == segment
            known = np.flatnonzero(inside & detected)
            if not len(known):
                known = np.flatnonzero(detected)
            missing = np.flatnonzero(inside & ~detected)
            for c in range(value.shape[1]):
                value[missing, c] = np.interp(t[missing], t[known], value[known, c])
        setattr(state, name, torch.as_tensor(value, dtype=getattr(state, name).dtype, device=state.device))


@torch.no_grad()
def measure_subject(model: MorphableModel, result: SubjectFit, preset: dict) -> None:
    """Per-image landmark RMSE (px), NME and projected landmarks of the final state (NaN without detection)."""
    ctx = TermContext(model, result.evidence, preset, result.focal_guesses)
    term = registered_terms()["landmarks"].build(ctx)
    scene = Scene(model, result.state)
    if getattr(term, "contour", None):
        term.update(scene)
    rmse = term.rmse_px(scene).cpu().numpy().astype(np.float64)
    rmse[~result.detected] = np.nan
    inter = np.array([max(f.face.inter_ocular, 1e-6) for f in result.evidence.frames])
    points, _ = term.surface_points(scene)
    result.rmse_px = rmse
    result.nme = rmse / inter
    result.landmarks_fitted = scene.project(points)[0].cpu().numpy()


def fit_sequence(model: MorphableModel, evidence: Evidence, preset: dict, rig: Rig | None = None,
                 view_names: list[str] | None = None, progress: Progress | None = None,
                 source: FrameSource | None = None) -> SubjectFit:
    """Fit a subject of many frames (a clip, unordered photos, a multi-view capture); see the module docstring.

    ``rig`` with ``view_names`` (the rig camera of each view index): a multi-view capture's cameras, fixed when
    calibrated, fitted (the first view being the world) when not. ``source``: photos and part masks loaded on
    demand (else those the evidence carries)."""
    if rig is not None and (view_names is None or any(n not in rig.cameras for n in view_names)):
        raise ValueError("a rig needs view_names naming one of its cameras per view")
    validate(preset, "preset")
    return SubjectFitter(model, evidence, preset, rig, view_names, progress, source).run()
