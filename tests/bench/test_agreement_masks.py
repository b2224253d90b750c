"""`facefit bench photos`: each preset's fit reads, and is scored against, the masks its segmentation setting
names (a `--config` choosing a backend is what measures one source against another)."""
from __future__ import annotations

from fitter.bench.agreement import fit_photos, mask_backend
from fitter.observe import seg_parser
from paths import EXAMPLES


def test_mask_backend_follows_the_preset():
    assert mask_backend({"segmentation": {"backend": "landmarks"}}) == "landmarks"
    assert mask_backend({}) == "auto"


def test_photos_scored_against_the_configured_masks(tmp_path):
    config = tmp_path / "landmarks.toml"
    config.write_text('[segmentation]\nbackend = "landmarks"\n')
    (drawn,) = fit_photos([EXAMPLES / "Bryan.png"], ["fast"], config=config)
    (parsed,) = fit_photos([EXAMPLES / "Bryan.png"], ["fast"])
    assert drawn["mask_source"] == "landmarks" and parsed["mask_source"] == seg_parser.SOURCE
    assert drawn["fast"]["iou"] != parsed["fast"]["iou"]
