import pytest

from fitter.optimize.presets import PresetError, load_preset, merge


def test_presets_load_and_extend():
    fast, default = load_preset("fast"), load_preset("default")
    assert fast["preset"] == "fast" and default["preset"] == "default"
    assert default["landmarks"] == fast["landmarks"]  # inherited through extends
    def work(p):
        return sum(s["iterations"] * s.get("rounds", 1) for s in p["stages"])

    assert work(default) > work(fast)
    vfx = load_preset("vfx")  # appends displacement stages to the default schedule
    names = [s["name"] for s in vfx["stages"]]
    assert names[: len(default["stages"])] == [s["name"] for s in default["stages"]]
    assert [n for n in names if n.startswith("displacement")] == ["displacement-128", "displacement-256",
                                                                   "displacement-512"]
    assert vfx["photo"]["crop_size"] == 512 and "base" not in (fast["preset"], default["preset"])


def test_user_config_merges_over_preset(tmp_path):
    cfg = tmp_path / "my.toml"
    cfg.write_text('[landmarks]\nsigma = 0.02\n[[stages]]\nname = "only"\nfree = ["rotation"]\niterations = 3\n'
                   'weights = { landmarks = 1.0 }\n')
    p = load_preset("fast", cfg)
    assert p["landmarks"]["sigma"] == 0.02 and p["landmarks"]["robust_delta"] == 3.0
    assert [s["name"] for s in p["stages"]] == ["only"]


def test_bad_configs_are_one_clear_error(tmp_path):
    with pytest.raises(PresetError, match="unknown preset"):
        load_preset("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[stages]]\nname='x'\nfree=['wings']\nweights={landmarks=1}\n")
    with pytest.raises(PresetError, match="wings"):
        load_preset("fast", bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[stages]\n")
    with pytest.raises(PresetError, match="broken.toml"):
        load_preset("fast", broken)


def test_merge_replaces_lists():
    assert merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}}
