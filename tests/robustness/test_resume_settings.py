"""Resume is keyed by the input's bytes and the effective settings: a change refits, with a line saying why."""
from __future__ import annotations

import json
import shutil

from fitter.app.ledger import (effective_settings, finished_faces, resume_key, settings_change, summary_from_folders,
                               why_refit)
from fitter.optimize.presets import load_preset
from robust_cli import EXAMPLES, SHORT_FAST, fit_args, run_cli, summary_of


def _settings(preset: dict, **changes) -> dict:
    args = dict(detector="mediapipe", largest=False, max_faces=20, segmentation=None, parser=None,
                parser_weights=None)
    return effective_settings(preset, **{**args, **changes})


def test_same_everything_skips_and_keeps_the_earlier_figures(tmp_path, short_config, cache_dir):
    out = tmp_path / "out"
    face = tmp_path / "me.png"
    shutil.copy(EXAMPLES / "Luciano.png", face)
    first = run_cli(fit_args(face, out, short_config, cache_dir))
    assert first.exit_code == 0 and summary_of(out)["fitted"] == 1
    report = json.loads((out / "me" / "report.json").read_text())

    again = run_cli(fit_args(face, out, short_config, cache_dir))
    row = summary_of(out)["faces"][0]
    assert again.exit_code == 0 and row["status"] == "skipped" and "refitting" not in again.output
    assert (row["rmse_px"], row["nme"]) == (report["landmarks"]["rmse_px"], report["landmarks"]["nme"])

    # another preset (same short stages, so cheap): refitted, and the user is told why
    other = run_cli(fit_args(face, out, short_config, cache_dir, preset="default"))
    assert other.exit_code == 0 and summary_of(out)["fitted"] == 1
    assert "me: settings changed since it was fitted (preset fast -> default); refitting" in other.output

    # a changed config value: named with its old and new value
    changed = tmp_path / "changed.toml"
    changed.write_text(SHORT_FAST + "\n[landmarks]\nsigma = 0.03\n")
    tuned = run_cli(fit_args(face, out, changed, cache_dir, preset="default"))
    assert "(landmarks.sigma 0.02 -> 0.03); refitting" in tuned.output and summary_of(out)["fitted"] == 1

    # a different picture under the same name
    shutil.copy(EXAMPLES / "grace_hopper.jpg", face)
    swapped = run_cli(fit_args(face, out, changed, cache_dir, preset="default"))
    assert "me: the input file changed since it was fitted; refitting" in swapped.output

    # --overwrite refits what is done, silently
    forced = run_cli(fit_args(face, out, changed, cache_dir, "--overwrite", preset="default"))
    assert summary_of(out)["fitted"] == 1 and "refitting" not in forced.output
    assert [f.folder for f in summary_from_folders(out)] == ["me"]


def test_resume_decisions_without_fitting(tmp_path):
    fast, default = load_preset("fast"), load_preset("default")
    s_fast = _settings(fast)
    key = resume_key("abc", s_fast)
    assert key == resume_key("abc", _settings(load_preset("fast")))  # stable across loads
    assert key != resume_key("abc", _settings(fast, segmentation="landmarks"))
    assert key == resume_key("abc", _settings(fast, segmentation="auto"))  # the preset's own choice, spelled out
    assert key != resume_key("abd", s_fast)
    assert settings_change(s_fast, _settings(default)) == "preset fast -> default"
    assert settings_change(s_fast, _settings(fast, detector="fan")) == 'detector "mediapipe" -> "fan"'
    assert "did not record" in why_refit({"landmarks": {}}, key, s_fast)

    # an image whose two faces are both done is skipped without decoding it; a missing face means "not done"
    for k in (0, 1):
        (tmp_path / f"pair_face{k}").mkdir()
        report = {"resume_key": key, "face_count": 2, "landmarks": {"rmse_px": 1.5 + k, "nme": 0.02},
                  "timings_s": {"total": 3.0}}
        (tmp_path / f"pair_face{k}" / "report.json").write_text(json.dumps(report))
    done = finished_faces(tmp_path, "pair", "pair.png", key)
    assert [(f.folder, f.status, f.rmse_px) for f in done] == [("pair_face0", "skipped", 1.5),
                                                                ("pair_face1", "skipped", 2.5)]
    (tmp_path / "pair_face1" / "report.json").unlink()
    assert finished_faces(tmp_path, "pair", "pair.png", key) is None
