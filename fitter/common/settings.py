"""Declared settings: the type and range of every value a preset may hold, checked before any image is read.

Each energy term declares the keys of its own preset section; the preset loader declares the rest. A value
outside its declaration is a user error with one line naming the file, the key, the value and what to do.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass


class SettingError(ValueError):
    """A preset or config value that is not what its declaration allows (the message says which and why)."""


@dataclass(frozen=True)
class Setting:
    """One preset key: its kind (``float``, ``int``, ``bool``, ``str``, ``floats``, ``strs``, ``table``), the
    allowed range or choices, and a one-line meaning for error messages and ``facefit presets show``."""

    kind: str
    help: str = ""
    low: float | None = None  # inclusive lower bound (numbers; each element of ``floats``)
    high: float | None = None  # inclusive upper bound
    choices: tuple | None = None  # allowed values (``str``, or each element of ``strs``; keys of ``table``)
    length: int | None = None  # exact length of a ``floats`` list
    positive: bool = False  # numbers: strictly > 0

    def check(self, where: str, value) -> None:
        """Raise :class:`SettingError` naming ``where`` (e.g. ``[prdl] sigma``) when ``value`` does not fit."""
        if self.kind in ("float", "int"):
            self._number(where, value, integer=self.kind == "int")
        elif self.kind == "bool":
            if not isinstance(value, bool):
                raise SettingError(f"{where} = {value!r}: expected true or false")
        elif self.kind == "str":
            if not isinstance(value, str):
                raise SettingError(f"{where} = {value!r}: expected a string")
            self._choice(where, value)
        elif self.kind == "floats":
            if not isinstance(value, list) or (self.length is not None and len(value) != self.length):
                n = f"{self.length} " if self.length is not None else ""
                raise SettingError(f"{where} = {value!r}: expected a list of {n}numbers")
            for k, v in enumerate(value):
                self._number(f"{where}[{k}]", v, integer=False)
        elif self.kind == "strs":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingError(f"{where} = {value!r}: expected a list of strings")
            for v in value:
                self._choice(where, v)
        elif self.kind == "table":  # name -> number (e.g. per-part weights)
            if not isinstance(value, dict):
                raise SettingError(f"{where} = {value!r}: expected a table {{ name = number, ... }}")
            for k, v in value.items():
                self._choice(f"{where}.{k}", k)
                self._number(f"{where}.{k}", v, integer=False)
        else:  # pragma: no cover - a declaration error, not a user error
            raise ValueError(f"unknown setting kind {self.kind!r}")

    def _number(self, where: str, value, integer: bool) -> None:
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            raise SettingError(f"{where} = {value!r}: expected {'an integer' if integer else 'a number'}")
        if not math.isfinite(value):
            raise SettingError(f"{where} = {value!r}: must be a finite number")
        if self.positive and value <= 0:
            raise SettingError(f"{where} = {value!r}: must be greater than 0")
        if self.low is not None and value < self.low:
            raise SettingError(f"{where} = {value!r}: must be at least {self.low:g}")
        if self.high is not None and value > self.high:
            raise SettingError(f"{where} = {value!r}: must be at most {self.high:g}")

    def _choice(self, where: str, value: str) -> None:
        if self.choices is not None and value not in self.choices:
            raise SettingError(f"{where} = {value!r}: choose from {', '.join(map(str, self.choices))}"
                               + did_you_mean(value, self.choices))


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``''``."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_table(section: str, values: dict, declared: dict[str, Setting]) -> None:
    """Check every key of a preset table against its declarations; unknown keys are errors."""
    if not isinstance(values, dict):
        raise SettingError(f"[{section}] must be a table, got {values!r}")
    for key, value in values.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise SettingError(f"[{section}] {key}: unknown setting{did_you_mean(key, declared)}; "
                               f"known settings of [{section}]: {known}")
        declared[key].check(f"[{section}] {key}", value)
