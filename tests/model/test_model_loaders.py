"""Model loaders: every test writes a tiny file in the exact distributed format (no real model ships) and checks
unit conversion, the bases, connectivity, UVs, and that bad files raise ModelFormatError naming the file."""
from __future__ import annotations

import contextlib
import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch

from fitter.model import ModelFormatError, MorphableModel, Topology, has_uvs, load_ict, load_model
from fitter.model.loaders import load_bfm, load_flame, load_npz

N = 5  # grid side: 25 vertices, 32 triangles


def dome(width_cm: float = 14.0) -> tuple[np.ndarray, np.ndarray]:
    """A face-sized dome bulging towards +z (cm) and its triangles, counter-clockwise seen from +z (outside)."""
    xs = np.linspace(-width_cm / 2, width_cm / 2, N)
    x, y = np.meshgrid(xs, xs)  # y grows with the row
    z = 8.0 - 0.04 * (x**2 + y**2)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    tris = []
    for i in range(N - 1):
        for j in range(N - 1):
            a, b, c, d = i * N + j, i * N + j + 1, (i + 1) * N + j + 1, (i + 1) * N + j
            tris += [[a, b, c], [a, c, d]]
    return verts, np.asarray(tris)


def dome_quads() -> np.ndarray:
    polys = []
    for i in range(N - 1):
        for j in range(N - 1):
            polys.append([i * N + j, i * N + j + 1, (i + 1) * N + j + 1, (i + 1) * N + j])
    return np.asarray(polys)


def unit(k: int, size: int, frames: int | None = None) -> torch.Tensor:
    e = torch.zeros(size)
    e[k] = 1.0
    return e if frames is None else e.expand(frames, size).clone()


def assert_vertices(model: MorphableModel, expected: np.ndarray, identity=None, expression=None) -> None:
    got = model.vertices(identity, expression)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# -- FLAME ----------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_chumpy(monkeypatch):
    """Stand-ins whose module path is chumpy.ch, pickling their state the way chumpy does (``__getstate__`` is
    the instance ``__dict__`` without the weak-reference caches). They are importable only inside
    ``installed()``, where files are written; loading happens outside, where no chumpy exists."""
    pkg, ch_mod, ops_mod = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "chumpy.ch_ops"))

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, np.float64)
            self._dirty_vars = set()
            self._itr = None
            self._depends_on_deps = {}
            self._make_dense = False
            self._make_sparse = False

        def __getstate__(self):
            return dict(self.__dict__)

    class add(Ch):  # a derived expression: no stored value
        def __init__(self, a, b):
            self.a, self.b = a, b
            self._dirty_vars = set()

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    add.__module__, add.__qualname__ = "chumpy.ch_ops", "add"
    ch_mod.Ch, ops_mod.add, pkg.ch = Ch, add, ch_mod

    @contextlib.contextmanager
    def installed():
        with monkeypatch.context() as m:
            for name, mod in (("chumpy", pkg), ("chumpy.ch", ch_mod), ("chumpy.ch_ops", ops_mod)):
                m.setitem(sys.modules, name, mod)
            yield

    return types.SimpleNamespace(Ch=Ch, add=add, installed=installed)


PY2_MODULES = {"builtins": "__builtin__", "copyreg": "copy_reg", "numpy._core.multiarray": "numpy.core.multiarray",
               "scipy.sparse._csc": "scipy.sparse.csc"}


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for FLAME: byte strings for str and array data, Python 2 module
    names (__builtin__, numpy.core.multiarray, scipy.sparse.csc)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        short = len(data) < 256
        head = pickle.SHORT_BINSTRING + bytes([len(data)]) if short else pickle.BINSTRING + struct.pack("<i", len(data))
        self.write(head + data)
        self.memoize(obj)

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name)
        self.write(pickle.GLOBAL + f"{PY2_MODULES.get(module, module)}\n{name}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_py2_str
    dispatch[type] = save_global


def flame_arrays(rng, k_total: int = 400) -> dict:
    verts_cm, tris = dome()
    v = len(verts_cm)
    return {
        "v_template": verts_cm / 100.0,  # FLAME is in metres
        "f": tris.astype(np.uint32),
        "shapedirs": rng.normal(scale=1e-3, size=(v, 3, k_total)),
        "posedirs": rng.normal(scale=1e-3, size=(v, 3, 36)),
        "J_regressor": scipy.sparse.csc_matrix(rng.dirichlet(np.ones(v), 5)),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "weights": rng.dirichlet(np.ones(5), v),
        "J": rng.normal(size=(5, 3)) * 0.01,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def write_flame_pkl(path, chumpy, arrays, protocol=2):
    data = dict(arrays)
    with chumpy.installed():
        data["shapedirs"] = chumpy.Ch(arrays["shapedirs"])  # as in FLAME's generic_model.pkl
        if protocol == "py2":
            buf = io.BytesIO()
            Py2Pickler(buf, protocol=2).dump(data)
            path.write_bytes(buf.getvalue())
        else:
            path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", ["py2", 0, 2, 5])
def test_flame_pkl_with_chumpy_and_sparse(tmp_path, fake_chumpy, protocol):
    rng = np.random.default_rng(1)
    arrays = flame_arrays(rng)
    path = write_flame_pkl(tmp_path / "generic_model.pkl", fake_chumpy, arrays, protocol)
    assert "chumpy.ch" not in sys.modules  # the loader must not need chumpy
    model = load_model(path)
    assert "chumpy.ch" not in sys.modules
    assert (model.num_vertices, model.num_identity, model.num_expression) == (25, 100, 50)
    assert model.units == "cm" and model.source["format"] == "flame"
    assert_vertices(model, arrays["v_template"] * 100.0)
    sd = arrays["shapedirs"] * 100.0
    assert_vertices(model, arrays["v_template"] * 100.0 + sd[..., 7], identity=unit(7, 100))
    assert_vertices(model, arrays["v_template"] * 100.0 + sd[..., 300 + 3], expression=unit(3, 50, 1))
    np.testing.assert_array_equal(model.topology.triangles, arrays["f"].astype(np.int64))
    assert any("jaw" in w for w in model.warnings)
    assert not has_uvs(model) and model.topology.has_uvs is False
    assert model.topology.region("face").all()
    np.testing.assert_allclose(model.extras["J_regressor"], arrays["J_regressor"].toarray(), rtol=1e-6)
    assert model.extras["weights"].shape == (25, 5) and model.extras["bs_style"] == "lbs"


def test_flame_old_scipy_sparse_layout(tmp_path, fake_chumpy, monkeypatch):
    """FLAME's J_regressor was pickled by an old scipy as scipy.sparse.csc.csc_matrix with a '_shape' state."""
    rng = np.random.default_rng(2)
    arrays = flame_arrays(rng)
    dense = arrays["J_regressor"].toarray()
    csc = scipy.sparse.csc_matrix(dense)
    old = types.ModuleType("scipy.sparse.csc")

    class csc_matrix:
        def __init__(self):
            self.__dict__.update(_shape=csc.shape, maxprint=50, indices=csc.indices, indptr=csc.indptr,
                                 data=csc.data, format="csc")

    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse.csc", "csc_matrix"
    old.csc_matrix = csc_matrix
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "scipy.sparse.csc", old)
        arrays["J_regressor"] = csc_matrix()
        path = write_flame_pkl(tmp_path / "flame2020.pkl", fake_chumpy, arrays)
    model = load_flame(path, n_shape=20, n_exp=10)
    assert (model.num_identity, model.num_expression) == (20, 10)
    np.testing.assert_allclose(model.extras["J_regressor"], dense, rtol=1e-6)


def test_flame_npz_matches_pkl(tmp_path, fake_chumpy):
    rng = np.random.default_rng(3)
    arrays = flame_arrays(rng)
    pkl = load_model(write_flame_pkl(tmp_path / "generic_model.pkl", fake_chumpy, arrays))
    npz_arrays = dict(arrays, J_regressor=arrays["J_regressor"].toarray())
    np.savez(tmp_path / "flame.npz", **npz_arrays)
    npz = load_model(tmp_path / "flame.npz")
    assert npz.source["format"] == "flame"
    torch.testing.assert_close(npz.mean, pkl.mean)
    torch.testing.assert_close(npz.identity_basis, pkl.identity_basis)
    torch.testing.assert_close(npz.expression_basis, pkl.expression_basis)


def test_flame_uvs_masks_and_landmarks(tmp_path, fake_chumpy):
    rng = np.random.default_rng(4)
    arrays = flame_arrays(rng)
    path = write_flame_pkl(tmp_path / "generic_model.pkl", fake_chumpy, arrays)
    tris = arrays["f"].astype(np.int64)
    vt = rng.uniform(size=(40, 2)).astype(np.float32)
    ft = rng.integers(0, 40, size=tris.shape)
    np.savez(tmp_path / "FLAME_texture.npz", vt=vt, ft=ft, mean=np.zeros((4, 4, 3)))
    masks = {"face": np.arange(0, 20), "left_eyeball": np.array([20, 21]), "right_eyeball": np.array([22, 23]),
             "nose": np.array([12])}
    (tmp_path / "FLAME_masks.pkl").write_bytes(pickle.dumps(masks, protocol=2))
    lmk_tri = rng.integers(0, len(tris), 68)
    lmk_bary = rng.dirichlet([1, 1, 1], 68)
    np.save(tmp_path / "landmark_embedding.npy",
            np.array({"full_lmk_faces_idx": lmk_tri[None], "full_lmk_bary_coords": lmk_bary[None],
                      "static_lmk_faces_idx": lmk_tri[None, 17:]}, dtype=object), allow_pickle=True)

    model = load_flame(path, uv_path=tmp_path / "FLAME_texture.npz", masks_path=tmp_path / "FLAME_masks.pkl",
                       landmark_path=tmp_path / "landmark_embedding.npy")
    topo = model.topology
    assert has_uvs(model) and not any("no UVs" in w for w in model.warnings)
    np.testing.assert_array_equal(topo.uvs, vt)
    np.testing.assert_array_equal(topo.triangle_uvs, ft)
    assert topo.region("face").sum() == 20 and topo.region("eyes").sum() == 4
    assert topo.region("nose")[12] and topo.region("face_and_head").sum() == 21
    np.testing.assert_array_equal(topo.embeddings["ibug68"].triangles, lmk_tri)
    np.testing.assert_allclose(topo.embeddings["ibug68"].barycentrics, lmk_bary, rtol=1e-6)
    np.testing.assert_array_equal(topo.landmarks68, tris[lmk_tri, lmk_bary.argmax(1)])

    # the same UVs from head_template.obj
    verts = arrays["v_template"]
    lines = [f"v {x} {y} {z}" for x, y, z in verts] + [f"vt {u} {v}" for u, v in vt]
    lines += ["f " + " ".join(f"{a + 1}/{t + 1}" for a, t in zip(fv, fu)) for fv, fu in zip(tris, ft)]
    (tmp_path / "head_template.obj").write_text("\n".join(lines) + "\n")
    obj_model = load_flame(path, uv_path=tmp_path / "head_template.obj")
    np.testing.assert_array_equal(obj_model.topology.triangle_uvs, ft)
    np.testing.assert_allclose(obj_model.topology.uvs, vt, rtol=1e-6)
    (tmp_path / "no_uv.obj").write_text("\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in tris) + "\n")
    with pytest.raises(ModelFormatError, match="no_uv.obj.*no UV"):
        load_flame(path, uv_path=tmp_path / "no_uv.obj")


def test_flame_bad_files(tmp_path, fake_chumpy):
    rng = np.random.default_rng(5)
    arrays = flame_arrays(rng)
    bad = dict(arrays, shapedirs=arrays["shapedirs"][:, :, :200])
    path = write_flame_pkl(tmp_path / "short_shapedirs.pkl", fake_chumpy, bad)
    with pytest.raises(ModelFormatError, match="short_shapedirs.pkl.*shapedirs"):
        load_model(path)
    derived = dict(arrays)
    with fake_chumpy.installed():
        derived["shapedirs"] = fake_chumpy.add(fake_chumpy.Ch(np.zeros(3)), fake_chumpy.Ch(np.ones(3)))
        (tmp_path / "derived.pkl").write_bytes(pickle.dumps(derived, protocol=2))
    with pytest.raises(ModelFormatError, match="derived.pkl.*chumpy"):
        load_model(tmp_path / "derived.pkl")
    missing = {k: v for k, v in arrays.items() if k != "f"}
    (tmp_path / "no_faces.pkl").write_bytes(pickle.dumps(missing, protocol=2))
    with pytest.raises(ModelFormatError, match="no_faces.pkl.*'f'"):
        load_model(tmp_path / "no_faces.pkl")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelFormatError, match="list.pkl"):
        load_model(tmp_path / "list.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(ModelFormatError, match="garbage.pkl"):
        load_model(tmp_path / "garbage.pkl")
    with pytest.raises(ModelFormatError, match="generic_model.pkl.*n_shape=301"):
        load_flame(write_flame_pkl(tmp_path / "generic_model.pkl", fake_chumpy, arrays), n_shape=301)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo should-not-run",))


def test_pickle_refuses_code(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": _Exploit()}))
    with pytest.raises(ModelFormatError, match="evil.pkl.*(posix|os|nt)\\.system"):
        load_model(tmp_path / "evil.pkl")


# -- BFM 2009 -------------------------------------------------------------------------------------------------
def bfm_arrays(rng, clockwise: bool = False) -> dict:
    verts_cm, tris = dome()
    if clockwise:
        tris = tris[:, [0, 2, 1]]
    v = len(verts_cm)
    pc, _ = np.linalg.qr(rng.normal(size=(3 * v, 199)) if 3 * v >= 199 else rng.normal(size=(3 * v, 3 * v)))
    pc = np.concatenate([pc, rng.normal(size=(3 * v, 199 - pc.shape[1])) * 0.01], 1) if pc.shape[1] < 199 else pc
    return {
        "shapeMU": (verts_cm * 1e4).reshape(-1, 1).astype(np.float32),  # micrometres, xyz interleaved
        "shapePC": pc.astype(np.float32),
        "shapeEV": np.linspace(3e4, 1e2, 199).reshape(-1, 1).astype(np.float32),  # standard deviations (um)
        "tl": (tris + 1).astype(np.float64),  # 1-based, as MATLAB doubles
        "texMU": rng.uniform(0, 255, size=(3 * v, 1)).astype(np.float32),
        "texPC": rng.normal(size=(3 * v, 199)).astype(np.float32),
        "texEV": np.ones((199, 1), np.float32),
        "segbin": (rng.uniform(size=(v, 4)) > 0.5).astype(np.uint8),
    }


def test_bfm2009_mat(tmp_path):
    rng = np.random.default_rng(6)
    arrays = bfm_arrays(rng)
    scipy.io.savemat(tmp_path / "01_MorphableModel.mat", arrays)
    model = load_model(tmp_path / "01_MorphableModel.mat")
    mean_cm = arrays["shapeMU"].reshape(-1, 3) * 1e-4
    assert (model.num_vertices, model.num_identity, model.num_expression) == (25, 100, 0)
    assert_vertices(model, mean_cm)
    k = 4
    delta = (arrays["shapePC"][:, k] * arrays["shapeEV"][k, 0]).reshape(-1, 3) * 1e-4
    assert_vertices(model, mean_cm + delta, identity=unit(k, 100))
    np.testing.assert_array_equal(model.topology.triangles, arrays["tl"].astype(np.int64) - 1)
    assert model.source["winding_reversed"] is False and not has_uvs(model)
    # zero expression modes work everywhere: empty coefficients, batches, subsets
    v = model.vertices(torch.zeros(100), torch.zeros(3, 0))
    assert v.shape == (3, 25, 3)
    torch.testing.assert_close(model.vertices_subset(torch.tensor([0, 24]), None, torch.zeros(2, 0)), v[:2, [0, 24]])
    assert model.extras["vertex_color_mean"].shape == (25, 3)
    assert model.topology.vertex_labels["bfm_segments"].shape == (25,)


def test_bfm_clockwise_triangles_are_reversed(tmp_path):
    arrays = bfm_arrays(np.random.default_rng(7), clockwise=True)
    scipy.io.savemat(tmp_path / "bfm_cw.mat", arrays)
    model = load_bfm(tmp_path / "bfm_cw.mat", n_shape=10)
    np.testing.assert_array_equal(model.topology.triangles, (arrays["tl"].astype(np.int64) - 1)[:, [0, 2, 1]])
    assert model.source["winding_reversed"] and any("reversed" in w for w in model.warnings)


def test_bfm_expression_bin_trims_model(tmp_path):
    rng = np.random.default_rng(8)
    arrays = bfm_arrays(rng)
    scipy.io.savemat(tmp_path / "01_MorphableModel.mat", arrays)
    keep = np.arange(0, 20)  # the expression basis covers the first four rows of the grid
    k_exp = 6
    exp_mu = rng.normal(size=3 * len(keep)).astype(np.float32)
    exp_pc = rng.normal(size=(k_exp, 3 * len(keep))).astype(np.float32)  # one component per row
    (tmp_path / "Exp_Pca.bin").write_bytes(struct.pack("i", k_exp) + exp_mu.tobytes() + exp_pc.tobytes())
    std = np.linspace(2e3, 1e2, k_exp)
    np.savetxt(tmp_path / "std_exp.txt", std)
    scipy.io.savemat(tmp_path / "BFM_exp_idx.mat", {"trimIndex": (keep + 1).reshape(-1, 1).astype(np.int32)})

    model = load_bfm(tmp_path / "01_MorphableModel.mat", n_shape=50, exp_path=tmp_path / "Exp_Pca.bin")
    assert (model.num_vertices, model.num_identity, model.num_expression) == (20, 50, k_exp)
    mean_cm = arrays["shapeMU"].reshape(-1, 3)[keep] * 1e-4
    assert_vertices(model, mean_cm)
    delta = exp_pc[2].reshape(-1, 3) * std[2] * 1e-4
    assert_vertices(model, mean_cm + delta, expression=unit(2, k_exp, 1))
    assert model.topology.triangles.max() < 20 and len(model.topology.triangles) == 24
    np.testing.assert_array_equal(model.source["kept_vertices"], keep)
    with pytest.raises(ModelFormatError, match="Exp_Pca.bin.*std"):
        load_bfm(tmp_path / "01_MorphableModel.mat", exp_path=tmp_path / "Exp_Pca.bin",
                 exp_std_path=tmp_path / "missing.txt")


def test_bfm_front_variant(tmp_path):
    rng = np.random.default_rng(9)
    verts_cm, tris = dome()
    v = len(verts_cm)
    id_base, ex_base = rng.normal(size=(3 * v, 80)) * 0.01, rng.normal(size=(3 * v, 64)) * 0.01
    keypoints = rng.integers(0, v, 68)
    scipy.io.savemat(tmp_path / "BFM_model_front.mat", {
        "meanshape": (verts_cm / 10.0).reshape(1, -1), "idBase": id_base, "exBase": ex_base,
        "tri": tris + 1, "keypoints": (keypoints + 1).reshape(1, -1), "meantex": np.full((1, 3 * v), 128.0),
    })
    model = load_model(tmp_path / "BFM_model_front.mat", n_exp=20)
    assert (model.num_identity, model.num_expression) == (80, 20)
    assert_vertices(model, verts_cm)
    assert_vertices(model, verts_cm + ex_base[:, 5].reshape(-1, 3) * 10, expression=unit(5, 20, 1))
    np.testing.assert_array_equal(model.topology.landmarks68, keypoints)


def test_bfm_bad_files(tmp_path, monkeypatch):
    arrays = bfm_arrays(np.random.default_rng(10))
    scipy.io.savemat(tmp_path / "no_tl.mat", {k: v for k, v in arrays.items() if k != "tl"})
    with pytest.raises(ModelFormatError, match="no_tl.mat.*'tl'"):
        load_model(tmp_path / "no_tl.mat")
    scipy.io.savemat(tmp_path / "bad_ev.mat", dict(arrays, shapeEV=np.ones((50, 1))))
    with pytest.raises(ModelFormatError, match="bad_ev.mat.*shapeEV"):
        load_model(tmp_path / "bad_ev.mat")
    scipy.io.savemat(tmp_path / "zero_based.mat", dict(arrays, tl=arrays["tl"] - 1))
    with pytest.raises(ModelFormatError, match="zero_based.mat.*1-based"):
        load_model(tmp_path / "zero_based.mat")
    scipy.io.savemat(tmp_path / "other.mat", {"foo": np.zeros(3)})
    with pytest.raises(ModelFormatError, match="other.mat.*not a Basel Face Model"):
        load_model(tmp_path / "other.mat")
    (tmp_path / "text.mat").write_text("hello")
    with pytest.raises(ModelFormatError, match="text.mat"):
        load_model(tmp_path / "text.mat")
    # a MATLAB v7.3 (HDF5) file without h5py: one clear message
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    (tmp_path / "v73.mat").write_bytes(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM" + b"\0" * 384)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ModelFormatError, match="v73.mat.*h5py"):
        load_model(tmp_path / "v73.mat")


def test_bfm_v73_with_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    arrays = bfm_arrays(np.random.default_rng(11))
    path = tmp_path / "01_MorphableModel_v73.mat"
    with h5py.File(path, "w", userblock_size=512) as fh:
        for key in ("shapeMU", "shapePC", "shapeEV", "tl"):
            fh[key] = np.asarray(arrays[key]).T  # MATLAB writes column-major
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    model = load_model(path)
    assert_vertices(model, arrays["shapeMU"].reshape(-1, 3) * 1e-4)
    np.testing.assert_array_equal(model.topology.triangles, arrays["tl"].astype(np.int64) - 1)


# -- generic npz ----------------------------------------------------------------------------------------------
def generic_arrays(rng) -> dict:
    verts_cm, _ = dome()
    quads = dome_quads()
    polys = np.full((len(quads) + 2, 4), -1)
    polys[: len(quads)] = quads
    polys[len(quads):, :3] = [[0, 1, 6], [1, 2, 7]]  # two (overlapping) triangles, -1 padded
    v = len(verts_cm)
    polygon_uvs = np.where(polys >= 0, rng.integers(0, 30, polys.shape), -1)
    eye_l = np.zeros(v, bool)
    eye_l[[0, 1]] = True
    return {
        "mean": verts_cm * 10.0,  # millimetres
        "units": np.array("mm"),
        "identity_basis": rng.normal(size=(3, v, 3)),
        "expression_basis": rng.normal(size=(2, v, 3)),
        "polygons": polys,
        "uvs": rng.uniform(size=(30, 2)),
        "polygon_uvs": polygon_uvs,
        "identity_names": np.array(["wide", "long", "deep"]),
        "expression_names": np.array(["smile", "jawOpen"]),
        "landmarks68": rng.integers(5, v, 68),
        "region_eyeball_left": eye_l,
        "contour_substitutes": np.array([[0, 5], [16, 9]]),
    }


def test_generic_npz(tmp_path):
    rng = np.random.default_rng(12)
    arrays = generic_arrays(rng)
    np.savez(tmp_path / "my_model.npz", **arrays)
    model = load_model(tmp_path / "my_model.npz")
    mean_cm = arrays["mean"] / 10.0
    assert model.source["format"] == "npz" and model.name == "my_model"
    assert_vertices(model, mean_cm)
    assert_vertices(model, mean_cm + arrays["identity_basis"][1] / 10.0, identity=unit(1, 3))
    assert_vertices(model, mean_cm + arrays["expression_basis"][1] / 10.0, expression=unit(1, 2, 1))
    topo = model.topology
    np.testing.assert_array_equal(topo.polygons, arrays["polygons"])
    np.testing.assert_array_equal(topo.polygon_uvs, arrays["polygon_uvs"])
    np.testing.assert_allclose(topo.uvs, arrays["uvs"], rtol=1e-6)
    assert len(topo.triangles) == 2 * 16 + 2 and has_uvs(model)
    assert model.identity_names == ["wide", "long", "deep"] and model.expression_names == ["smile", "jawOpen"]
    np.testing.assert_array_equal(topo.landmarks68, arrays["landmarks68"])
    assert topo.region("eyes").sum() == 2 and topo.region("face").sum() == 23
    assert topo.contour_substitutes == {0: 5, 16: 9}
    assert model.warnings == []
    truncated = load_npz(tmp_path / "my_model.npz", n_shape=2, n_exp=0)
    assert (truncated.num_identity, truncated.num_expression) == (2, 0) and truncated.identity_names == ["wide", "long"]


def test_generic_npz_minimal_triangles_and_inward_winding(tmp_path):
    verts_cm, tris = dome()
    rng = np.random.default_rng(13)
    inward = tris[:, [0, 2, 1]]
    emb_tri, emb_bary = rng.integers(0, len(tris), 10), rng.dirichlet([1, 1, 1], 10)
    np.savez(tmp_path / "minimal.npz", mean=verts_cm, identity_basis=np.zeros((1, 25, 3)), triangles=inward,
             embedding_mp_triangles=emb_tri, embedding_mp_barycentrics=emb_bary)
    model = load_model(tmp_path / "minimal.npz")
    assert model.num_expression == 0 and not has_uvs(model)
    np.testing.assert_array_equal(model.topology.triangles, tris)
    assert any("reversed" in w for w in model.warnings)
    # the embedded points stay where they were on the surface
    expected = (verts_cm[inward[emb_tri]] * emb_bary[..., None]).sum(1)
    got = model.embedded_points(model.vertices(), model.topology.embeddings["mp"])[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_generic_npz_bad_files(tmp_path):
    rng = np.random.default_rng(14)
    arrays = generic_arrays(rng)
    cases = {
        "wrong_v.npz": (dict(arrays, identity_basis=np.zeros((3, 24, 3))), "identity_basis"),
        "both.npz": (dict(arrays, triangles=np.zeros((2, 3), int)), "exactly one"),
        "oob.npz": (dict(arrays, polygons=arrays["polygons"] + 100), "refers to vertex"),
        "units.npz": (dict(arrays, units=np.array("furlong")), "unknown units"),
        "uv_pad.npz": (dict(arrays, polygon_uvs=np.abs(arrays["polygon_uvs"])), "-1 exactly"),
        "lm.npz": (dict(arrays, landmarks68=np.arange(60)), "68"),
        "region.npz": (dict(arrays, region_face=np.ones(7, bool)), "region 'face'"),
    }
    for name, (data, message) in cases.items():
        np.savez(tmp_path / name, **data)
        with pytest.raises(ModelFormatError, match=f"{name}.*{message}"):
            load_model(tmp_path / name)
    no_mean = {k: v for k, v in arrays.items() if k != "mean"}
    np.savez(tmp_path / "no_mean.npz", **no_mean, stuff=np.zeros(2))
    with pytest.raises(ModelFormatError, match="no_mean.npz.*neither FLAME"):
        load_model(tmp_path / "no_mean.npz")
    np.savez(tmp_path / "objects.npz", **dict(arrays, identity_names=np.array([None, 1, "x"], dtype=object)))
    with pytest.raises(ModelFormatError, match="objects.npz.*Python objects"):
        load_model(tmp_path / "objects.npz")
    np.savez(tmp_path / "metres_as_cm.npz", mean=dome()[0] / 100.0, identity_basis=np.zeros((1, 25, 3)),
             triangles=dome()[1])
    assert any("units" in w for w in load_model(tmp_path / "metres_as_cm.npz").warnings)


# -- dispatch and ICT -----------------------------------------------------------------------------------------
def test_load_model_dispatch(tmp_path):
    assert load_model("ict").name == "ict-face-light"
    with pytest.raises(FileNotFoundError, match="nothere.pkl"):
        load_model(tmp_path / "nothere.pkl")
    (tmp_path / "model.obj").write_text("v 0 0 0\n")
    with pytest.raises(ModelFormatError, match="model.obj.*unknown model file type"):
        load_model(tmp_path / "model.obj")
    verts_cm, tris = dome()
    np.savez(tmp_path / "m.npz", mean=verts_cm, identity_basis=np.zeros((1, 25, 3)), triangles=tris)
    with pytest.raises(TypeError, match="uv_path"):
        load_model(tmp_path / "m.npz", uv_path="x")
    assert load_model(tmp_path / "m.npz", format="npz", n_shape=1).num_identity == 1


def test_morphable_model_with_no_expression_modes():
    verts_cm, tris = dome()
    polys = np.concatenate([tris, -np.ones((len(tris), 1), int)], 1)
    topo = Topology(polys, np.zeros_like(polys), np.zeros(len(polys), int), ["M_Face"], np.zeros((1, 2)), 25)
    model = MorphableModel(verts_cm, np.ones((2, 25, 3)), np.zeros((0, 25, 3)), topo)
    assert model.num_expression == 0 and model.expression_basis.shape == (0, 75)
    v = model.vertices(torch.tensor([1.0, 0.0]), torch.zeros(4, 0))
    assert v.shape == (4, 25, 3)
    np.testing.assert_allclose(v[2].numpy(), verts_cm + 1.0, rtol=1e-6)


def test_ict_sizes_and_region_consistency():
    model = load_ict()
    topo = model.topology
    assert (model.num_vertices, model.num_identity, model.num_expression) == (14388, 100, 53)
    face, head, eyes = topo.region("face"), topo.region("head_neck"), topo.region("eyes")
    assert topo.region("face")[topo.landmarks68].all()
    assert not (face & head).any() and not (face & eyes).any() and not (head & eyes).any()
    assert (face | head | eyes).all()
    assert (topo.region("narrow_face") <= face).all()
    np.testing.assert_array_equal(topo.region("face_and_head"), face | head)
    np.testing.assert_array_equal(eyes, topo.region("eyeball_left") | topo.region("eyeball_right"))
    assert not (topo.region("eyeball_left") & topo.region("eyeball_right")).any()
    for i, v in topo.contour_substitutes.items():
        assert 0 <= i < 17 and face[v]
    assert has_uvs(model)
