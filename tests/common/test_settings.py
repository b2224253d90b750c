"""Declared settings (fitter.common.settings): every kind of check, its one-line message, and the nearest-name
hint."""
from __future__ import annotations

import pytest

from fitter.common.settings import Setting, SettingError, check_table, did_you_mean


def error(setting: Setting, value, where: str = "[sec] key") -> str:
    with pytest.raises(SettingError) as caught:
        setting.check(where, value)
    return str(caught.value)


class TestNumbers:
    """float and int: the type (bool is not a number), finiteness, positive, low and high (inclusive)."""

    @pytest.mark.parametrize("value", [0.5, 1, 2.0])
    def test_accepted(self, value):
        Setting("float", low=0.5, high=2).check("[sec] key", value)

    @pytest.mark.parametrize("setting, value, expected", [
        (Setting("float"), "1.0", "[sec] key = '1.0': expected a number"),
        (Setting("float"), True, "[sec] key = True: expected a number"),
        (Setting("int"), 1.5, "[sec] key = 1.5: expected an integer"),
        (Setting("int"), False, "[sec] key = False: expected an integer"),
        (Setting("float"), float("nan"), "[sec] key = nan: must be a finite number"),
        (Setting("float"), float("inf"), "[sec] key = inf: must be a finite number"),
        (Setting("float", positive=True), 0.0, "[sec] key = 0.0: must be greater than 0"),
        (Setting("float", low=0.5), 0.25, "[sec] key = 0.25: must be at least 0.5"),
        (Setting("int", high=4), 5, "[sec] key = 5: must be at most 4"),
    ])
    def test_rejected(self, setting, value, expected):
        assert error(setting, value) == expected


class TestOtherKinds:
    """bool, str (with choices), floats (length and each element), strs (each a choice), table (name -> number)."""

    def test_bool(self):
        Setting("bool").check("k", False)
        assert error(Setting("bool"), 0) == "[sec] key = 0: expected true or false"

    def test_str_choices(self):
        s = Setting("str", choices=("slide", "fixed"))
        s.check("k", "fixed")
        assert error(s, "slid") == "[sec] key = 'slid': choose from slide, fixed (did you mean 'slide'?)"
        assert error(s, 3) == "[sec] key = 3: expected a string"

    def test_floats(self):
        s = Setting("floats", low=0, high=1, length=3)
        s.check("k", [0, 0.5, 1])
        assert error(s, [0.5, 0.5]) == "[sec] key = [0.5, 0.5]: expected a list of 3 numbers"
        assert error(s, (0.1, 0.2, 0.3)) == "[sec] key = (0.1, 0.2, 0.3): expected a list of 3 numbers"
        assert error(s, [0.5, 1.5, 0.5]) == "[sec] key[1] = 1.5: must be at most 1"
        assert error(Setting("floats"), ["a"]) == "[sec] key[0] = 'a': expected a number"

    def test_strs(self):
        s = Setting("strs", choices=("skin", "nose"))
        s.check("k", ["skin", "nose"])
        assert error(s, "skin") == "[sec] key = 'skin': expected a list of strings"
        assert error(s, ["skin", "noze"]) == "[sec] key = 'noze': choose from skin, nose (did you mean 'nose'?)"

    def test_table(self):
        s = Setting("table", low=0, choices=("nose", "skin"))
        s.check("k", {"nose": 1.0, "skin": 0})
        assert error(s, [1.0]) == "[sec] key = [1.0]: expected a table { name = number, ... }"
        assert "(did you mean 'nose'?)" in error(s, {"noze": 1.0})
        assert error(s, {"nose": -1.0}) == "[sec] key.nose = -1.0: must be at least 0"


class TestDidYouMean:
    """The nearest known name, or nothing when none is near."""

    def test_near_and_far(self):
        assert did_you_mean("landmark", ["landmarks", "prdl"]) == " (did you mean 'landmarks'?)"
        assert did_you_mean("zzz", ["landmarks", "prdl"]) == ""
        assert did_you_mean("iteration", {"iterations": 1, "rounds": 2}) == " (did you mean 'iterations'?)"


class TestCheckTable:
    """A section: every key declared and valid; unknown keys name the section, the nearest key and the known ones."""

    DECLARED = {"sigma": Setting("float", positive=True), "robust_delta": Setting("float", positive=True)}

    def test_ok(self):
        check_table("landmarks", {"sigma": 0.1}, self.DECLARED)

    def test_unknown_key(self):
        with pytest.raises(SettingError) as caught:
            check_table("landmarks", {"sigmaa": 0.1}, self.DECLARED)
        assert str(caught.value) == ("[landmarks] sigmaa: unknown setting (did you mean 'sigma'?); known settings of "
                                     "[landmarks]: robust_delta, sigma")

    def test_bad_value_and_not_a_table(self):
        with pytest.raises(SettingError, match=r"^\[landmarks\] sigma = -1: must be greater than 0$"):
            check_table("landmarks", {"sigma": -1}, self.DECLARED)
        with pytest.raises(SettingError, match=r"^\[landmarks\] must be a table, got 3$"):
            check_table("landmarks", 3, self.DECLARED)
        with pytest.raises(SettingError, match="known settings of \\[identity_prior\\]: none"):
            check_table("identity_prior", {"sigma": 1.0}, {})
