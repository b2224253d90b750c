import copy
import pickle

import numpy as np
import torch

from fitter.model.topology import triangulate
from paths import SHARED


def test_ict_sizes_and_regions(ict):
    assert ict.num_vertices == 14388 and ict.num_identity == 100 and ict.num_expression == 53
    topo = ict.topology
    assert topo.triangles.shape == (28552, 3) and topo.triangles.max() < ict.num_vertices
    assert topo.region("face").sum() == 9409 and topo.region("eyes").sum() == 3140
    assert topo.region("face")[topo.landmarks68].all()
    assert set(ict.expression_names[:2]) == {"browDown_L", "browDown_R"}


def test_region_sample_is_evenly_spaced_and_bounded(ict):
    face = np.flatnonzero(ict.topology.region("face"))
    picked = ict.topology.region_sample("face", 500)
    assert len(picked) == 500 and np.isin(picked, face).all()
    assert len(set(np.diff(np.searchsorted(face, picked)).tolist())) == 1  # every k-th vertex of the region
    assert np.array_equal(ict.topology.region_sample("face", 10 ** 6), face)  # fewer vertices than asked: all


def test_vertices_batched_shared_identity(ict):
    identity = torch.randn(100)
    expression = torch.rand(3, 53)
    v = ict.vertices(identity, expression)
    assert v.shape == (3, ict.num_vertices, 3) and v.dtype == torch.float32
    for f in range(3):
        single = ict.vertices(identity, expression[f : f + 1])
        torch.testing.assert_close(v[f : f + 1], single)
    # zero coefficients give the neutral mean; one identity unit adds exactly that basis vector
    torch.testing.assert_close(ict.vertices()[0], ict.mean)
    e0 = torch.zeros(100)
    e0[5] = 1.0
    delta = ict.vertices(e0)[0] - ict.mean
    torch.testing.assert_close(delta.reshape(-1), ict.identity_basis[5])


def test_subset_matches_full(ict):
    identity, expression = torch.randn(100), torch.rand(2, 53)
    idx = torch.tensor([0, 17, 9000, 14387])
    full = ict.vertices(identity, expression)
    torch.testing.assert_close(ict.vertices_subset(idx, identity, expression), full[:, idx])


class TestSubsetCache:
    """A vertex subset's gathered bases are kept between evaluations; an edited or replaced basis, or a pickled
    model, never sees a stale gather."""

    def test_repeated_subset_matches_full(self, ict):
        model = copy.deepcopy(ict)
        identity, expression = torch.randn(100), torch.rand(1, 53)
        idx = torch.arange(0, 14388, 7)
        first = model.vertices_subset(idx, identity, expression)
        again = model.vertices_subset(idx.clone(), identity, expression)  # equal values, another tensor
        assert torch.equal(first, again)
        torch.testing.assert_close(again, model.vertices(identity, expression)[:, idx])

    def test_edited_basis_is_gathered_afresh(self, ict):
        model = copy.deepcopy(ict)
        identity, idx = torch.randn(100), torch.tensor([3, 500, 9000])
        model.vertices_subset(idx, identity)
        model.identity_basis.mul_(2.0)  # in place
        torch.testing.assert_close(model.vertices_subset(idx, identity), model.vertices(identity)[:, idx])
        model.identity_basis = -model.identity_basis  # replaced
        torch.testing.assert_close(model.vertices_subset(idx, identity), model.vertices(identity)[:, idx])
        model.mean = model.mean + 1.0
        torch.testing.assert_close(model.vertices_subset(idx, identity), model.vertices(identity)[:, idx])

    def test_pickled_without_the_gathers(self, ict):
        model = copy.deepcopy(ict)
        bare = len(pickle.dumps(model))
        model.vertices_subset(torch.arange(0, 14388, 2), torch.randn(100))
        assert len(pickle.dumps(model)) == bare
        idx = torch.tensor([1, 2, 3])
        torch.testing.assert_close(pickle.loads(pickle.dumps(model)).vertices_subset(idx), model.vertices()[:, idx])


def test_ict_units_and_scale(ict):
    # the neutral head is about 25 cm wide (ear to ear) in centimetres
    width = ict.mean[:, 0].max() - ict.mean[:, 0].min()
    assert ict.units == "cm" and 20.0 < float(width) < 30.0


def test_triangulate_keeps_winding_and_order():
    polys = np.array([[0, 1, 2, 3], [3, 2, 4, -1]])
    uvs = np.array([[10, 11, 12, 13], [13, 12, 14, -1]])
    tris, tri_uvs, owner = triangulate(polys, uvs)
    assert tris.tolist() == [[0, 1, 2], [0, 2, 3], [3, 2, 4]]
    assert tri_uvs.tolist() == [[10, 11, 12], [10, 12, 13], [13, 12, 14]]
    assert owner.tolist() == [0, 0, 1]


def test_ict_asset_roundtrip_below_tolerance():
    """The shipped int16 bases reproduce the kit within 0.01 mm (checked when the kit is present)."""

    import pytest

    kit = SHARED / "models" / "ict-facekit" / "ict_facekit_shapes.npz"
    if not kit.exists():
        pytest.skip("the ICT kit is not next to this checkout; the build script asserts the same bound")
    from fitter.model import load_ict

    m = load_ict()
    src = np.load(kit)
    from fitter.model.ict import _load_arrays

    keep = _load_arrays()["source_vertex"]
    err = np.abs(m.identity_basis.numpy().reshape(100, -1, 3) - src["identity_deltas"][:, keep]).max()
    assert err * 10 < 0.01
