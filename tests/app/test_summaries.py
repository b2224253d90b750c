"""`facefit summarize OUT`: summary.json rebuilt from the face folders, with the failures of the shards'
summaries that no folder has made good since, and the shards that have not finished."""
from __future__ import annotations

import json

from fitter.app.summaries import rebuild_summary
from fitter.common.files import write_json
from robust_cli import run_cli, summary_of


def _face(out, folder: str, source: str, face_index: int = 0, rmse: float = 1.0) -> None:
    write_json(out / folder / "report.json", {"input": source, "face_index": face_index,
                                              "landmarks": {"rmse_px": rmse, "nme": rmse / 50},
                                              "timings_s": {"total": 2.0}})


def _shard_summary(out, k: int, n: int, complete: bool, failed: list[dict], faces: list[dict]) -> None:
    write_json(out / f"summary.shard-{k}-of-{n}.json", {
        "complete": complete, "failed": failed, "faces": faces, "images": 3, "images_planned": 3,
        "preset": "fast", "detector": "mediapipe", "device": "cpu", "seconds": 12.5, "shard": f"{k}/{n}",
        "skipped_inputs": [{"input": "in/notes.txt", "reason": "in/notes.txt: not an image"}]})


def test_rebuilt_from_folders_and_shard_summaries(tmp_path):
    out = tmp_path / "out"
    _face(out, "x", "in/x.png", rmse=0.5)
    _face(out, "y_face0", "in/y.png", 0, rmse=0.7)
    (out / ".x.123.abcd.partial").mkdir()  # a staging folder is never a face
    lost_face = {"input": "in/y.png", "face_index": 1, "folder": "y_face1", "status": "failed",
                 "reason": "in/y.png face 1: fitting failed (x)", "rmse_px": None, "nme": None, "seconds": None,
                 "note": ""}
    _shard_summary(out, 0, 2, True, failed=[
        {"input": "in/x.png", "reason": "in/x.png: the worker fitting it was lost 3 time(s)"},  # fitted since
        {"input": "in/z.png", "reason": "in/z.png: no face found by mediapipe"},
        {"input": "in/y.png", "face_index": 1, "reason": lost_face["reason"]},
    ], faces=[lost_face])
    summary = rebuild_summary(out)
    assert [(f["folder"], f["status"]) for f in summary["faces"]] == [
        ("x", "fitted"), ("y_face0", "fitted"), ("y_face1", "failed")]
    assert summary["faces"][0]["rmse_px"] == 0.5 and summary["fitted"] == 2 and summary["images"] == 3
    assert sorted(f["input"] for f in summary["failed"]) == ["in/y.png", "in/z.png"]
    assert summary["complete"] is False and summary["shards_missing"] == ["1/2"]
    assert summary["shards"] == {"0/2": {"complete": True, "images": 3, "images_planned": 3}}
    assert summary["skipped_inputs"] == [{"input": "in/notes.txt", "reason": "in/notes.txt: not an image"}]

    _shard_summary(out, 1, 2, False, failed=[], faces=[])
    result = run_cli(["summarize", out])
    assert result.exit_code == 0, result.output
    assert "shard 1/2 has not finished" in " ".join(result.output.split())
    written = summary_of(out)
    assert written["complete"] is False and written["shards_missing"] == [] and written["images_planned"] == 6
    assert json.loads((out / "summary.shard-0-of-2.json").read_text())["shard"] == "0/2"  # left as it was


def test_nothing_to_summarise_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder, says in ((tmp_path / "empty", "holds no face folder"), (tmp_path / "missing", "is not a folder")):
        result = run_cli(["summarize", folder])
        assert result.exit_code == 2 and says in result.output


def test_reports_and_summaries_that_cannot_be_read_are_named_not_trusted(tmp_path):
    out = tmp_path / "out"
    _face(out, "x", "in/x.png")
    for folder, text in (("cut", '{"input": "in/cut.png", "landm'), ("edited", '{"input": "in/e.png", '
                         '"landmarks": [1]}'), ("foreign", '{"x": 1}')):
        (out / folder).mkdir()
        (out / folder / "report.json").write_text(text)
    _shard_summary(out, 0, 2, True, failed=[], faces=[])
    (out / "summary.shard-1-of-2.json").write_text('{"complete": tr')  # cut short
    result = run_cli(["summarize", out])
    assert result.exit_code == 0, result.output
    summary = summary_of(out)
    assert summary["fitted"] == 1 and summary["complete"] is False
    assert summary["shards_missing"] == [] and summary["shards_unreadable"] == ["1/2"]
    failed = {f["folder"]: f["reason"] for f in summary["faces"] if f["status"] == "failed"}
    assert set(failed) == {"cut", "edited", "foreign"}
    assert all("is not a facefit report; delete" in r for r in failed.values())
    assert "shard 1/2: its summary file cannot be read" in " ".join(result.output.split())


def test_folders_fitted_with_different_settings_are_said_to_be_mixed(tmp_path):
    out = tmp_path / "out"
    for folder, key in (("a", "1" * 64), ("b", "1" * 64), ("c", "2" * 64)):
        write_json(out / folder / "report.json", {"input": f"in/{folder}.png", "face_index": 0,
                                                  "resume_key": {"content": "x", "settings": key}})
    result = run_cli(["summarize", out])
    assert result.exit_code == 0, result.output
    assert summary_of(out)["settings_groups"] == {"1" * 12: ["a", "b"], "2" * 12: ["c"]}
    assert "mixed settings" in result.output and "2 different presets or configs" in " ".join(result.output.split())

