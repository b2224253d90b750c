"""Unit tests of the critic term (fitter.energy.critic): its value is minus the network's score of the grey
render of the fit in the frame's fitting crop, per frame; its gradient matches finite differences; the [critic]
settings (weights file, render size, weight 0 = off) are checked when it is built."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.critic.network import Architecture, CriticNet, freeze
from fitter.critic.view import crop_K, face_triangles, grey_view, noise_background, photo_view
from fitter.critic.weights import save_weights
from fitter.energy.base import TermContext, TermUnavailable, registered_terms
from fitter.energy.critic import CriticTerm, critic_term
from fitter.evidence import Evidence, FrameEvidence
from fitter.optimize.presets import load_preset
from fitter.scene import Scene
from frames import one_frame, posed_frames, with_dtype
from synthetic_faces import observe

SMALL = Architecture(32, (8, 16, 16))
SIZE = (256, 256)
FOCAL = 600.0


def network(dtype=torch.float32) -> CriticNet:
    torch.manual_seed(0)
    return freeze(CriticNet(SMALL, spectral=False).to(dtype))


def evidence_for(model, state) -> Evidence:
    """One frame per state frame: landmarks projected from it, a random photo of its own."""
    rng = np.random.default_rng(0)
    frames = []
    for f in range(state.num_frames):
        face = observe(model, one_frame(state, f), noise_px=0.0)
        frames.append(FrameEvidence(face, SIZE, photo=rng.random((*SIZE, 3)).astype(np.float32)))
    return Evidence(frames)


def state_for(model, frames=1, dtype=torch.float32):
    state = posed_frames(model, frames, SIZE, FOCAL)
    state.translation = state.translation * torch.tensor([1.0, 1.0, 0.6])  # the face fills more of the photo
    return with_dtype(state, dtype)


def build(model, evidence, net, **critic):
    preset = load_preset("default")
    preset["critic"] = dict(preset["critic"], **critic)
    return critic_term(TermContext(model, evidence, preset, [FOCAL]), net)


class TestCriticValue:
    def test_minus_the_score_of_the_grey_render(self, ict):
        state = state_for(ict)
        evidence = evidence_for(ict, state)
        net = network()
        term = build(ict, evidence, net)
        value = term(Scene(ict, state))
        frame = evidence.frames[0]
        crop = frame.crop(SMALL.size, load_preset("default")["crop"]["margin"])
        photo = torch.from_numpy(photo_view(frame.photo, crop))[None]
        cam = Scene(ict, state).camera_vertices()
        grey = grey_view(cam, face_triangles(ict), crop_K([crop], state.K()), SMALL.size,
                         noise_background(1, SMALL.size, [0]))
        assert value.shape == (1,)
        assert float(value[0]) == pytest.approx(-float(net(photo, grey)[0]), rel=1e-5, abs=1e-6)
        assert term.diagnostics(Scene(ict, state))["critic_score"] == [pytest.approx(-float(value[0]))]

    def test_deterministic_and_weighted(self, ict):
        state = state_for(ict)
        evidence = evidence_for(ict, state)
        once = build(ict, evidence, network())(Scene(ict, state))
        again = build(ict, evidence, network())(Scene(ict, state))
        twice = build(ict, evidence, network(), weight=2.0)(Scene(ict, state))
        assert torch.equal(once, again) and float(twice[0]) == pytest.approx(2 * float(once[0]), rel=1e-6)

    def test_weight_zero_is_off(self, ict):
        state = state_for(ict)
        term = build(ict, evidence_for(ict, state), network(), weight=0.0)
        scene = Scene(ict, state)
        assert torch.equal(term(scene), torch.zeros(1)) and not scene._cache  # nothing rendered

    def test_each_frame_alone(self, ict):
        state = state_for(ict, frames=3)
        evidence = evidence_for(ict, state)
        net = network()
        values = build(ict, evidence, net)(Scene(ict, state))
        assert values.shape == (3,)
        for f in range(3):
            alone = CriticTerm(ict, net, build(ict, evidence, net).photos[f:f + 1],
                               build(ict, evidence, net).crops[f:f + 1], noise_seed=f)
            torch.testing.assert_close(values[f:f + 1], alone(Scene(ict, one_frame(state, f))), rtol=1e-5,
                                       atol=1e-6)


class TestCriticGradient:
    def test_gradcheck_shape_and_pose(self, ict64):
        """float64, tiny steps: no pixel changes its triangle, so the render is smooth in the parameters."""
        state = state_for(ict64, dtype=torch.float64)
        evidence = evidence_for(ict64, state)
        term = build(ict64, evidence, network(torch.float64))
        term.photos = term.photos.double()
        term.noise = term.noise.double()

        def energy(identity, translation):
            s = state.detached()
            s.identity = torch.cat([identity, state.identity[3:]])
            s.translation = translation
            return term(Scene(ict64, s))

        inputs = (state.identity[:3].clone().requires_grad_(True), state.translation.clone().requires_grad_(True))
        assert torch.autograd.gradcheck(energy, inputs, eps=1e-7, atol=1e-5, rtol=1e-3, fast_mode=True)
        value = energy(*inputs)
        value.sum().backward()
        assert float(inputs[0].grad.abs().max()) > 0 and float(inputs[1].grad.abs().max()) > 0


class TestCriticBuild:
    def test_registered_with_its_settings(self):
        spec = registered_terms()["critic"]
        assert set(spec.settings) == {"weights", "render_size", "noise_seed", "weight"} and spec.needs == ("photo",)

    def test_weights_file_and_render_size(self, ict, tmp_path):
        state = state_for(ict)
        evidence = evidence_for(ict, state)
        path = tmp_path / "small.npz"
        save_weights(path, network(), {"recipe": {"crop_margin": 0.3}})
        preset = load_preset("default")
        preset["critic"] = dict(preset["critic"], weights=str(path), render_size=SMALL.size)
        term = registered_terms()["critic"].build(TermContext(ict, evidence, preset, [FOCAL]))
        assert term.crops[0] == evidence.frames[0].crop(SMALL.size, 0.3)  # the card's margin
        preset["critic"]["render_size"] = 96
        with pytest.raises(TermUnavailable, match="trained at 32 pixels; set render_size = 32"):
            registered_terms()["critic"].build(TermContext(ict, evidence, preset, [FOCAL]))
        preset["critic"]["weights"] = str(tmp_path / "missing.npz")
        with pytest.raises(TermUnavailable, match="no such file or shipped asset"):
            registered_terms()["critic"].build(TermContext(ict, evidence, preset, [FOCAL]))
