"""Helpers for tests of per-frame behaviour: a subject seen in several frames, and one of its frames alone."""
from __future__ import annotations

import torch

from fitter.scene import Scene
from fitter.state import FitState

PER_FRAME = ("expression", "rotation", "translation", "sh", "frame_view")  # FitState tensors, one row a frame


def posed_frames(model, frames: int = 3, size=(512, 512), focal: float = 1100.0, seed: int = 0) -> FitState:
    """One subject (one identity, one view) in ``frames`` frames with distinct expressions and head poses."""
    g = torch.Generator().manual_seed(seed)
    state = FitState.single(model.num_identity, model.num_expression, size, focal, frames=frames)
    state.identity = 0.5 * torch.randn(model.num_identity, generator=g)
    state.expression = 0.3 * torch.rand(frames, model.num_expression, generator=g)
    yaw = torch.linspace(-0.4, 0.4, frames) if frames > 1 else torch.zeros(1)
    state.rotation = torch.stack([0.1 * torch.ones(frames), yaw, 0.05 * torch.ones(frames)], 1)
    state.translation = torch.tensor([[1.0, -2.0, 65.0]]) + torch.arange(frames, dtype=torch.float32)[:, None] \
        * torch.tensor([[0.5, 0.3, 2.0]])
    return state


def map_frames(state: FitState, change) -> FitState:
    """A copy of ``state`` with ``change`` applied to every tensor that has one row per frame."""
    out = state.detached()
    for name in PER_FRAME:
        value = getattr(out, name)
        if value is not None:
            setattr(out, name, change(value))
    return out


def one_frame(state: FitState, frame: int) -> FitState:
    """Frame ``frame`` of a multi-frame state as a subject of its own (same identity, same camera)."""
    return map_frames(state, lambda value: value[frame : frame + 1].clone())


def with_dtype(state: FitState, dtype: torch.dtype) -> FitState:
    """A copy of ``state`` whose floating-point tensors have ``dtype`` (float64 for gradcheck)."""
    out = state.detached()
    for name, value in out.tensors().items():
        if value.is_floating_point():
            setattr(out, name, value.to(dtype))
    return out


def repeat_frames(state: FitState, frames: int) -> FitState:
    """The single-frame ``state`` seen ``frames`` times (same expression, pose and light in every frame)."""
    return map_frames(state, lambda value: value.repeat(frames, *([1] * (value.dim() - 1))))


def assert_spread_evenly(term, model, state: FitState, frames: int = 3) -> None:
    """A prior on shared parameters: shape (F,), equal over the frames, summing to the single-frame value."""
    with torch.no_grad():
        single = term(Scene(model, state))
        many = term(Scene(model, repeat_frames(state, frames)))
    assert single.shape == (1,) and many.shape == (frames,)
    torch.testing.assert_close(many, single.expand(frames) / frames)
    torch.testing.assert_close(many.sum(), single[0])
