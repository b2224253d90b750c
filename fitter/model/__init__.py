"""Morphable face models: coefficients -> vertices, topology with UVs and regions, loaders per format."""
from .ict import load_ict
from .morphable import MorphableModel
from .topology import SurfaceEmbedding, Topology

__all__ = ["MorphableModel", "Topology", "SurfaceEmbedding", "load_ict"]
