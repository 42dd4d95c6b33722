"""Self-Net's 2D networks and losses.

The residual generators (also the deblurring network), PatchGAN discriminators, and the losses
(Charbonnier, 2D SSIM, least-squares GAN).

The generator follows the authors' ``Deblur_Net``: a 7×7 convolution, two 3×3 convolutions,
``blocks`` residual blocks, two 3×3 convolutions and a 7×7 convolution back to one channel,
leaky ReLUs, no normalisation, reflection padding; 64 channels and 6 blocks make ≈ 0.6 M
parameters. Ours adds the input to the output (a global residual), so that the networks learn the
blur or the restoration, not the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Generator",
    "PatchDiscriminator",
    "charbonnier",
    "ssim2d",
    "restoration_loss",
    "lsgan_loss",
]


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k), nn.LeakyReLU(0.2, inplace=True)
    )


class _ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """One-channel image → one-channel image, same size; any height and width ≥ 4.

    Examples
    --------
    >>> net = Generator(64, 6)
    >>> 590_000 < sum(p.numel() for p in net.parameters()) < 610_000
    True
    """

    def __init__(self, channels: int = 64, blocks: int = 6):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            _conv(1, c, 7),
            _conv(c, c, 3),
            _conv(c, c, 3),
            *[_ResBlock(c) for _ in range(blocks)],
            _conv(c, c, 3),
            _conv(c, c, 3),
            nn.ReflectionPad2d(3),
            nn.Conv2d(c, 1, 7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN with two stride-2 layers (the authors' ``n_layers_D=2``).

    Returns a map of real/fake scores, each for a ≈ 34-pixel window.
    """

    def __init__(self, channels: int = 64):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.InstanceNorm2d(2 * c),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * c, 4 * c, 4, stride=1, padding=1),
            nn.InstanceNorm2d(4 * c),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * c, 1, 4, stride=1, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def charbonnier(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of ``sqrt((a - b)² + eps²)``: a smooth L1."""
    return torch.sqrt((a - b) ** 2 + eps * eps).mean()


def _gauss_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim2d(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of ``(N, 1, H, W)`` images (Gaussian window 11, σ 1.5, valid region)."""
    w = _gauss_window(device=a.device).to(a.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    saa = F.conv2d(a * a, w) - mu_a**2
    sbb = F.conv2d(b * b, w) - mu_b**2
    sab = F.conv2d(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * sab + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2)
    return (num / den).mean()


def restoration_loss(a: torch.Tensor, b: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    """Charbonnier + ``ssim_weight`` · (1 − SSIM): the cycle and deblurring loss."""
    if not ssim_weight:  # the SSIM is not computed at all
        return charbonnier(a, b)
    return charbonnier(a, b) + ssim_weight * (1.0 - ssim2d(a, b))


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean of ``(score − 1)²`` for real, ``score²`` for fake."""
    return ((scores - (1.0 if real else 0.0)) ** 2).mean()
