"""A Ray cluster of two nodes on this machine (ray.cluster_utils.Cluster: a head and a worker node, each with
its own raylet): the batch finishes with every face fitted when the worker node is removed mid-run."""
from __future__ import annotations

import logging

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'facefit[ray]')")
from ray.cluster_utils import Cluster  # noqa: E402

from engines import CORRUPT, deadline, failed_names, hidden_entries, small_batch  # noqa: E402
from fitter.app.batch import run_batch  # noqa: E402
from fitter.app.ray_engine import RayEngine  # noqa: E402
from fitter.io import discover_inputs  # noqa: E402
from robust_cli import face_folders  # noqa: E402

OBJECT_STORE_BYTES = 80 * 2**20  # per node: the workers get file names and return small outcomes
PHOTOS = {f"p{i}.png": "Bryan.png" for i in range(4)}  # the smallest example photo, four times
BATCH_DEADLINE_S = 180  # about 30 s on 2 loaded cores; a pool that never frees room for restarts hangs


@pytest.fixture
def two_nodes():
    """A head with room for one fit and a worker node with room for two."""
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.WARNING)
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def test_batch_completes_when_a_node_is_removed(two_nodes, tmp_path, short_fits):
    cluster, worker = two_nodes
    inputs = small_batch(tmp_path / "in", PHOTOS)
    out = tmp_path / "out"
    removed = []

    def remove_worker_node(outcome) -> None:
        """At the first fitted face all three workers have an input: the worker node's two die mid-face."""
        if not removed and outcome.faces:
            cluster.remove_node(worker)
            removed.append(outcome.input)

    with RayEngine() as engine, deadline(BATCH_DEADLINE_S, "the batch that lost a node"):
        assert engine.slots() == 3
        summary = run_batch(discover_inputs([inputs]).images, out, short_fits.options(), on_image=remove_worker_node,
                            engine=engine)
        assert engine.slots() == 1
    assert removed and summary["complete"] is True
    assert summary["fitted"] == 4 and failed_names(summary) == [CORRUPT]
    assert face_folders(out) == sorted(name.removesuffix(".png") for name in PHOTOS) and hidden_entries(out) == []
