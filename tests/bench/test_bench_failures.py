"""`facefit bench synthetic` keeps going when one face's fit ends non-finite: that face becomes a row marked
``"fitted": false`` with the reason, left out of the medians, instead of the whole run (and every other face's
fit) being lost."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import fitter.bench.synthetic as synthetic
from cli.main import main
from fitter.optimize.presets import load_preset
from fitter.optimize.schedule import NonFiniteFit


def _fitted(error_mm: float) -> dict:
    return {"detected": True, "fitted": True, "expression_extreme": False, "procrustes_error_mm": error_mm,
            "focal_px": 1000.0, "focal_true_px": 1000.0, "focal_log_std": None}


FAILED = {"detected": True, "fitted": False, "error": "stage 'prdl': not finite", "expression_extreme": False,
          "procrustes_error_mm": None}


class TestAggregateWithFailures:
    def test_a_failed_fit_counts_as_detected_and_failed_but_not_in_the_medians(self):
        out = synthetic.aggregate([_fitted(2.0), _fitted(4.0), FAILED, {"detected": False}])
        assert out["detected"] == 3 and out["failed"] == 1
        assert out["procrustes_error_mm_median"] == pytest.approx(3.0)
        assert out["focal"]["n"] == 2


class TestRunConfigWithFailures:
    def test_the_run_goes_on_and_each_failure_is_its_row(self, ict, monkeypatch):
        cases = synthetic.prepare(ict, 2, 0, 256, "clean")
        calls = []

        def failing_fit(*args, **kwargs):
            calls.append(1)
            raise NonFiniteFit("stage 'landmarks': the gradient of 'rotation' is not finite")

        monkeypatch.setattr(synthetic, "fit_face", failing_fit)
        rows = synthetic.run_config(ict, cases, load_preset("fast"), masks=None)
        assert len(rows) == 2 and len(calls) >= 1  # every detected face was tried, not only the first
        failed = [r for r in rows if r.get("fitted") is False]
        assert len(failed) == len(calls)
        assert all("not finite" in r["error"] and r["detected"] for r in failed)
        assert synthetic.aggregate(rows)["failed"] == len(calls)


class TestCliSaysWhichFaceFailed:
    def test_one_warning_line_names_the_case_and_the_run_ends_well(self, monkeypatch, tmp_path):
        def failing_fit(*args, **kwargs):
            raise NonFiniteFit("stage 'rigid': the energy is not finite")

        monkeypatch.setattr(synthetic, "fit_face", failing_fit)
        result = CliRunner().invoke(main, ["bench", "synthetic", "--appearance", "clean", "--n", "1", "--size", "256",
                                           "--preset", "fast", "-o", str(tmp_path)])
        assert result.exit_code == 0, result.output
        bench = json.loads((tmp_path / "bench.json").read_text())
        assert bench["cases"][0]["detected"], "the case must reach the fit for this test to mean anything"
        assert bench["cases"][0]["fitted"] is False and bench["aggregate"]["failed"] == 1
        assert "case 0 was not fitted" in " ".join(result.output.split())
