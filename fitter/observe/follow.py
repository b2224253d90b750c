"""Which face of each frame of a clip belongs to the one person a clip is fitted to.

A clip may show several people: an interview, a speaker with someone behind them. Taking each frame's largest face
switches person whenever their sizes cross, and one identity is then fitted to a mix of two faces (a two-person
clip whose faces were within 20 % of each other's size switched person 4 times in 60 frames; docs/video.md). Here
faces are linked from frame to frame into tracks (a face continues a track when it lies where the track's face
would be by now, moving on as it moved over its last few frames, at a similar size: two people who cross, one
hiding the other for a while, each keep their track); the track with the most face area over the clip is
followed, and every other track that shares no frame with a followed one is followed too (the same person after a
cut, or after a stretch without a detection: one person is never seen twice in one frame). A track sharing a frame
with a followed one is someone else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_GAP = 12  # frames a track may go undetected and still be continued
NEAR = 0.5  # a face continues a track when its centre lies within this many face sizes of where the track's face
            # would be by now (predicted)
SIZE_RATIO = 1.5  # ... and its size is within this factor of it
MOTION_FRAMES = 5  # a track's motion: the shift of its face over (up to) this many of its last faces


@dataclass
class Following:
    """``chosen[t]``: the index of the followed face among frame t's faces, or None where that person is not seen;
    ``others``: the frames showing a face of anyone else; ``first``: the frame and box where the followed person is
    first seen (None when no frame has a face)."""

    chosen: list[int | None]
    others: list[int] = field(default_factory=list)
    first: tuple[int, np.ndarray] | None = None


def _centre_size(box: np.ndarray) -> tuple[np.ndarray, float]:
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(np.sqrt(max(x1 - x0, 0.0) * max(y1 - y0, 0.0)), 1e-6)


def continues(last: np.ndarray, box: np.ndarray) -> float | None:
    """How far ``box`` lies from a track's ``last`` box (its distance in face sizes plus the log of their size
    ratio: where two people's paths cross, the size tells them apart), or None when it cannot be the same face."""
    (c0, s0), (c1, s1) = _centre_size(last), _centre_size(box)
    if max(s0, s1) / min(s0, s1) > SIZE_RATIO:
        return None
    distance = float(np.linalg.norm(c1 - c0)) / np.sqrt(s0 * s1)
    return distance + abs(float(np.log(s1 / s0))) if distance <= NEAR else None


def predicted(boxes: list[list[np.ndarray]], track: list[tuple[int, int]], t: int) -> np.ndarray:
    """Where the track's face would be in frame ``t``: its last box moved on at the pace its centre moved over its
    last ``MOTION_FRAMES`` faces (frames apart, a gap's frames counted); a track of one face stays where it is."""
    last_t, last_i = track[-1]
    last = np.asarray(boxes[last_t][last_i], np.float64)
    first_t, first_i = track[max(len(track) - MOTION_FRAMES, 0)]
    if first_t == last_t:
        return last
    velocity = (_centre_size(last)[0] - _centre_size(np.asarray(boxes[first_t][first_i]))[0]) / (last_t - first_t)
    out = last.copy()
    out[[0, 2]] += velocity[0] * (t - last_t)
    out[[1, 3]] += velocity[1] * (t - last_t)
    return out


def link_tracks(boxes: list[list[np.ndarray]], max_gap: int = MAX_GAP) -> list[list[tuple[int, int]]]:
    """Tracks of ``(frame, face index)``: each frame's faces (``boxes[t]``, x0 y0 x1 y1 each) joined to the tracks
    seen within the last ``max_gap`` frames where they would be by now (:func:`predicted`), nearest pairs first;
    a face joined to none starts a track."""
    tracks: list[list[tuple[int, int]]] = []
    for t, frame in enumerate(boxes):
        live = [k for k, tr in enumerate(tracks) if t - tr[-1][0] <= max_gap]
        expected = {k: predicted(boxes, tracks[k], t) for k in live}
        pairs = []
        for i, box in enumerate(frame):
            for k in live:
                d = continues(expected[k], np.asarray(box))
                if d is not None:
                    pairs.append((d, i, k))
        used_faces, used_tracks = set(), set()
        for _, i, k in sorted(pairs):
            if i not in used_faces and k not in used_tracks:
                tracks[k].append((t, i))
                used_faces.add(i)
                used_tracks.add(k)
        tracks += [[(t, i)] for i in range(len(frame)) if i not in used_faces]
    return tracks


def _area(box: np.ndarray) -> float:
    return max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)


def follow_one_person(boxes: list[list[np.ndarray]], max_gap: int = MAX_GAP) -> Following:
    """The face of each frame that belongs to the person followed (module docstring); ``boxes[t]``: the boxes of
    frame t's faces (any order)."""
    tracks = link_tracks(boxes, max_gap)
    weight = [sum(_area(np.asarray(boxes[t][i])) for t, i in tr) for tr in tracks]
    followed: list[list[tuple[int, int]]] = []
    taken: set[int] = set()
    for k in sorted(range(len(tracks)), key=lambda k: -weight[k]):
        frames = {t for t, _ in tracks[k]}
        if not frames & taken:
            followed.append(tracks[k])
            taken |= frames
    chosen: list[int | None] = [None] * len(boxes)
    for tr in followed:
        for t, i in tr:
            chosen[t] = i
    others = [t for t, frame in enumerate(boxes) if len(frame) > (chosen[t] is not None)]
    first = None
    if followed:
        t0 = min(t for t, c in enumerate(chosen) if c is not None)
        first = (t0, np.asarray(boxes[t0][chosen[t0]]))
    return Following(chosen, others, first)
