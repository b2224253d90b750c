"""The file-problem errors (fitter.common.errors and the layers' own types): one line naming the file, what is
wrong and what to do, the parts kept as attributes, and intact after pickling (worker processes, Ray)."""
from __future__ import annotations

import pickle

import pytest

from fitter.common.errors import FileProblem
from fitter.io import ImageError, InputError
from fitter.io.rig import RigError
from fitter.model import ModelFormatError

ERRORS = [
    (FileProblem("a.bin", "is empty", "re-copy it"), "a.bin: is empty (re-copy it)"),
    (ImageError("face.jpg", "is a folder", "list it as an input"), "face.jpg: is a folder (list it as an input)"),
    (RigError("rig.json", "lists no cameras"), "rig.json: lists no cameras"),
    (ModelFormatError("m.pkl", "missing key 'f'", "give FLAME's generic_model.pkl"),
     "m.pkl: missing key 'f'. give FLAME's generic_model.pkl"),
]


@pytest.mark.parametrize(("error", "message"), ERRORS)
def test_message_and_parts(error, message):
    assert str(error) == message
    assert isinstance(error, FileProblem)
    assert error.path == message.split(": ")[0]
    assert error.problem in message and error.hint in message


def test_model_format_error_is_a_value_error():
    with pytest.raises(ValueError, match="m.npz: bad"):
        raise ModelFormatError("m.npz", "bad")


@pytest.mark.parametrize("error", [e for e, _ in ERRORS] + [InputError([("a.jpg", "missing"), ("b", "odd")], "see -h")])
def test_pickling_keeps_type_message_and_parts(error):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert (again.path, again.problem, again.hint) == (error.path, error.problem, error.hint)
