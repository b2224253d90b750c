"""A large batch's summary: rewritten after every image up to THROTTLE_AFTER images, then only as often as
WRITE_SHARE of the run's time allows (rewriting 100,000 rows after each image would outlast the fits)."""
from __future__ import annotations

import json
from pathlib import Path

from fitter.app import ledger
from fitter.app.ledger import FaceOutcome, ImageOutcome, Ledger

IMAGES = 300
SMALL = 20  # THROTTLE_AFTER for this test: the same rule at a size a test can afford


def test_progress_rewrites_are_throttled_beyond_a_size(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger, "THROTTLE_AFTER", SMALL)
    writes = []
    real_write = ledger.write_json

    def counted(path, data):
        writes.append(data["images"])
        return real_write(path, data)

    monkeypatch.setattr(ledger, "write_json", counted)
    paths = [Path(f"in/img_{i:04d}.jpg") for i in range(IMAGES)]
    run = Ledger(tmp_path, paths, {"preset": "fast"})
    run.start()
    for p in paths:  # outcomes arriving far faster than a rewrite takes
        run.record(ImageOutcome(str(p), faces=[FaceOutcome(str(p), 0, p.stem, "fitted", rmse_px=1.0)]))
    assert writes[: SMALL + 1] == list(range(SMALL + 1))  # the empty summary, then one per image
    assert len(writes) - SMALL - 1 < (IMAGES - SMALL) / 4  # then far fewer than one per image
    summary = run.finish()
    assert summary["complete"] is True and summary["images"] == IMAGES and summary["fitted"] == IMAGES
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


class TestSuspectColumn:
    """The summary's suspect column names the stage the guard faulted and says when it was only flagged."""

    def test_reverted_and_kept_stages(self):
        reverted = {"suspect": {"stage": "photometric-64", "reason": "part IoU fell", "action": "reverted"}}
        kept = {"suspect": {"stage": "photometric-64", "reason": "part IoU fell", "action": "kept"}}
        assert ledger.report_figures(reverted)["suspect"] == "photometric-64"
        assert ledger.report_figures(kept)["suspect"] == "photometric-64 (kept)"
        assert ledger.report_figures({"suspect": None})["suspect"] == ""
        assert ledger.report_figures({"suspect": "edited by hand"})["suspect"] == ""
