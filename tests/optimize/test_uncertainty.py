import math

import numpy as np
import torch

import fitter.optimize.fit as driver
from fitter.optimize.presets import load_preset
from fitter.optimize.uncertainty import hessian
from fitter.optimize.subject import fit_sequence
from sequences import moving_face, sequence_evidence, tiny_preset
from synthetic_faces import ground_truth, observe


def coupled_energy(x: torch.Tensor) -> torch.Tensor:
    """Non-quadratic, every pair of parameters coupled, so a row taken from the wrong block shows."""
    weights = torch.arange(1, x.numel() + 1, dtype=x.dtype)
    return (torch.sin(x) * x ** 2 * weights).sum() + (x.sum() ** 3) / 7 + (x[:-1] * x[1:].exp()).sum()


class TestHessian:
    def test_equals_torch_in_blocks_of_rows(self):
        x0 = torch.linspace(-0.8, 1.1, 11, dtype=torch.float64)
        expected = torch.autograd.functional.hessian(coupled_energy, x0)
        for rows in (1, 3, 4, 11, 64):  # blocks that do and do not divide the 11 rows
            np.testing.assert_allclose(hessian(coupled_energy, x0, rows=rows).numpy(), expected.numpy(),
                                       rtol=1e-12, atol=1e-12)

    def test_linear_energy_has_zero_curvature(self):
        x0 = torch.ones(5, dtype=torch.float64)
        assert torch.equal(hessian(lambda x: (x * 3).sum(), x0, rows=2), torch.zeros(5, 5, dtype=torch.float64))


class TestFocalStd:
    def test_photo_fit_reports_it_and_fit_stages_can_skip_it(self, ict, monkeypatch):
        obs = observe(ict, ground_truth(ict, yaw=0.35), noise_px=0.5)  # frontal, the depth valley can be flat
        preset = load_preset("fast")
        fit = driver.fit_face(ict, obs, (512, 512), preset)
        assert math.isfinite(fit.focal_log_std) and fit.focal_log_std > 0 and fit.focal_std_source == "curvature"

        def refuse(*args):
            raise AssertionError("the focal uncertainty was computed")
        monkeypatch.setattr(driver, "focal_uncertainty", refuse)
        again = driver.fit_stages(ict, fit.evidence, preset, initial=fit.state.detached(), focal_std=False)
        assert math.isnan(again.focal_log_std)

    def test_subject_phases_do_not_compute_it(self, ict_random_embedding, monkeypatch):
        # a clip's keyframe fit made this Hessian the peak of the process's memory, for a figure never reported
        def refuse(*args):
            raise AssertionError("the focal uncertainty was computed")
        monkeypatch.setattr(driver, "focal_uncertainty", refuse)
        model = ict_random_embedding
        fit = fit_sequence(model, sequence_evidence(model, moving_face(model, 4, 10.0), 10.0), tiny_preset())
        assert not fit.warnings or all("focal uncertainty" not in w for w in fit.warnings)
        assert fit.state.num_instants == 4

    def test_a_flat_curvature_falls_back_to_the_focal_priors_width(self, ict, monkeypatch):
        monkeypatch.setattr(driver, "focal_log_std", lambda *a: float("nan"))  # not positive definite
        preset = load_preset("fast")
        stage = next(s for s in preset["stages"] if s["name"] == preset["camera"]["uncertainty_stage"])
        weight = float(stage["weights"]["focal_prior"])
        fit = driver.fit_face(ict, observe(ict, ground_truth(ict, yaw=0.35), noise_px=0.5), (512, 512), preset)
        assert fit.focal_std_source == "prior"
        assert math.isclose(fit.focal_log_std, preset["focal_prior"]["log_sigma"] / math.sqrt(weight))

    def test_it_is_read_where_its_stage_ends_not_after_later_stages(self, ict):
        obs = observe(ict, ground_truth(ict, yaw=0.35), noise_px=0.5)
        preset = load_preset("fast")
        stages = [s for s in preset["stages"] if s["name"] in ("rigid", "landmarks")]
        later = dict(stages[-1], name="later", weights={**stages[-1]["weights"], "identity_prior": 1.0})
        alone = driver.fit_face(ict, obs, (512, 512), dict(preset, stages=stages))
        followed = driver.fit_face(ict, obs, (512, 512), dict(preset, stages=stages + [later]))
        assert not np.allclose(alone.state.identity.numpy(), followed.state.identity.numpy())  # it moved the face
        assert followed.focal_log_std == alone.focal_log_std
