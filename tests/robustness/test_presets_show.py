"""`facefit presets show NAME [--config FILE]` prints the merged preset as TOML that reads back the same."""
from __future__ import annotations

import tomllib

import pytest

from fitter.app.toml_text import toml_text
from fitter.optimize.presets import load_preset
from robust_cli import run_cli


@pytest.mark.parametrize("name", ["fast", "default", "vfx"])
def test_show_round_trips(name):
    result = run_cli(["presets", "show", name])
    assert result.exit_code == 0
    assert tomllib.loads(result.stdout) == load_preset(name)
    assert "[[stages]]" in result.stdout and "weights = { " in result.stdout  # written like the preset files


def test_show_merges_the_config(tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text("[landmarks]\nsigma = 0.05\n")
    result = run_cli(["presets", "show", "fast", "--config", config])
    shown = tomllib.loads(result.stdout)
    assert shown["landmarks"]["sigma"] == 0.05 and shown == load_preset("fast", config)
    bad = tmp_path / "bad.toml"
    bad.write_text("[landmarks\n")
    refused = run_cli(["presets", "show", "fast", "--config", bad])
    assert refused.exit_code == 2 and "bad.toml" in refused.output


def test_emitter_handles_nesting_quoting_and_refuses_null():
    data = {"top": 1, "odd key": "quote \" and\nnewline", "t": {"u": {"v": [1.5, -2]}, "w": True},
            "arr": [{"x": {"y": []}, "z": "é"}], "inf": float("inf"), "empty": {}}
    assert tomllib.loads(toml_text(data)) == data
    with pytest.raises(TypeError):
        toml_text({"x": None})
