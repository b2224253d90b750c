"""Temporal smoothness: a robust penalty on the acceleration of the head pose and the expressions, per second.

Consecutive instants of a clip are not independent: a head and a face move smoothly, while the landmark
detector's noise is independent from frame to frame, and shows as jitter. This term penalises the second
difference of every per-instant parameter (head rotation, translation, expression) divided by the frame
intervals: an acceleration in units per second squared, so one setting means the same at any frame rate and
any ``--every`` (frames need not be evenly spaced: each triple uses its own intervals).

    a_i = ((x_{i+1} - x_i) / dt_i - (x_i - x_{i-1}) / dt_{i-1}) / ((dt_i + dt_{i-1}) / 2)
    E   = sum_i dtbar_i * sum_c rho(a_ic / sigma_c)      (rho: pseudo-Huber, knee ``robust_delta``)

The sum over triples weighted by their mean interval ``dtbar`` (seconds) approximates the integral of the
penalty over time, so a clip's total does not grow with its frame rate while its data terms do (more frames
are more evidence). The robust knee lets a real fast movement (a head turn, a blink, a syllable) through at a
linear cost instead of smoothing it away; expressions named in ``wide_expressions`` (blinks, the jaw) get
``wide_factor`` times the tolerance, since they legitimately move fastest.

Instants carry a segment number (a cut, or a long gap without a detection, starts a new one): triples never
span two segments. Rows of ``state.extras["temporal_context"]`` (rotation, translation, expression and
times of instants just before the fitted ones, e.g. the frames a tracker already fitted) are prepended as
constants, so a clip can be fitted piece by piece without a jump at the seams. Each triple's value goes to
its last instant; per-image values spread an instant's over its views.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..common.settings import Setting
from ..scene import Scene
from .base import Term, TermContext, TermSpec, TermUnavailable, pseudo_huber, register

CONTEXT_KEY = "temporal_context"  # state.extras key of the constant instants before the fitted ones
REFERENCE_S = 1.0  # energies are per second of clip


def instant_times(evidence) -> tuple[np.ndarray, np.ndarray]:
    """Time (s) and segment of each instant (T,), from the evidence's frames (an instant's first frame)."""
    instants = evidence.instants()
    order = range(evidence.num_frames) if instants is None else instants
    times, segments = {}, {}
    for k, t in zip(range(evidence.num_frames), order):
        frame = evidence.frames[k]
        if int(t) not in times:
            times[int(t)], segments[int(t)] = frame.time_s, frame.segment
    count = len(times)
    if any(times[t] is None for t in range(count)):
        raise TermUnavailable("the frames have no capture times (photos, not a clip); temporal smoothness needs them")
    return (np.array([times[t] for t in range(count)], np.float64),
            np.array([segments[t] for t in range(count)], np.int64))


class TemporalTerm(Term):
    """Robust acceleration penalty on per-instant rotation, translation and expression (see module docstring)."""

    name = "temporal"

    def __init__(self, times: np.ndarray, segments: np.ndarray, sigma_rotation: float, sigma_translation: float,
                 sigma_expression: np.ndarray, robust_delta: float = 3.0, device: str | torch.device = "cpu") -> None:
        times = np.asarray(times, np.float64)
        segments = np.asarray(segments, np.int64)
        same = segments[1:] == segments[:-1]
        if (np.diff(times)[same] <= 0).any():
            raise TermUnavailable("frame times must increase within a segment for temporal smoothness")
        self.times = torch.as_tensor(times, dtype=torch.float32, device=device)
        self.segments = torch.as_tensor(segments, device=device)
        self.sigma_rotation = float(sigma_rotation)  # radians / s^2
        self.sigma_translation = float(sigma_translation)  # cm / s^2
        self.sigma_expression = torch.as_tensor(sigma_expression, dtype=torch.float32, device=device)  # (E,) 1/s^2
        self.delta = float(robust_delta)

    def _tracks(self, scene: Scene) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """(values (C+T, D), times (C+T,), segments (C+T,), C) with the context instants first."""
        s = scene.state
        values = torch.cat([s.rotation, s.translation, s.expression], 1)
        times, segments = self.times.to(values), self.segments
        context = s.extras.get(CONTEXT_KEY)
        if not context:
            return values, times, segments, 0
        before = torch.cat([torch.as_tensor(context[k], dtype=values.dtype, device=values.device)
                            for k in ("rotation", "translation", "expression")], 1).detach()
        c = before.shape[0]
        ctx_times = torch.as_tensor(context["times"], dtype=values.dtype, device=values.device)
        ctx_segments = segments[:1].expand(c)  # the context continues the first fitted instant's segment
        return torch.cat([before, values]), torch.cat([ctx_times, times]), torch.cat([ctx_segments, segments]), c

    def accelerations(self, scene: Scene) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """(accelerations (N, D) per unit of sigma, mean intervals (N,), valid (N,) bool, context count) of the
        N = C + T - 2 consecutive triples."""
        values, times, segments, c = self._tracks(scene)
        if values.shape[0] < 3:
            empty = values[:0]
            return empty, times[:0], segments[:0].bool(), c
        dt = (times[1:] - times[:-1]).clamp(min=1e-6)
        velocity = (values[1:] - values[:-1]) / dt[:, None]
        mean_dt = 0.5 * (dt[1:] + dt[:-1])
        accel = (velocity[1:] - velocity[:-1]) / mean_dt[:, None]
        sigma = torch.cat([torch.full((3,), self.sigma_rotation), torch.full((3,), self.sigma_translation)]).to(accel)
        sigma = torch.cat([sigma, self.sigma_expression.to(accel)])
        same = segments[1:] == segments[:-1]
        return accel / sigma, mean_dt, same[1:] & same[:-1], c

    def __call__(self, scene: Scene) -> torch.Tensor:
        s = scene.state
        scaled, mean_dt, valid, c = self.accelerations(scene)
        energy = torch.zeros(s.num_instants, dtype=s.expression.dtype, device=s.device)
        if scaled.shape[0]:
            per_triple = pseudo_huber(scaled, self.delta).sum(-1) * (mean_dt / REFERENCE_S) * valid.to(scaled)
            last = torch.arange(scaled.shape[0], device=s.device) + 2 - c  # each triple's last fitted instant
            keep = last >= 0
            energy = energy.index_add(0, last[keep], per_triple[keep])
        return s.spread_instants(energy)

    @torch.no_grad()
    def diagnostics(self, scene: Scene) -> dict[str, list[float]]:
        """RMS acceleration per instant in units of sigma (how hard the term pulls), 0 where undefined."""
        scaled, _, valid, c = self.accelerations(scene)
        out = torch.zeros(scene.state.num_instants, device=scaled.device)
        if scaled.shape[0]:
            rms = scaled.pow(2).mean(-1).sqrt() * valid.to(scaled)
            last = torch.arange(scaled.shape[0], device=scaled.device) + 2 - c
            keep = last >= 0
            out[last[keep]] = rms[keep]
        return {"acceleration_sigmas": out.tolist()}


def expression_sigmas(names: list[str], sigma: float, wide: list[str], factor: float) -> np.ndarray:
    """Per-expression tolerance (E,): ``sigma``, times ``factor`` for the expressions named in ``wide``."""
    unknown = sorted(set(wide) - set(names))
    if unknown and len(unknown) == len(set(wide)):
        raise TermUnavailable(f"[temporal] wide_expressions {unknown} name none of the model's expressions")
    out = np.full(len(names), float(sigma))
    for k, name in enumerate(names):
        if name in wide:
            out[k] *= float(factor)
    return out


def build(ctx: TermContext) -> TemporalTerm:
    cfg = ctx.section("temporal")
    times, segments = instant_times(ctx.evidence)
    sigma_e = expression_sigmas(ctx.model.expression_names, float(cfg["sigma_expression"]),
                                list(cfg["wide_expressions"]), float(cfg["wide_factor"]))
    return TemporalTerm(times, segments, math.radians(float(cfg["sigma_rotation_deg"])),
                        float(cfg["sigma_translation_cm"]), sigma_e, float(cfg["robust_delta"]), ctx.device)


SPEC = register(TermSpec(
    "temporal", build,
    settings={
        "sigma_rotation_deg": Setting("float", "head rotation acceleration tolerance, degrees per second^2",
                                      positive=True),
        "sigma_translation_cm": Setting("float", "head translation acceleration tolerance, cm per second^2",
                                        positive=True),
        "sigma_expression": Setting("float", "expression acceleration tolerance, units per second^2", positive=True),
        "wide_expressions": Setting("strs", "expressions allowed to move faster (blinks, jaw)"),
        "wide_factor": Setting("float", "tolerance multiplier of the wide expressions", positive=True),
        "robust_delta": Setting("float", "pseudo-Huber knee in units of sigma", positive=True),
    },
    doc="robust acceleration penalty on head pose and expressions, per second"))
