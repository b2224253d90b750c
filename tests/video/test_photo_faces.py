"""A `--subject` photo folder with a group photo: the face fitted there is the folder's person, not the largest."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import fitter.optimize.photo_faces as photo_faces
from face_crops import face_square
from fitter.app.subject import Observer, SubjectSettings, SubjectUnit, load_photos, pick_people
from fitter.common.files import write_image
from fitter.optimize.presets import load_preset
from fitter.optimize.schedule import NonFiniteFit

SPLIT = 280  # the group photo's x: the stranger (larger) left of it, the person right of it


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    cache = d / "cache"
    person = d / "person"
    person.mkdir()
    face = face_square("grace_hopper.jpg", 240, cache)
    write_image(person / "a.png", face)
    write_image(person / "b.png", np.ascontiguousarray(face[:, ::-1]))
    write_image(person / "c.png", np.clip(face.astype(np.float32) * 0.7 + 20, 0, 255).astype(np.uint8))
    group = np.full((300, 560, 3), 128, np.uint8)
    group[20:280, 20:280] = face_square("Luciano.png", 260, cache)
    group[70:250, 340:520] = cv2.resize(face, (180, 180), interpolation=cv2.INTER_AREA)
    write_image(person / "d_group.png", group)
    return person, cache


def loaded_folder(folder, preset):
    person, cache = folder
    settings = SubjectSettings(preset=preset, settings={}, cache_dir=str(cache))
    return load_photos(SubjectUnit("photos", person), Observer(settings))


def centre_x(face) -> float:
    return float((face.bbox[0] + face.bbox[2]) / 2)


def test_the_group_photos_face_is_the_folders_person(folder, ict):
    preset = load_preset("fast")
    loaded = loaded_folder(folder, preset)
    assert [len(found) for found in loaded.faces] == [1, 1, 1, 2]
    assert centre_x(loaded.evidence.frames[3].face) < SPLIT  # the premise: the largest face is the stranger's
    said = pick_people(loaded, ict, preset)
    assert centre_x(loaded.evidence.frames[3].face) > SPLIT
    assert loaded.evidence.frames[3].sharpness == loaded.faces[3][1][1]
    assert len(said) == 1 and said[0].startswith("d_group.png shows 2 faces: fitted the one at"), said
    assert all(centre_x(f.face) < 240 for f in loaded.evidence.frames[:3])  # one-face photos untouched


def test_no_group_photo_costs_nothing(folder, ict, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a face was fitted to choose between faces")
    monkeypatch.setattr(photo_faces, "fit_face", refuse)
    preset = load_preset("fast")
    loaded = loaded_folder(folder, preset)
    loaded.faces[3] = loaded.faces[3][:1]
    assert pick_people(loaded, ict, preset) == []
    choice = photo_faces.choose_faces(ict, preset, [[f for f, _ in found] for found in loaded.faces],
                                      [(300, 300)] * 4, [None] * 4, 0.8)
    assert choice.chosen == [0, 0, 0, 0]


def test_a_face_that_cannot_be_fitted_is_not_chosen(folder, ict, monkeypatch):
    preset = load_preset("fast")
    loaded = loaded_folder(folder, preset)
    person = loaded.faces[3][1][0]
    real_fit = photo_faces.fit_face

    def fit(model, face, *args):
        if face is person:
            raise NonFiniteFit("landmarks: energy became non-finite")
        return real_fit(model, face, *args)
    monkeypatch.setattr(photo_faces, "fit_face", fit)
    choice = photo_faces.choose_faces(ict, preset, [[f for f, _ in found] for found in loaded.faces],
                                      [f.image_size for f in loaded.evidence.frames], [None] * 4, 0.8)
    assert choice.chosen == [0, 0, 0, 0] and np.isnan(choice.distances[3][1]) and choice.distances[3][0] > 0.8
