"""`facefit bench synthetic`: the appearance option, rows named after presets, and the per-case contract of
bench.json (index, procrustes_error_mm, the mean-face reference, the effects of each case)."""
from __future__ import annotations

import json
import math

import numpy as np
from click.testing import CliRunner

from cli.main import main
from fitter.bench.synthetic import ABLATION_ROWS, focal_coverage

SEED = 4  # case 0 of this seed, rendered wild at 256 px, wears glasses and is found by the detector


def test_ablation_rows_include_the_presets():
    names = [row["name"] for row in ABLATION_ROWS]
    assert {"landmarks", "fast", "default", "vfx"} <= set(names)
    presets = {row["name"]: row for row in ABLATION_ROWS}
    for name in ("fast", "default", "vfx"):
        assert presets[name]["preset"] == name and "stages" not in presets[name]  # the whole preset


def test_bench_synthetic_wild_tiny_run(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, ["bench", "synthetic", "--appearance", "wild", "--n", "1", "--size", "256",
                                       "--seed", str(SEED), "--ablation", "--rows", "landmarks", "-o", str(out)])
    assert result.exit_code == 0, result.output
    bench = json.loads((out / "bench.json").read_text())
    assert bench["appearance"] == "wild"
    (row,) = bench["rows"]
    assert row["name"] == "landmarks" and row["detected"] == 1
    (case,) = row["cases"]
    assert case["index"] == 0
    assert isinstance(case["procrustes_error_mm"], float) and 0 < case["procrustes_error_mm"] < 20
    assert case["mean_face_procrustes_error_mm"] > 0
    focal = row["focal"]  # the reported focal uncertainty held against the true focal length
    assert focal["n"] == 1 and focal["log_error_median"] == abs(math.log(case["focal_px"] / case["focal_true_px"]))
    assert focal["with_std"] == (case["focal_log_std"] is not None)
    assert case["focal_std_source"] in ("curvature", "prior")  # landmarks frees the focal: always a figure
    assert case["suspect"] is None and row["suspect_faces"] == 0  # the landmark stages are not judged
    # the parts scored by the truth even where the row has no part masks (landmarks: part_iou None)
    assert case["part_iou"] is None and row["part_iou_median"] is None
    assert {"nose", "skin"} <= set(case["part_iou_truth"]) and all(0 < v <= 1 for v in case["part_iou_truth"].values())
    assert row["part_iou_truth_median"] == np.mean(list(case["part_iou_truth"].values()))
    (effects,) = bench["case_effects"]
    assert effects["index"] == 0
    names = {e["name"] for e in effects["effects"]}
    assert {"lighting", "skin_texture", "glasses"} <= names
    assert (out / "images" / "case000.png").exists()


def test_bench_synthetic_rejects_unknown_rows_and_appearances(tmp_path):
    runner = CliRunner()
    bad_row = runner.invoke(main, ["bench", "synthetic", "--ablation", "--rows", "nope", "-o", str(tmp_path)])
    assert bad_row.exit_code != 0 and "unknown ablation rows ['nope']" in bad_row.output
    bad_look = runner.invoke(main, ["bench", "synthetic", "--appearance", "dirty", "-o", str(tmp_path)])
    assert bad_look.exit_code != 0 and "dirty" in bad_look.output
    rows_alone = runner.invoke(main, ["bench", "synthetic", "--rows", "landmarks", "-o", str(tmp_path)])
    assert rows_alone.exit_code != 0 and "--ablation" in rows_alone.output


def test_the_detection_of_the_rendered_face_is_fitted_and_false_faces_are_not(ict):
    """Wild backgrounds, lenses and hands can make the detector report small false faces: the benchmark fits
    the detection that overlaps the true face, and calls a case undetected when none does."""
    import numpy as np

    from fitter.bench.synthetic import PreparedCase, match_face, true_landmarks
    from fitter.observe.types import FaceObservation, ImageObservation
    from fitter.synth.cases import render_case, sample_case

    case = sample_case(ict, 0, 0, 128, detail=False)
    prepared = PreparedCase(case, render_case(ict, case), None, 0.0)
    lm = true_landmarks(ict, prepared)

    def face(box) -> FaceObservation:
        return FaceObservation(landmarks=lm, landmark_format="mediapipe478", bbox=np.asarray(box, np.float32))

    true_box = np.r_[lm.min(0), lm.max(0)]
    false_box = [2, 2, 12, 12]
    prepared.observation = ImageObservation("test", (128, 128), [face(false_box), face(true_box + 1)])
    assert np.allclose(match_face(prepared, ict).bbox, true_box + 1)
    prepared.observation = ImageObservation("test", (128, 128), [face(false_box)])
    assert match_face(prepared, ict) is None


def test_focal_coverage_counts_true_focals_within_the_reported_std():
    rows = [{"focal_px": 1000.0 * math.exp(e), "focal_true_px": 1000.0, "focal_log_std": s, "focal_std_source": src}
            for e, s, src in ((0.1, 0.2, "curvature"), (-0.3, 0.2, "curvature"), (0.05, 0.1, "prior"),
                              (0.4, None, ""), (0.2, 0.1, "curvature"))]
    out = focal_coverage(rows)
    assert out["n"] == 5 and out["with_std"] == 4
    assert math.isclose(out["log_error_median"], 0.2)
    assert out["within_std"] == 0.5  # 0.1 / 0.2 and 0.05 / 0.1 within; 0.3 / 0.2 and 0.2 / 0.1 not
    assert math.isclose(out["std_scale_68"], float(np.quantile([0.5, 1.5, 0.5, 2.0], 0.68)))
    assert math.isclose(out["std_median"], 0.15)
    assert out["curvature"]["with_std"] == 3 and math.isclose(out["curvature"]["within_std"], 1 / 3)
    prior = out["prior"]
    assert prior["with_std"] == 1 and prior["within_std"] == 1.0 and math.isclose(prior["std_scale_68"], 0.5)
    assert focal_coverage([])["within_std"] is None
