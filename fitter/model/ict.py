"""The shipped default model: ICT Face Model Light (face, head/neck, eyeballs), built by assets/build/build_ict.py."""
from __future__ import annotations

import functools

import numpy as np

from ..assets import asset_path
from .morphable import MorphableModel
from .topology import ErrorModes, SurfaceEmbedding, Topology

ICT_ASSET = "ict_face_light.npz"
MEDIAPIPE_EMBEDDING_ASSET = "ict_mediapipe_embedding.npz"
PART_LABELS_ASSET = "ict_part_labels.npz"
MEDIAPIPE_ERROR_MODES_ASSET = "ict_mediapipe_error_modes.npz"
ICT_EXPRESSION_BOUNDS = (0.0, 1.0)  # ICT expressions are blendshape weights (ARKit-style)


@functools.lru_cache(maxsize=1)
def _load_arrays() -> dict[str, np.ndarray]:
    with np.load(asset_path(ICT_ASSET)) as data:
        return {k: data[k] for k in data.files}


def ict_expression_names() -> list[str]:
    """The model's expression (blendshape) names, read without building the model (configs are checked
    against them before any image is read)."""
    return [str(n) for n in _load_arrays()["expression_names"]]


def load_ict(device: str = "cpu") -> MorphableModel:
    """The ICT model with its regions, 68 landmarks, and (when built) MediaPipe embedding and part labels."""
    a = _load_arrays()
    regions = {
        name[len("region_") :]: a[name].astype(bool) for name in a if name.startswith("region_")
    }
    regions["eyes"] = regions["eyeball_left"] | regions["eyeball_right"]
    regions["face_and_head"] = regions["face"] | regions["head_neck"]
    substitutes = {i: int(v) for i, v in zip(range(0, 8), a["jaw_substitute_right"])}
    substitutes.update({i: int(v) for i, v in zip(range(9, 17), a["jaw_substitute_left"])})
    topology = Topology(
        polygons=a["polygons"],
        polygon_uvs=a["polygon_uvs"],
        polygon_material=a["polygon_material"].astype(np.int64),
        material_names=[str(n) for n in a["material_names"]],
        uvs=a["uvs"],
        num_vertices=a["neutral"].shape[0],
        regions=regions,
        landmarks68=a["landmarks68"].astype(np.int64),
        contour_substitutes=substitutes,
    )
    _attach_optional_assets(topology)
    identity = a["identity_basis"].astype(np.float32) * a["identity_scale"][:, None, None]
    expression = a["expression_basis"].astype(np.float32) * a["expression_scale"][:, None, None]
    return MorphableModel(
        a["neutral"],
        identity,
        expression,
        topology,
        identity_names=[str(n) for n in a["identity_names"]],
        expression_names=[str(n) for n in a["expression_names"]],
        units=str(a["units"]),
        name="ict-face-light",
        device=device,
        expression_bounds=ICT_EXPRESSION_BOUNDS,
    )


def _optional_asset(name: str):
    """Path of an asset that may not be built yet (None when absent)."""
    try:
        return asset_path(name)
    except FileNotFoundError:
        return None


def _attach_optional_assets(topology: Topology) -> None:
    """Attach assets built after the model itself (they are derived from it by scripts in assets/build/)."""
    path = _optional_asset(MEDIAPIPE_EMBEDDING_ASSET)
    if path is not None:
        with np.load(path) as e:
            topology.embeddings["mediapipe478"] = SurfaceEmbedding(
                e["triangles"].astype(np.int64), e["barycentrics"].astype(np.float32),
                e["reliability"].astype(np.float32) if "reliability" in e.files else None,
            )
        modes = _optional_asset(MEDIAPIPE_ERROR_MODES_ASSET)
        if modes is not None:
            with np.load(modes) as m:
                topology.embeddings["mediapipe478"].error_modes = ErrorModes(m["basis"].astype(np.float32),
                                                                             m["variances"].astype(np.float64))
    path = _optional_asset(PART_LABELS_ASSET)
    if path is not None:
        with np.load(path) as p:
            topology.vertex_labels["parts"] = p["labels"].astype(np.int64)
