"""--shard K/N: a stable split of the inputs by their path below the inputs' common folder (the same on every
node), N shards cover the batch once; shards share OUT without clobbering each other; `facefit summarize`
merges them. The last test runs two real shard processes, SIGKILLs one and re-runs it."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from engines import CORRUPT, failed_names, hidden_entries, small_batch
from fitter.app.shards import Shard, ShardError, input_root, parse_summary_name, shard_key, shard_of
from robust_cli import cli_command, cli_env, face_folders, run_cli, run_cli_process, summary_of
from paths import REPO

PATHS = [f"shoot{d}/cam{c}/img_{i:04d}.jpg" for d in range(5) for c in range(4) for i in range(50)]  # 1,000
BALANCE = 0.2  # largest deviation of a shard's size from the mean, as a fraction (SHA-256 spreads evenly)
FIRST_FACE_TIMEOUT_S = 90.0
# a.png, b.png and d.png fall in shard 0 of 2; c.png, e.png and the corrupt file in shard 1 (pinned below)
SHARD_PHOTOS = {name: "Luciano.png" for name in ("a.png", "b.png", "c.png", "d.png", "e.png")}


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_the_batch_once_and_evenly(count):
    shards = [[p for p in PATHS if shard_of(p, count) == k] for k in range(count)]
    assert sorted(p for shard in shards for p in shard) == sorted(PATHS)  # each path in exactly one shard
    mean = len(PATHS) / count
    assert all(abs(len(shard) - mean) <= BALANCE * mean for shard in shards), [len(s) for s in shards]


def test_a_path_has_the_same_shard_on_every_node_in_any_order():
    """Two nodes mounting the share at different places, listing the inputs in different orders."""
    here = [Path("/mnt/nfs/studio/photos") / p for p in PATHS]
    there = [Path("/home/render/share/studio/photos") / p for p in reversed(PATHS)]
    root_here, root_there = input_root(here), input_root(there)
    assert root_here == Path("/mnt/nfs/studio/photos")
    for a, b in zip(here, reversed(there)):
        assert shard_key(a, root_here) == shard_key(b, root_there)
        assert Shard(1, 3).holds(a, root_here) == Shard(1, 3).holds(b, root_there)
    # pinned: a facefit that assigned shards differently would split one batch differently across versions
    assert [shard_of(n, 2) for n in ("a.png", "b.png", "c.png", "d.png", "e.png", CORRUPT)] == [0, 0, 1, 0, 1, 1]


def test_a_mistyped_input_does_not_move_the_images_between_shards(tmp_path):
    from fitter.app.batch import plan_batch

    photos = [tmp_path / "shoot" / f"p{k}.jpg" for k in range(12)]
    typo = [{"input": "/elsewhere/typo.jpg", "reason": "/elsewhere/typo.jpg: does not exist (check the path)"}]
    for k in range(3):
        with_typo = plan_batch(photos, typo, [], Shard(k, 3))
        assert [p for p, _ in with_typo.jobs] == [p for p, _ in plan_batch(photos, [], [], Shard(k, 3)).jobs]
    assert sum(len(plan_batch(photos, typo, [], Shard(k, 3)).failures) for k in range(3)) == 1


def test_shard_text():
    assert Shard.parse("0/4") == Shard(0, 4) and Shard.parse(" 3 / 4 ").label == "3/4"
    assert Shard(2, 4).summary_name == "summary.shard-2-of-4.json"
    assert parse_summary_name("summary.shard-2-of-4.json") == Shard(2, 4)
    assert parse_summary_name("summary.json") is None and parse_summary_name("summary.shard-4-of-4.json") is None
    for bad, says in (("4/4", "0 to N-1"), ("1/0", "0 to N-1"), ("x", "not K/N"), ("-1/2", "not K/N")):
        with pytest.raises(ShardError, match=says):
            Shard.parse(bad)


def test_bad_shard_option_is_one_line(tmp_path):
    result = run_cli(["fit", REPO / "examples" / "images" / "Bryan.png", "-o", tmp_path / "out", "--shard", "2/2"])
    assert result.exit_code == 2 and "--shard" in result.output and "0 to N-1" in result.output
    assert not (tmp_path / "out").exists()


def _wait_for_a_face(out: Path, names: list[str], proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + FIRST_FACE_TIMEOUT_S
    while time.monotonic() < deadline:
        if any((out / name / "report.json").exists() for name in names):
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    raise AssertionError("shard 0 fitted no face")


def _mtimes(out: Path, names) -> dict[str, int]:
    return {n: (out / n / "report.json").stat().st_mtime_ns for n in names if (out / n / "report.json").exists()}


def test_two_shard_processes_one_killed_and_rerun(tmp_path, short_fits):
    inputs = small_batch(tmp_path / "in", SHARD_PHOTOS)
    out = tmp_path / "out"
    mine, theirs = ["a", "b", "d"], ["c", "e"]

    def shard(k: int) -> list[str]:
        return ["fit", inputs, "-o", out, *short_fits.cli(), "--shard", f"{k}/2"]

    procs = [subprocess.Popen(cli_command(shard(k)), cwd=REPO, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    try:
        _wait_for_a_face(out, mine, procs[0])
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=30)
        assert procs[1].wait(timeout=FIRST_FACE_TIMEOUT_S) == 0, procs[1].stderr.read()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    killed = json.loads((out / "summary.shard-0-of-2.json").read_text())
    assert killed["complete"] is False and killed["images_planned"] == 3 and killed["shard"] == "0/2"
    other = json.loads((out / "summary.shard-1-of-2.json").read_text())
    assert other["complete"] is True and [f["folder"] for f in other["faces"]] == theirs
    assert failed_names(other) == [CORRUPT] and not (out / "summary.json").exists()
    finished, theirs_done = _mtimes(out, mine), _mtimes(out, theirs)
    assert 1 <= len(finished) < 3 and len(theirs_done) == 2
    # a leftover of shard 1's face, by a process that is gone: shard 0 must leave it alone (on a cluster that
    # process may run on another node, where its id means something)
    foreign = out / f".c.{procs[0].pid}.n0tm1ne0.partial"
    foreign.mkdir()

    again = run_cli_process(shard(0))
    assert again.returncode == 0, again.stderr
    rerun = json.loads((out / "summary.shard-0-of-2.json").read_text())
    assert rerun["complete"] is True and rerun["skipped"] == len(finished) and rerun["fitted"] == 3 - len(finished)
    assert _mtimes(out, finished) == finished and _mtimes(out, theirs) == theirs_done  # nothing fitted twice
    assert hidden_entries(out) == [foreign.name]
    foreign.rmdir()

    merged = run_cli(["summarize", out])
    assert merged.exit_code == 0 and "5 fitted, 0 skipped, 1 failed" in merged.output
    summary = summary_of(out)
    assert summary["complete"] is True and summary["fitted"] == 5 and failed_names(summary) == [CORRUPT]
    assert face_folders(out) == sorted(mine + theirs) and summary["images"] == 6
    assert set(summary["shards"]) == {"0/2", "1/2"} and summary["shards_missing"] == []
