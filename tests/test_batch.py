import json
from pathlib import Path

from fitter.app.batch import BatchOptions, face_folder_name, name_subjects, output_stems, run_batch
from fitter.app.ledger import summary_from_folders
from fitter.optimize.presets import load_preset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def test_output_stems_disambiguate_collisions():
    paths = [Path("a/img.jpg"), Path("b/img.jpg"), Path("a/img.png"), Path("c/other.jpg")]
    stems = output_stems(paths)
    assert stems[Path("c/other.jpg")] == "other"
    assert len(set(stems.values())) == 4
    assert stems[Path("a/img.jpg")] == "a_img" and stems[Path("b/img.jpg")] == "b_img"
    assert face_folder_name("x", 0, 1) == "x" and face_folder_name("x", 2, 3) == "x_face2"


def test_a_stem_another_inputs_face_folder_could_take_is_renamed():
    """pair.jpg's second face goes to pair_face1: an input named pair_face1.jpg must not be written there."""
    stems = output_stems([Path("B/pair.jpg"), Path("B/pair_face1.jpg"), Path("C/solo_face3.jpg")])
    assert stems[Path("B/pair.jpg")] == "pair" and stems[Path("B/pair_face1.jpg")] == "pair_face1_2"
    assert stems[Path("C/solo_face3.jpg")] == "solo_face3"  # no input 'solo': no face folder of that name
    faces_of_pair = {face_folder_name("pair", k, 4) for k in range(4)}
    assert not faces_of_pair & set(stems.values())


def test_subjects_get_folders_no_photo_or_face_folder_has():
    from fitter.app.subject import SubjectUnit

    units = [SubjectUnit("video", Path("v/talk.mp4")), SubjectUnit("video", Path("w/talk.mp4")),
             SubjectUnit("video", Path("v/pair_face1.mp4")), SubjectUnit("photos", Path("v/solo"))]
    name_subjects(units, {"talk", "pair"})
    assert [u.name for u in units] == ["v_talk", "w_talk", "v_pair_face1", "solo"]


def test_parallel_jobs_match_sequential(tmp_path):
    paths = [EXAMPLES / "Bryan.png", EXAMPLES / "Luciano.png"]
    preset = load_preset("fast")
    seq = run_batch(paths, tmp_path / "seq", BatchOptions(preset=preset, cache_dir=str(tmp_path / "c")))
    par = run_batch(paths, tmp_path / "par", BatchOptions(preset=preset, jobs=2, cache_dir=str(tmp_path / "c")))
    assert seq["fitted"] == par["fitted"] == 2
    # workers run torch with 1 thread: float sums happen in another order, so L-BFGS paths differ slightly, and
    # a no-harm guard decision near its threshold can flip (Luciano: 1.56 vs 1.81 px once); a wrong face or a
    # failed fit is far outside 30 %
    for a, b in zip(seq["faces"], par["faces"]):
        assert a["folder"] == b["folder"] and abs(a["rmse_px"] - b["rmse_px"]) < 0.3 * max(a["rmse_px"], b["rmse_px"])


def test_summary_is_rewritten_after_every_image(tmp_path):
    """A batch killed at any point has a summary.json: complete false, the images done so far."""
    preset = load_preset("fast")
    for stage in preset["stages"]:
        stage.update(iterations=3, rounds=1)
    paths = [EXAMPLES / "Bryan.png", tmp_path / "missing.png", EXAMPLES / "Luciano.png"]
    seen = []

    def check(outcome):
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        seen.append((summary["complete"], summary["images"], summary["images_planned"]))

    final = run_batch(paths, tmp_path / "out", BatchOptions(preset=preset, cache_dir=str(tmp_path / "c")),
                      on_image=check)
    assert seen == [(False, 1, 3), (False, 2, 3), (False, 3, 3)]
    assert final["complete"] is True and final["fitted"] == 2 and len(final["failed"]) == 1
    assert final == json.loads((tmp_path / "out" / "summary.json").read_text())
    rebuilt = summary_from_folders(tmp_path / "out")
    assert [(f.folder, f.status) for f in rebuilt] == [("Bryan", "fitted"), ("Luciano", "fitted")]
    assert [f.rmse_px for f in rebuilt] == [f["rmse_px"] for f in final["faces"]]


def test_a_photo_fits_the_same_after_another(tmp_path):
    """A face's fit does not depend on what the process fitted before it: astronaut alone and astronaut after Bryan
    in one batch give the same parameters, bit for bit (GrabCut, which reads the background for the photometric
    stages, drew its start from a generator that earlier calls had moved on: fitter/observe/background.py)."""
    import numpy as np

    preset = load_preset("default")
    # the 256-px stage sees the outline at full resolution (at 64 px the 130 px by which astronaut's background moved
    # vanished in the level); the landmark stages run as shipped, so that the face reaches the outline
    preset["stages"] = [s for s in preset["stages"] if s["name"] in ("rigid", "landmarks", "photometric-256")]
    preset["stages"][-1].update(iterations=20)
    options = dict(preset=preset, cache_dir=str(tmp_path / "c"))
    run_batch([EXAMPLES / "astronaut.png"], tmp_path / "alone", BatchOptions(**options))
    run_batch([EXAMPLES / "Bryan.png", EXAMPLES / "astronaut.png"], tmp_path / "after", BatchOptions(**options))
    alone = np.load(tmp_path / "alone" / "astronaut" / "params.npz")
    after = np.load(tmp_path / "after" / "astronaut" / "params.npz")
    for key in ("identity", "expression", "rotation", "translation", "sh", "albedo"):
        assert np.array_equal(alone[key], after[key]), key
