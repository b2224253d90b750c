"""bench consistency's figures: within = RMS distance of a person's frames to their mean face, between =
distance of the people's mean faces, after similarity alignment (so pose and scale do not count)."""
import numpy as np
from scipy.spatial.transform import Rotation

from fitter.bench.consistency import aligned_mean, consistency


def moved(face: np.ndarray, seed: int) -> np.ndarray:
    """The same face under a random similarity transform."""
    rng = np.random.default_rng(seed)
    r = Rotation.from_rotvec(rng.normal(0, 0.3, 3)).as_matrix()
    return rng.uniform(0.8, 1.2) * face @ r.T + rng.normal(0, 5, 3)


class TestConsistency:
    def test_similarity_does_not_count(self):
        face = np.random.default_rng(0).normal(0, 5, (300, 3))
        result = consistency({"a": [moved(face, k) for k in range(4)],
                              "b": [moved(face + 0.1, k + 10) for k in range(4)]})
        assert result["within_mm"] < 1e-6

    def test_within_and_between(self):
        rng = np.random.default_rng(1)
        a, b = rng.normal(0, 5, (300, 3)), rng.normal(0, 5, (300, 3))
        noise = 0.01  # cm per coordinate: within should be about sqrt(3) * 0.1 mm
        people = {"a": [moved(a + rng.normal(0, noise, a.shape), k) for k in range(6)],
                  "b": [moved(b + rng.normal(0, noise, b.shape), k + 20) for k in range(6)]}
        result = consistency(people)
        assert 0.1 < result["within_mm"] < 0.25
        assert result["between_mm"] > 10 * result["within_mm"]
        assert result["ratio"] == result["within_mm"] / result["between_mm"]

    def test_aligned_mean_is_the_mean_shape(self):
        face = np.random.default_rng(2).normal(0, 5, (100, 3))
        mean, aligned = aligned_mean([moved(face, k) for k in range(3)])
        for a in aligned:
            np.testing.assert_allclose(a, mean, atol=1e-6)

    def test_each_frame_says_its_distance(self):
        rng = np.random.default_rng(3)
        face = rng.normal(0, 5, (300, 3))
        frames = [moved(face + rng.normal(0, 0.005, face.shape), k) for k in range(5)]
        frames[2] = moved(face + rng.normal(0, 0.05, face.shape), 2)  # one frame read much worse than the rest
        result = consistency({"a": frames, "b": [moved(face + 1.0, k) for k in range(3)]})
        distances = result["frame_mm"]["a"]
        assert len(distances) == 5 and int(np.argmax(distances)) == 2
        assert np.isclose(np.sqrt(np.mean(np.square(distances))), result["within_per_person_mm"]["a"])
