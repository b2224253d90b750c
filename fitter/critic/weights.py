"""Critic weights on disk: an ``.npz`` of float16 arrays (spectral normalisation folded in) and a JSON card
beside it (``<name>.json``: seeds, data recipe, torch version, sha256 of the weights, held-out metrics,
licence).

The shipped critic is ``assets/critic_shape.npz`` with ``assets/critic_shape.json``; ``facefit critic train``
writes the same pair. Loading checks the card's sha256 against the file, so a weights file and a card that do
not belong together are an error, not a silent mismatch.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch

from ..assets import asset_path
from ..common.files import write_json, write_npz
from ..io import file_content_hash
from .network import Architecture, CriticNet, freeze, plain_state

SHIPPED = "critic_shape.npz"  # the asset name of the shipped critic
ARCH_KEY = "__architecture__"  # the npz entry holding the architecture as JSON text
STORAGE_DTYPE = np.float16  # halves the file; the scores move by ~1e-3 of their spread


class CriticWeightsError(ValueError):
    """A weights file that cannot be used (the message names the file and what to do)."""


def card_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_weights(path: Path, net: CriticNet, card: dict) -> dict:
    """Write the network (float16, spectral normalisation folded in) and its card; returns the card written
    (with the file's sha256 and size added)."""
    arrays = {k: v.cpu().numpy().astype(STORAGE_DTYPE) for k, v in plain_state(net).items()}
    arrays[ARCH_KEY] = np.array(json.dumps(net.arch.as_dict()))
    write_npz(path, **arrays)
    card = dict(card, weights_file=Path(path).name, sha256=file_content_hash(path), bytes=Path(path).stat().st_size,
                architecture=net.arch.as_dict(), storage_dtype=np.dtype(STORAGE_DTYPE).name)
    write_json(card_path(path), card)
    return card


def resolve(weights: str | Path) -> Path:
    """A weights setting: a path to a file, or the name of a shipped asset (``critic_shape.npz``)."""
    path = Path(weights).expanduser()
    if path.exists():
        return path
    if path.parent == Path("."):
        try:
            return asset_path(str(weights))
        except FileNotFoundError:
            pass
    raise CriticWeightsError(f"critic weights {weights!r}: no such file or shipped asset; set [critic] weights "
                             f"to a file written by `facefit critic train` or to {SHIPPED!r}")


@functools.lru_cache(maxsize=4)
def _load(path: str, stamps: tuple[float, float]) -> tuple[CriticNet, dict]:
    p = Path(path)
    card = {}
    if card_path(p).exists():
        card = json.loads(card_path(p).read_text())
        if card.get("sha256") and card["sha256"] != file_content_hash(p):
            raise CriticWeightsError(f"{p}: does not match its card {card_path(p).name} (sha256 differs); copy the "
                                     "weights and the card written together by `facefit critic train`")
    try:
        with np.load(p, allow_pickle=False) as data:
            arch = Architecture.from_dict(json.loads(str(data[ARCH_KEY])))
            state = {k: torch.as_tensor(data[k].astype(np.float32)) for k in data.files if k != ARCH_KEY}
    except (OSError, ValueError, KeyError) as exc:
        raise CriticWeightsError(f"{p}: not a critic weights file ({exc}); write one with `facefit critic "
                                 "train`") from exc
    net = CriticNet(arch, spectral=False)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CriticWeightsError(f"{p}: weights do not fit the architecture it names ({exc})") from exc
    return freeze(net), card


def load_critic(weights: str | Path) -> tuple[CriticNet, dict]:
    """(frozen plain network in eval mode, its card or {}) for a weights setting; kept once loaded.

    Callers must not train the returned network: it is shared."""
    path = resolve(weights).resolve()
    card = card_path(path)
    return _load(str(path), (path.stat().st_mtime, card.stat().st_mtime if card.exists() else 0.0))
