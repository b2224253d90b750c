"""Morphable face models: coefficients -> vertices, topology with UVs and regions, loaders per format."""
from .ict import load_ict
from .morphable import MorphableModel
from .topology import SurfaceEmbedding, Topology

__all__ = ["MorphableModel", "Topology", "SurfaceEmbedding", "load_ict"]
from .loaders import ModelFormatError, has_uvs, load_bfm, load_flame, load_model, load_npz

__all__ += ["ModelFormatError", "load_model", "load_flame", "load_bfm", "load_npz", "has_uvs"]
