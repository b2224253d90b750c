"""Scene: the geometry of one FitState, evaluated lazily and at most once per optimiser step.

Energy terms share a Scene so that vertices, camera transforms and renders are computed once even when
several terms use them; a landmark-only stage evaluates only the few hundred vertices it needs.
"""
from __future__ import annotations

import torch

from .camera import project
from .model.morphable import MorphableModel
from .state import FitState


class Scene:
    def __init__(self, model: MorphableModel, state: FitState) -> None:
        self.model = model
        self.state = state
        self._vertices: torch.Tensor | None = None
        self._cache: dict = {}

    # -- geometry in the model frame ---------------------------------------------------------------------
    def vertices(self) -> torch.Tensor:
        """All vertices (F, V, 3) of every image, model frame (each image shows its instant's expression)."""
        if self._vertices is None:
            s = self.state
            self._vertices = self.model.vertices(s.identity, s.expression, frames=s.num_instants)
            if s.frame_instant is not None:
                self._vertices = self._vertices[s.frame_instant]
        return self._vertices

    def vertices_at(self, index: torch.Tensor) -> torch.Tensor:
        """Vertices (F, N, 3) at ``index``; evaluates only those unless all vertices are already known."""
        if self._vertices is not None:
            return self._vertices[:, index]
        s = self.state
        out = self.model.vertices_subset(index, s.identity, s.expression, frames=s.num_instants)
        return out if s.frame_instant is None else out[s.frame_instant]

    def embedded(self, name: str) -> torch.Tensor:
        """Points (F, N, 3) of a surface embedding of the model (e.g. ``mediapipe478``), model frame."""
        key = ("embedded", name)
        if key not in self._cache:
            emb = self.model.topology.embeddings[name]
            corners = self.model.topology.triangles[emb.triangles]  # (N, 3)
            unique, inverse = torch.unique(torch.as_tensor(corners), return_inverse=True)
            verts = self.vertices_at(unique.to(self.state.device))[:, inverse]  # (F, N, 3, 3)
            bary = torch.as_tensor(emb.barycentrics, device=verts.device, dtype=verts.dtype)
            self._cache[key] = (verts * bary[None, :, :, None]).sum(2)
        return self._cache[key]

    # -- camera ------------------------------------------------------------------------------------------
    def K(self) -> torch.Tensor:
        if "K" not in self._cache:
            self._cache["K"] = self.state.K()
        return self._cache["K"]

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        return self.state.to_camera(points)

    def camera_vertices(self) -> torch.Tensor:
        if "camera_vertices" not in self._cache:
            self._cache["camera_vertices"] = self.to_camera(self.vertices())
        return self._cache["camera_vertices"]

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Model-frame points (F, N, 3) -> (pixels (F, N, 2), camera points (F, N, 3))."""
        cam = self.to_camera(points)
        return project(cam, self.K()), cam

    def memo(self, key, compute):
        """Cache any derived quantity (e.g. a render) for the lifetime of this scene."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]
