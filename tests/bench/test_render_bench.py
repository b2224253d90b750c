"""The renderer benchmark writes render.json with the agreed keys."""
from __future__ import annotations

import json

from fitter.bench.render_bench import run_render_bench


def test_render_bench_writes_json(tmp_path):
    result = run_render_bench(tmp_path, device="cpu", repeats=1, measure_jit=False)
    saved = json.loads((tmp_path / "render.json").read_text())
    assert saved == result
    assert saved["device"] == "cpu" and saved["backend"] == "builtin"
    assert set(saved["fwd_bwd_ms"]) == {"256", "512", "256x8"}
    assert all(isinstance(v, float) and v > 0 for v in saved["fwd_bwd_ms"].values())
    assert saved["covered_pixels"]["256x8"] > saved["covered_pixels"]["256"] > 1000
