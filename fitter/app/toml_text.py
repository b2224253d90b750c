"""TOML text of a plain settings dict (what ``facefit presets show`` prints), readable like the preset files.

Python reads TOML (tomllib) but does not write it. Presets hold only TOML's own types (str, int, float, bool,
lists, tables), so a small emitter suffices: scalars first, then ``[tables]``, then ``[[arrays of tables]]``;
tables inside an array-of-tables entry are written inline (``weights = { landmarks = 1.0 }``), as in the
preset files. ``tomllib.loads(toml_text(d)) == d`` for every such dict.
"""
from __future__ import annotations

import json
import math
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_text(data: dict) -> str:
    """The TOML document of ``data``; raises TypeError for a value TOML cannot hold (None, objects)."""
    lines: list[str] = []
    _table(data, [], lines, header=False)
    return "\n".join(lines).strip() + "\n"


def _table(table: dict, path: list[str], lines: list[str], header: bool) -> None:
    scalars = {k: v for k, v in table.items() if not _is_table(v) and not _is_table_array(v)}
    if header and (scalars or not any(_is_table(v) for v in table.values())):
        lines += ["", f"[{_dotted(path)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for k, v in table.items():
        if _is_table(v):
            _table(v, path + [k], lines, header=True)
    for k, v in table.items():
        if _is_table_array(v):
            for entry in v:
                lines += ["", f"[[{_dotted(path + [k])}]]"]
                lines += [f"{_key(ek)} = {_value(ev)}" for ek, ev in entry.items()]


def _is_table(v) -> bool:
    return isinstance(v, dict)


def _is_table_array(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(e, dict) for e in v)


def _dotted(path: list[str]) -> str:
    return ".".join(_key(p) for p in path)


def _key(key) -> str:
    key = str(key)
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON's string escapes are TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(e)}" for k, e in v.items()) + " }" if v else "{}"
    raise TypeError(f"TOML has no representation for {type(v).__name__} ({v!r})")
