"""What the critic sees: the grey render of a geometry in the fitting crop over a seeded noise background, and
the photo in the same crop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fitter.critic.pool import camera_vertices, intrinsics_of
from fitter.critic.view import FaceMesh, crop_K, face_triangles, grey_view, noise_background, photo_view
from fitter.crop import FitCrop
from critic_photos import clean_photos

SIZE = 48


@pytest.fixture(scope="module")
def photo(ict):
    return clean_photos(ict, 1)[0]


def render(ict, photo, geometry=None, seed=0):
    g = geometry or photo.truth
    crop = FitCrop.around(photo.landmarks, SIZE, 0.25)
    cam = camera_vertices(ict, [g])
    K = crop_K([crop], intrinsics_of([g], [photo.image_size]))
    return grey_view(cam, face_triangles(ict), K, SIZE, noise_background(1, SIZE, [seed])), cam, K


class TestGreyView:
    def test_face_over_noise(self, ict, photo):
        grey, _, _ = render(ict, photo)
        assert grey.shape == (1, 1, SIZE, SIZE) and float(grey.min()) >= 0 and float(grey.max()) <= 1
        noise = noise_background(1, SIZE, [0])[0]
        background = (grey[0, 0] - noise).abs() < 1e-6
        assert 0.2 < float(background.float().mean()) < 0.9  # the face covers part of the crop, noise the rest
        face = ~background
        assert float(grey[0, 0][face].std()) < float(noise[face].std())  # shading is smooth, noise is not

    def test_only_the_narrow_face(self, ict):
        tris = face_triangles(ict).numpy()
        assert np.isin(tris, np.flatnonzero(ict.topology.region("narrow_face"))).all()
        assert len(tris) > 1000

    def test_gradient_reaches_vertices(self, ict, photo):
        crop = FitCrop.around(photo.landmarks, SIZE, 0.25)
        cam = camera_vertices(ict, [photo.truth]).requires_grad_(True)
        K = crop_K([crop], intrinsics_of([photo.truth], [photo.image_size]))
        grey = grey_view(cam, face_triangles(ict), K, SIZE, noise_background(1, SIZE, [0]))
        (grey * torch.linspace(0, 1, SIZE)).sum().backward()
        assert float(cam.grad.abs().sum()) > 0

    def test_noise_is_seeded(self):
        a, b = noise_background(2, 8, [3, 4]), noise_background(2, 8, [3, 5])
        assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])


def test_face_mesh_matches_the_model(ict, photo):
    """The cut-down face mesh gives the model's own vertices for the grey render's triangles."""
    face = FaceMesh.of(ict)
    g = photo.truth
    ident, expr = torch.as_tensor(g.identity)[None], torch.as_tensor(g.expression)[None]
    full = ict.vertices(ident, expr)[0, face.index]
    assert torch.allclose(face.vertices(ident, expr)[0], full, atol=1e-5)
    assert torch.equal(face.index[face.triangles], face_triangles(ict))


def test_photo_view_is_the_crop(photo):
    crop = FitCrop.around(photo.landmarks, SIZE, 0.25)
    view = photo_view(photo.image, crop)
    assert view.shape == (3, SIZE, SIZE) and view.dtype == np.float32
    expected = crop.image(photo.image.astype(np.float32) / 255.0).transpose(2, 0, 1)
    assert np.allclose(view, expected, atol=1e-6)
    assert np.allclose(photo_view(photo.image.astype(np.float32) / 255.0, crop), view, atol=1e-6)
