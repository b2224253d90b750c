"""No JSON we write holds NaN/Infinity, and a fit that went non-finite is a failure, never 'fitted'."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fitter.common.arrays import nonfinite_problem
from fitter.app.toml_text import toml_text
from fitter.common.files import NON_FINITE_KEY, write_json
from robust_cli import FACE, face_folders, fit_args, reasons_by_name, run_cli, short_fast_stages, summary_of

# a stage whose steps are absurdly large: the parameters overflow to inf, the vertices to NaN
BLOW_UP = toml_text({"stages": short_fast_stages()[:1] + [{
    "name": "blow-up", "free": ["rotation", "translation", "identity", "expression"], "optimizer": "adam",
    "iterations": 3, "lr": dict.fromkeys(["rotation", "translation", "identity", "expression"], 1e20),
    "weights": {"landmarks": 1.0, "identity_prior": 1.0}}]})


def _strict_load(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_and_are_listed(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"rmse": float("nan"), "deep": {"e": np.float32("inf"), "ok": 1.5},
                      "arr": np.array([1.0, -np.inf]), "n": np.int64(3)})
    data = _strict_load(path.read_text())
    assert data["rmse"] is None and data["deep"]["e"] is None and data["arr"] == [1.0, None] and data["n"] == 3
    assert data[NON_FINITE_KEY] == {"rmse": "nan", "deep.e": "inf", "arr[1]": "-inf"}
    write_json(path, {"fine": 1.0})
    assert NON_FINITE_KEY not in _strict_load(path.read_text())
    with pytest.raises(TypeError):
        write_json(path, {"x": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # a failed write leaves no temporary


def test_nonfinite_problem_names_what_is_not_finite():
    assert nonfinite_problem({"vertices": np.zeros((5, 3)), "rmse": 1.0, "sh": None}) == ""
    bad = nonfinite_problem({"vertices": np.array([[0, np.nan, 1]]), "rmse": math.inf, "ok": np.ones(2)})
    assert bad == "vertices (1 of 3 values), rmse"


def test_a_fit_that_goes_non_finite_fails_and_writes_no_face(tmp_path, cache_dir):
    config = tmp_path / "blow_up.toml"
    config.write_text(BLOW_UP)
    out = tmp_path / "out"
    result = run_cli(fit_args(FACE, out, config, cache_dir))
    assert result.exit_code == 1, result.output  # nothing fitted
    summary = summary_of(out)
    assert summary["fitted"] == 0 and face_folders(out) == []
    reason = reasons_by_name(summary)["Luciano.png"]
    assert reason.startswith(f"{FACE} face 0: fitting failed") and "finite" in reason.lower(), reason
    assert f"failed {reason}" in result.output
    _strict_load((out / "summary.json").read_text())


def test_a_fit_that_explains_nothing_fails_and_writes_no_face(tmp_path, cache_dir):
    """A finite fit whose landmarks end more than [guard] max_nme eye distances from the detections (an absurd
    camera did that: 26,000) is a failure, not 'fitted'. Here the limit is set below any fit's NME."""
    config = tmp_path / "strict.toml"
    config.write_text(toml_text({"stages": short_fast_stages(), "guard": {"max_nme": 1e-6}}))
    out = tmp_path / "out"
    result = run_cli(fit_args(FACE, out, config, cache_dir))
    assert result.exit_code == 1, result.output
    summary = summary_of(out)
    assert summary["fitted"] == 0 and face_folders(out) == []
    reason = reasons_by_name(summary)["Luciano.png"]
    assert reason.startswith(f"{FACE} face 0: the fit does not explain the face: its landmarks end "), reason
    assert "[guard] max_nme = 1e-06" in reason
