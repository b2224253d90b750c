"""The preset schema (fitter.optimize.schema) through the loader: every kind of bad value in a user config is
one PresetError that names the config file, the key, the value and, for a misspelling, the nearest name."""
from __future__ import annotations

import pytest

from fitter.common.settings import SettingError
from fitter.optimize.presets import PresetError, load_preset, validate

STAGE = 'name = "mine"\nfree = ["rotation"]\niterations = 3\n'


def error_of(tmp_path, text: str, name: str = "user.toml") -> str:
    """The message of the PresetError that loading ``text`` as a --config over the fast preset raises."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PresetError) as caught:
        load_preset("fast", path)
    message = str(caught.value)
    assert message.startswith(str(path)), message  # the file that holds the bad key comes first
    assert "\n" not in message  # one line
    return message


class TestWeights:
    """Stage weights: finite, not negative, named after a registered term, in [[stages]] and [[append_stages]]."""

    @pytest.mark.parametrize("table, weights, expected", [
        ("stages", "{ landmarks = nan }", ["[[stages]] #1 ('mine') weights.landmarks = nan", "finite"]),
        ("stages", "{ landmarks = -1.0 }", ["weights.landmarks = -1.0", "at least 0"]),
        ("stages", "{ landmark = 1.0 }", ["unknown energy term 'landmark'", "(did you mean 'landmarks'?)"]),
        ("stages", "1.0", ["weights = 1.0", "expected a table"]),
        ("append_stages", "{ prld = 1.0 }", ["[[append_stages]] #1 ('mine')", "(did you mean 'prdl'?)"]),
    ])
    def test_bad_weights(self, tmp_path, table, weights, expected):
        msg = error_of(tmp_path, f"[[{table}]]\n{STAGE}weights = {weights}\n")
        assert all(part in msg for part in expected), msg


class TestSectionsAndKeys:
    """Unknown sections and keys are errors with the nearest known name."""

    def test_unknown_section(self, tmp_path):
        msg = error_of(tmp_path, "[landmark]\nsigma = 0.02\n")
        assert "[landmark]: unknown section" in msg and "(did you mean 'landmarks'?)" in msg

    def test_unknown_key(self, tmp_path):
        msg = error_of(tmp_path, "[landmarks]\nsigmaa = 0.02\n")
        assert "[landmarks] sigmaa: unknown setting" in msg and "(did you mean 'sigma'?)" in msg

    def test_unknown_stage_key(self, tmp_path):
        msg = error_of(tmp_path, '[[stages]]\nname = "mine"\nfree = ["rotation"]\niteration = 5\n'
                                 'weights = { landmarks = 1.0 }\n')
        assert "[[stages]] #1 ('mine') iteration: unknown stage setting" in msg
        assert "(did you mean 'iterations'?)" in msg

    @pytest.mark.parametrize("text, expected", [
        ('[turn_noise]\nterms = ["landmark"]\n', "[turn_noise] terms: unknown energy term 'landmark'"),
        ('[video]\nview_weighted_terms = ["prld"]\n', "[video] view_weighted_terms: unknown energy term 'prld'"),
    ])
    def test_term_lists_name_registered_terms(self, tmp_path, text, expected):
        msg = error_of(tmp_path, text)
        assert expected in msg and "(did you mean" in msg, msg

    def test_term_stage_setting_is_known(self, tmp_path):
        path = tmp_path / "ok.toml"
        path.write_text(f"[[stages]]\n{STAGE}resolution = 32\nweights = {{ landmarks = 1.0 }}\n")
        assert load_preset("fast", path)["stages"][0]["resolution"] == 32  # declared by the photometric term


class TestTypes:
    """Values of the wrong type or outside their range or choices."""

    @pytest.mark.parametrize("text, expected", [
        ('[crop]\nsize = "big"\n', "[crop] size = 'big': expected an integer"),
        ("[crop]\nsize = 2.5\n", "[crop] size = 2.5: expected an integer"),
        ("[landmarks]\nvisibility = 1\n", "[landmarks] visibility = 1: expected true or false"),
        ("[landmarks]\nsigma = 0.0\n", "[landmarks] sigma = 0.0: must be greater than 0"),
        ("[crop]\nmargin = 3.0\n", "[crop] margin = 3.0: must be at most 2"),
        ("[albedo_prior]\nmean_colour = [0.5, 0.3]\n", "[albedo_prior] mean_colour = [0.5, 0.3]: expected a list of 3"),
        ('[landmarks]\ncontour = "slid"\n', "(did you mean 'slide'?)"),
        ('renderer = "opengl"\n', "renderer = 'opengl': choose from"),
        ("[prdl]\npart_weights = { noze = 1.0 }\n", "(did you mean 'nose'?)"),
        (f'[[stages]]\n{STAGE.replace("3", "0")}weights = {{ landmarks = 1.0 }}\n', "iterations = 0: must be at least 1"),
        ('[[stages]]\nname = "mine"\nfree = "rotation"\niterations = 3\nweights = { landmarks = 1.0 }\n',
         "free = 'rotation': expected a list of strings"),
        ('[[stages]]\nname = "mine"\nfree = ["rotatoin"]\niterations = 3\nweights = { landmarks = 1.0 }\n',
         "(did you mean 'rotation'?)"),
        (f'[[stages]]\n{STAGE}optimizer = "sgd"\nweights = {{ landmarks = 1.0 }}\n', "optimizer = 'sgd': choose from"),
        ('stages = 3\n', "stages must be an array of tables"),
    ])
    def test_bad_value(self, tmp_path, text, expected):
        assert expected in error_of(tmp_path, text)


class TestMergedPreset:
    """Checks on the merged preset: learning-rate tables, required stage keys, a stage that weighs nothing."""

    def test_lr_table_missing_a_freed_parameter(self, tmp_path):
        msg = error_of(tmp_path, '[[stages]]\nname = "mine"\nfree = ["rotation", "translation"]\niterations = 3\n'
                                 'optimizer = "adam"\nlr = { rotation = 0.01 }\nweights = { landmarks = 1.0 }\n')
        assert "'mine'" in msg and "no rate for ['translation']" in msg

    def test_lr_table_unknown_parameter(self, tmp_path):
        msg = error_of(tmp_path, f"[[stages]]\n{STAGE}lr = {{ rotatio = 0.01 }}\nweights = {{ landmarks = 1.0 }}\n")
        assert "unknown parameter 'rotatio'" in msg and "(did you mean 'rotation'?)" in msg

    def test_missing_stage_keys(self, tmp_path):
        msg = error_of(tmp_path, '[[stages]]\nname = "mine"\nfree = ["rotation"]\n')
        assert "('mine'): missing iterations, weights" in msg

    def test_stage_weighing_nothing(self, tmp_path):
        msg = error_of(tmp_path, f"[[stages]]\n{STAGE}weights = {{ landmarks = 0.0 }}\n")
        assert "weighs no energy term" in msg

    def test_extends_in_a_user_config(self, tmp_path):
        msg = error_of(tmp_path, 'extends = "default"\n')
        assert "'extends' is for presets" in msg and "--preset" in msg

    def test_preset_name_in_a_user_config(self, tmp_path):  # was ignored: the run used --preset's choice
        msg = error_of(tmp_path, 'preset = "bogus"\n')
        assert "preset = 'bogus', but the run's preset is" in msg and "--preset bogus" in msg
        path = tmp_path / "same.toml"  # what `facefit presets show fast` writes names its own preset: fine
        path.write_text('preset = "fast"\n')
        assert load_preset("fast", path)["preset"] == "fast"

    def test_validate_names_its_source(self):
        preset = load_preset("fast")
        preset["stages"][0]["weights"] = {"landmarks": -2.0}
        with pytest.raises(PresetError, match=r"^bench row 3: .*weights\.landmarks = -2\.0"):
            validate(preset, "bench row 3")
        assert issubclass(PresetError, SettingError)
