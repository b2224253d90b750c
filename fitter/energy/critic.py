"""The perceptual shape critic as an energy: ``-score(photo, grey render of the fit)`` per frame.

The critic (fitter.critic) was trained to score how well a grey shaded render of a geometry agrees with the
photo; shading is the strongest cue to shape people use, and the grey render needs no albedo or lighting
estimate, so the term is blind to what makes the photometric term fragile on real skin (highlights, beards,
make-up, cast shadows). The network is frozen in eval mode, each frame's photo sits in its fitting crop (taken
around the detected landmarks with the margin the critic was trained with) and the grey render's noise
background is seeded per frame, so the energy is a deterministic function of the geometry. The critic can be
exploited like any learnt loss: its stage runs with the landmarks, PRDL and the priors, at a small rate, and
``facefit critic eval`` measures how far descending it drifts from the truth.
"""
from __future__ import annotations

import numpy as np
import torch

from ..common.settings import Setting
from ..critic.network import CriticNet
from ..critic.view import crop_K, face_triangles, grey_view, noise_background, photo_view
from ..critic.weights import CriticWeightsError, load_critic
from ..crop import FitCrop
from ..model.morphable import MorphableModel
from ..scene import Scene
from .base import Term, TermContext, TermSpec, TermUnavailable, register


class CriticTerm(Term):
    name = "critic"

    def __init__(self, model: MorphableModel, net: CriticNet, photos: torch.Tensor, crops: list[FitCrop],
                 noise_seed: int = 0, backend: str = "auto", weight: float = 1.0) -> None:
        """``photos``: (F, 3, S, S) each frame's photo in its crop ``crops[f]`` (fitter.critic.view.photo_view);
        ``weight`` scales the term in every stage (0: off, nothing is rendered)."""
        self.model = model
        self.weight = weight
        self.net = net
        self.size = net.arch.size
        self.photos = photos.to(model.device)
        self.crops = crops
        self.backend = backend
        self.triangles = face_triangles(model)
        frames = len(crops)
        self.noise = noise_background(frames, self.size, [noise_seed + f for f in range(frames)]).to(model.device)

    def render(self, scene: Scene) -> torch.Tensor:
        """(F, 1, S, S) grey renders of the scene's geometry in the frames' crops (memoised per scene)."""
        def compute() -> torch.Tensor:
            cam = scene.camera_vertices()
            return grey_view(cam, self.triangles, crop_K(self.crops, scene.K()), self.size, self.noise,
                             self.backend)

        return scene.memo(("critic", self.size), compute)

    def score(self, scene: Scene) -> torch.Tensor:
        """The critic's score per frame (F,): higher is better agreement."""
        return self.net(self.photos, self.render(scene))

    def __call__(self, scene: Scene) -> torch.Tensor:
        if self.weight == 0:
            return scene.state.expression.new_zeros(scene.state.num_frames)
        return -self.weight * self.score(scene)

    @torch.no_grad()
    def diagnostics(self, scene: Scene) -> dict[str, list[float]]:
        return {"critic_score": [float(v) for v in self.score(scene)]}

    @torch.no_grad()
    def qa_images(self, scene: Scene) -> dict[str, np.ndarray]:
        """The first frame's photo beside the grey render the critic judged (uint8, side by side)."""
        photo = self.photos[0].permute(1, 2, 0).cpu().numpy()
        grey = self.render(scene)[0, 0].cpu().numpy()
        pair = np.concatenate([photo, np.repeat(grey[..., None], 3, -1)], 1)
        return {"critic_view": (pair * 255 + 0.5).astype(np.uint8)}


def build(ctx: TermContext) -> CriticTerm:
    cfg = ctx.section("critic")
    try:
        net, card = load_critic(str(cfg["weights"]))
    except CriticWeightsError as exc:
        raise TermUnavailable(str(exc)) from None
    size = int(cfg["render_size"])
    if size != net.arch.size:
        raise TermUnavailable(f"[critic] render_size = {size} but the weights {cfg['weights']!r} were trained at "
                              f"{net.arch.size} pixels; set render_size = {net.arch.size}")
    return critic_term(ctx, net, card)


def critic_term(ctx: TermContext, net: CriticNet, card: dict | None = None) -> CriticTerm:
    """The term for ``ctx``'s evidence with a given network (training uses its current one). The crop is the
    one the critic was trained on: the card's margin (the preset's [crop] margin at training time)."""
    margin = float((card or {}).get("recipe", {}).get("crop_margin", ctx.section("crop")["margin"]))
    crops = [frame.crop(net.arch.size, margin) for frame in ctx.evidence.frames]
    photos = torch.from_numpy(np.stack([photo_view(frame.photo, crop)
                                        for frame, crop in zip(ctx.evidence.frames, crops)]))
    cfg = ctx.section("critic")
    return CriticTerm(ctx.model, net, photos, crops, int(cfg["noise_seed"]), str(ctx.preset["renderer"]),
                      float(cfg["weight"]))


SPEC = register(TermSpec(
    "critic", build, needs=("photo",),
    settings={
        "weights": Setting("str", "critic weights: a shipped asset name (critic_shape.npz) or a file written by "
                                  "`facefit critic train`"),
        "render_size": Setting("int", "crop side in pixels the critic sees (must be its trained size)", low=16),
        "noise_seed": Setting("int", "seed of the grey render's noise background (frame f uses seed + f)", low=0),
        "weight": Setting("float", "scales the critic's weight in every stage; 0 turns it off", low=0),
    },
    doc="perceptual shape critic: minus its score of a grey render of the fit against the photo"))
