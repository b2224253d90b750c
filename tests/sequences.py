"""Helpers for tests of subjects of many frames: a smoothly moving face observed frame by frame, and one instant
seen by a rig of cameras, as exact (or noisy) synthetic landmark observations."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from fitter.evidence import Evidence, FrameEvidence
from fitter.io.rig import Rig, RigCamera, intrinsic_matrix
from fitter.optimize.presets import load_preset
from fitter.state import FitState
from synthetic_faces import observe

SIZE = (512, 512)
FOCAL = 1100.0


def moving_face(model, frames: int, fps: float, seed: int = 1) -> FitState:
    """One identity turning its head (yaw and pitch sinusoids) and opening its jaw at 2 Hz, one view."""
    g = torch.Generator().manual_seed(seed)
    state = FitState.single(model.num_identity, model.num_expression, SIZE, FOCAL, frames=frames)
    state.identity = torch.randn(model.num_identity, generator=g)
    t = torch.arange(frames) / fps
    state.rotation = torch.stack([0.1 * torch.sin(2 * t), 0.4 * torch.sin(1.3 * t), 0.05 * torch.ones(frames)], 1)
    state.translation = torch.tensor([[1.0, -2.0, 65.0]]).repeat(frames, 1)
    state.expression = torch.zeros(frames, model.num_expression)
    state.expression[:, model.expression_names.index("jawOpen")] = 0.3 * (0.5 - 0.5 * torch.cos(2 * np.pi * 2 * t))
    return state


def frame_state(state: FitState, k: int) -> FitState:
    one = state.detached()
    one.expression, one.rotation, one.translation = (v[k:k + 1] for v in (state.expression, state.rotation,
                                                                          state.translation))
    one.frame_view = state.frame_view[:1]
    return one


def sequence_evidence(model, state: FitState, fps: float, noise_px: float = 0.5,
                      missing: tuple[int, ...] = ()) -> Evidence:
    """Frame k observed with noise at time k / fps; frames in ``missing`` have no detection (a zero slot)."""
    frames = []
    for k in range(state.num_instants):
        obs = observe(model, frame_state(state, k), noise_px=noise_px, seed=k)
        if k in missing:
            obs.landmarks = np.zeros_like(obs.landmarks)
            obs.landmark_weights = np.zeros_like(obs.landmark_weights)
        frames.append(FrameEvidence(obs, SIZE, time_s=k / fps, detected=k not in missing, frame_index=k))
    return Evidence(frames)


def ring_rig(cameras: int = 3, spread_deg: float = 60.0, distance: float = 65.0) -> Rig:
    """Cameras on a horizontal arc around the world origin, all looking at it (the first one in the middle)."""
    cams = {}
    angles = np.radians(np.linspace(-spread_deg / 2, spread_deg / 2, cameras))
    order = np.argsort(np.abs(angles), kind="stable")
    for n, a in enumerate(angles[order]):
        centre = distance * np.array([np.sin(a), 0.0, -np.cos(a)])
        z = -centre / np.linalg.norm(centre)
        x = np.cross([0.0, 1.0, 0.0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        K = intrinsic_matrix(FOCAL, FOCAL, SIZE[1] / 2.0, SIZE[0] / 2.0)
        cams[f"cam{n}"] = RigCamera(f"cam{n}", SIZE, K, R, -R @ centre)
    return Rig(cams, True, 1.0, {"format": "synthetic", "units": "cm"})


def rig_evidence(model, rig: Rig, heads: list[tuple[np.ndarray, np.ndarray]], identity: torch.Tensor,
                 noise_px: float = 0.0) -> Evidence:
    """Every head pose (world rotation axis-angle, translation cm) seen by every rig camera, instant by instant."""
    frames = []
    for i, (rot, trans) in enumerate(heads):
        for v, cam in enumerate(rig.cameras.values()):
            one = FitState.single(model.num_identity, model.num_expression, SIZE, FOCAL)
            one.identity = identity
            r = cam.R @ Rotation.from_rotvec(rot).as_matrix()
            one.rotation = torch.tensor(Rotation.from_matrix(r).as_rotvec(), dtype=torch.float32)[None]
            one.translation = torch.tensor(cam.R @ trans + cam.t, dtype=torch.float32)[None]
            obs = observe(model, one, noise_px=noise_px, seed=10 * i + v)
            frames.append(FrameEvidence(obs, SIZE, view=v, instant=i))
    return Evidence(frames)


def tiny_preset(name: str = "fast", iterations: int = 10) -> dict:
    """A preset for fast tests: landmark stages only (no masks or photos needed), few iterations, few keyframes."""
    preset = load_preset(name)

    def shrink(stages):
        return [dict(s, iterations=min(int(s["iterations"]), iterations), rounds=1) for s in stages
                if not {"prdl", "photometric", "crossview"} & set(s["weights"])]

    for key in ("stages", "rig_stages", "track_stages", "window_stages", "polish_stages"):
        preset[key] = shrink(preset.get(key, []))
    preset["landmarks"] = dict(preset["landmarks"], sigma=0.005)  # exact synthetic landmarks: trust them
    preset["video"] = dict(preset["video"], keyframes_min=3, keyframes_max=4, window=6, window_overlap=2)
    return preset
