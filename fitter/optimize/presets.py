"""Presets: every weight, iteration count and stage schedule lives in a TOML file, not in code.

A preset may ``extends = "<other preset>"``; a user config file (``--config``) is merged on top. Tables merge
key by key; a list (such as ``stages``) replaces the inherited one whole, while ``append_stages`` adds stages
after the inherited ones.
"""
from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path

PRESET_NAMES = ("fast", "default", "vfx")


class PresetError(ValueError):
    pass


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PresetError(f"{path}: cannot read config ({exc}); fix the TOML or pass another --config") from exc


def merge(base: dict, override: dict) -> dict:
    """Deep merge of tables; lists and scalars in ``override`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def preset_path(name: str) -> Path:
    path = Path(str(resources.files("fitter").joinpath("presets", f"{name}.toml")))
    if not path.exists():
        raise PresetError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return path


def load_preset(name: str, config: Path | None = None, _seen: tuple = ()) -> dict:
    """The named preset with its ``extends`` chain resolved and ``config`` merged on top."""
    if name in _seen:
        raise PresetError(f"preset {name!r} extends itself through {_seen}")
    data = _read(preset_path(name))
    parent = data.pop("extends", None)
    if parent:
        data = merge(load_preset(parent, None, _seen + (name,)), data)
    if config is not None:
        data = merge(data, _read(config))
    data["stages"] = list(data.get("stages", [])) + list(data.pop("append_stages", []))
    data["preset"] = name
    validate(data)
    return data


def validate(preset: dict) -> None:
    from ..state import PARAMETER_NAMES

    stages = preset.get("stages") or []
    if not stages and preset.get("preset") != "base":
        raise PresetError("the configuration defines no [[stages]]")
    for stage in stages:
        name = stage.get("name", "?")
        unknown = set(stage.get("free", [])) - set(PARAMETER_NAMES)
        if unknown:
            raise PresetError(f"stage {name!r} frees unknown parameters {sorted(unknown)}; known: {PARAMETER_NAMES}")
        if not stage.get("weights"):
            raise PresetError(f"stage {name!r} weighs no energy terms")
