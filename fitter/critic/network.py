"""The critic network: photo + grey render of a geometry -> one score (higher: the shading agrees better).

A small discriminator (Otto et al., "A Perceptual Shape Loss for Monocular 3D Face Reconstruction", PG 2023,
describe the idea; this network is facefit's own): stride-2 4x4 convolutions with leaky ReLUs over the photo's
three channels and the grey render's one, then a linear read-out of the last feature map. Spectral
normalisation bounds every layer's Lipschitz constant while training (a critic with a steep landscape is easy
to exploit); the shipped weights have it folded in, so fitting runs plain convolutions. Small enough for CPU
fitting: about 7 ms per forward + backward of one 96-pixel pair on one core.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LEAK = 0.2  # leaky ReLU slope (the usual discriminator choice: gradients flow for negative activations)
PHOTO_CHANNELS = 3
GREY_CHANNELS = 1


@dataclass(frozen=True)
class Architecture:
    """Everything that fixes the network's shape (stored in the weights file and the card)."""

    size: int = 96  # input side in pixels (the crop resolution the critic is trained and used at)
    widths: tuple[int, ...] = (32, 64, 128, 256, 256)  # channels of each stride-2 4x4 convolution

    def as_dict(self) -> dict:
        return {"size": self.size, "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict) -> "Architecture":
        return cls(int(data["size"]), tuple(int(w) for w in data["widths"]))

    @property
    def final_side(self) -> int:
        side = self.size
        for _ in self.widths:
            side //= 2
        return side


class CriticNet(nn.Module):
    """score = f(photo, grey): photo (B, 3, S, S) sRGB and grey (B, 1, S, S), both in [0, 1] -> (B,)."""

    def __init__(self, arch: Architecture = Architecture(), spectral: bool = True) -> None:
        super().__init__()
        if arch.final_side < 1:
            raise ValueError(f"{len(arch.widths)} stride-2 layers leave nothing of a {arch.size}-pixel input")
        self.arch = arch
        wrap = spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = []
        channels = PHOTO_CHANNELS + GREY_CHANNELS
        for width in arch.widths:
            layers += [wrap(nn.Conv2d(channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(LEAK)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.readout = wrap(nn.Linear(channels * arch.final_side**2, 1))

    def forward(self, photo: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
        x = torch.cat([photo, grey], 1) * 2.0 - 1.0  # inputs in [0, 1] -> [-1, 1]
        return self.readout(self.features(x).flatten(1))[:, 0]


def plain_state(net: CriticNet) -> dict[str, torch.Tensor]:
    """The network's weights with spectral normalisation folded in (what a plain CriticNet loads)."""
    was_training = net.training
    net.eval()  # the parametrization then uses its current estimate without another power iteration
    out = {}
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                out[f"{name}.weight"] = module.weight.detach().clone()
                out[f"{name}.bias"] = module.bias.detach().clone()
    net.train(was_training)
    return out


def plain_copy(net: CriticNet) -> CriticNet:
    """A frozen, plain (no spectral normalisation) copy of ``net`` in eval mode."""
    copy = CriticNet(net.arch, spectral=False)
    copy.load_state_dict(plain_state(net))
    return freeze(copy)


def freeze(net: CriticNet) -> CriticNet:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


__all__ = ["Architecture", "CriticNet", "freeze", "parameter_count", "plain_copy", "plain_state"]
