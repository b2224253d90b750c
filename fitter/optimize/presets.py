"""Presets: every weight, iteration count and stage schedule lives in a TOML file, not in code.

A preset may ``extends = "<other preset>"``; a user config file (``--config``) is merged on top. Tables merge
key by key; a list (such as ``stages``) replaces the inherited one whole, while ``append_stages`` adds stages
after the inherited ones. Every file is checked against the schema (fitter.optimize.schema) as it is read, so
an error names the file that holds the bad key; the merged result is checked once more for completeness.
"""
from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path

from ..common.settings import SettingError
from .schema import check_document, check_merged

PRESET_NAMES = ("fast", "default", "vfx")


class PresetError(SettingError):
    """A preset or config that cannot be used; the message names the file, the key and what to do."""


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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


def _checked(path: Path) -> dict:
    data = _read(path)
    try:
        check_document(data, str(path))
    except SettingError as exc:
        raise PresetError(str(exc)) from None
    return data


def _load_chain(name: str, seen: tuple = ()) -> dict:
    if name in seen:
        raise PresetError(f"preset {name!r} extends itself through {seen}")
    data = _checked(preset_path(name))
    parent = data.pop("extends", None)
    if parent:
        data = merge(_load_chain(parent, seen + (name,)), data)
    return data


def _join_stages(data: dict) -> dict:
    data["stages"] = list(data.get("stages", [])) + list(data.pop("append_stages", []))
    return data


def load_preset(name: str, config: Path | None = None) -> dict:
    """The named preset with its ``extends`` chain resolved, ``config`` merged on top, and checked."""
    data = _join_stages(_load_chain(name))
    source = f"preset {name!r}"
    if config is not None:
        user = _checked(Path(config))
        if "extends" in user:
            raise PresetError(f"{config}: 'extends' is for presets; choose the preset with --preset instead")
        if user.get("preset", name) != name:  # `presets show` writes the key; a config cannot switch presets
            raise PresetError(f"{config}: preset = {user['preset']!r}, but the run's preset is {name!r}; choose "
                              f"the preset with --preset (--preset {user['preset']}) or remove this key")
        data = _join_stages(merge(data, user))
        source = str(config)
    data["preset"] = name
    try:
        check_merged(data, source)
    except SettingError as exc:
        raise PresetError(str(exc)) from None
    return data


def validate(preset: dict, source: str = "configuration") -> None:
    """Check an already merged preset (e.g. one a benchmark row edited); raises PresetError."""
    try:
        check_merged(preset, source)
    except SettingError as exc:
        raise PresetError(str(exc)) from None
