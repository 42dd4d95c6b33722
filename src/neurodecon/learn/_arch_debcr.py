"""DeBCR's m-rBCR network (Li et al., 2024/2025), built in 3D as the paper describes it.

The paper's network: the input at three scales (the volume and two subsampled copies), at each
scale a residual BCR unit — a Beylkin–Coifman–Rokhlin (non-standard wavelet) decomposition
implemented with convolutions — then the scales fused from coarse to fine, an output at every
scale, and a loss summed over the scales, ``MSE + 0.5 · mean |F(ŷ) − F(y)|`` (Eqs. 1–3).

Here, in 3D:

- scales: ``x_k = avgpool(x_{k-1})`` with a per-axis factor: y and x are always halved, z only
  where that keeps its spacing within 1.5× of the lateral one (``z_halving="auto"``, resolved
  from the training voxel size; confocal/widefield stacks with 2–3× coarser z keep z at first);
- BCR unit (residual): a lift to ``channels``, ``levels`` orthonormal Haar analyses over the
  same per-axis halving (:func:`haar_analysis`); at each level the detail bands go through a
  pointwise (1×1×1) network of ``convs`` layers fed with the level's low-pass too (the BCR
  operators A, B, C act locally in the wavelet domain), the coarsest low-pass through ``convs``
  3×3×3 convolutions (the operator T), then Haar synthesis back up, plus the unit's input;
- fusion coarse → fine: the coarser features upsampled trilinearly to the finer grid,
  concatenated and mixed (1×1×1 → ReLU → 3×3×3, one module shared across scales as in the
  authors' code); an output convolution per scale adds a residual to that scale's input;
- loss: :func:`debcr_loss` over every scale, the Fourier term over all three axes.

Deviations from the shipped code (DeBCR/DeBCR, ``src/debcr/_core/model/m_rBCR.py``), on
purpose: there the wavelet/BCR stage is switched off by its parameters (``L = L0 = 12`` leaves
its loops empty; a per-pixel dense stack of 12 layers remains), the scales are decimated
(``x[::2]``) rather than averaged, the Fourier term is taken along one image axis, and every
size is fixed to 128×128; here the BCR stage is on, sizes follow the input, the scales are
averaged (no aliasing) and the Fourier term is 3D. The shipped second stage (1D convolutions
and residual dense blocks) is replaced by the fusion above; widths are smaller by default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ._arch_common import check_counts, paper_training

__all__ = [
    "DeBCRConfig",
    "DeBCR",
    "debcr_loss",
    "fourier_l1",
    "haar_analysis",
    "haar_synthesis",
    "z_halving_for",
]


@dataclass
class DeBCRConfig:
    """Settings of :class:`DeBCR` (the ``arch_options`` of ``--arch debcr``).

    Attributes
    ----------
    channels : int
        Feature width (the shipped code's α is 32).
    scales : int
        Input scales (the paper's 3).
    levels : int
        Haar levels of each BCR unit.
    convs : int
        Layers of each wavelet-domain operator.
    z_halving : tuple of bool or "auto"
        Whether z is halved at each depth (scales − 1 + levels of them); ``auto``: from the
        voxel size (:func:`z_halving_for`), all halved until it is known.

    The documented small CPU configuration is ``channels=8, scales=2, levels=1``
    (:meth:`cpu`).
    """

    channels: int = 16
    scales: int = 3
    levels: int = 2
    convs: int = 2
    z_halving: Any = "auto"

    #: the paper's training: its loss, Adam 1e-3 at a constant rate, raw input only
    TRAINING_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = paper_training(
        "debcr", 1e-3, "constant"
    )

    def __post_init__(self) -> None:
        check_counts(self, ("channels", "scales", "levels", "convs"))
        z = self.z_halving
        if z != "auto":
            if isinstance(z, bool | int):
                z = (z,)
            z = tuple(bool(v) for v in z)
            if len(z) != self.depth:
                raise ValueError(f"z_halving {z} needs {self.depth} entries (scales - 1 + levels)")
            self.z_halving = z

    @staticmethod
    def cpu() -> dict[str, Any]:
        """Return the options of the small CPU configuration."""
        return {"channels": 8, "scales": 2, "levels": 1}

    @property
    def depth(self) -> int:
        """Return the number of halvings at the deepest point (scales − 1 + levels)."""
        return self.scales - 1 + self.levels

    def halvings(self) -> list[tuple[int, ...]]:
        """Return the axes (2=z, 3=y, 4=x of a batch) halved at each depth."""
        z = (True,) * self.depth if self.z_halving == "auto" else self.z_halving
        return [((2,) if hz else ()) + (3, 4) for hz in z]

    @property
    def multiple(self) -> int:
        """Every spatial size must be a multiple of this (2 ** depth)."""
        return 2**self.depth

    @property
    def halo(self) -> int:
        """Tiled inference's context: a bound on the receptive field's radius, at most 48.

        The coarsest operator's ``convs`` 3³ convolutions span ``convs · 2^depth`` voxels, each
        scale's lift, fusion and output convolutions three more at its own step; beyond 48 voxels
        (the default configuration at isotropic voxels) the coarsest context is cut at tile
        edges, which changes the result there slightly.
        """
        bound = (self.convs + 1) * 2**self.depth + sum(3 * 2**k for k in range(self.scales))
        return min(bound, 48)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return asdict(self)


def z_halving_for(voxel_size_um: tuple[float, float, float], depth: int) -> tuple[bool, ...]:
    """Return whether to halve z at each of ``depth`` halvings (y and x always halve).

    z is halved where its spacing stays within 1.5× of the lateral spacing after the halving.

    Examples
    --------
    >>> z_halving_for((0.1, 0.1, 0.1), 3), z_halving_for((0.3, 0.1, 0.1), 3)
    ((True, True, True), (False, True, True))
    """
    vz, vxy = float(voxel_size_um[0]), float(min(voxel_size_um[1:]))
    out = []
    for _ in range(depth):
        vxy *= 2
        halve = 2 * vz <= 1.5 * vxy
        vz *= 2 if halve else 1
        out.append(halve)
    return tuple(out)


def haar_analysis(x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Orthonormal Haar analysis of ``(B, C, Z, Y, X)`` along ``axes``; bands stacked in C.

    Returns ``(B, C · 2^len(axes), ...)`` with each axis halved; band 0 (the first ``C``
    channels) is the low-pass. Sizes along ``axes`` must be even.
    """
    bands = [x]
    for a in axes:
        nxt = []
        for b in bands:
            even, odd = b.narrow(a, 0, b.shape[a] // 2 * 2).unflatten(a, (-1, 2)).unbind(a + 1)
            nxt += [(even + odd) / math.sqrt(2), (even - odd) / math.sqrt(2)]
        bands = nxt
    return torch.cat(bands, 1)


def haar_synthesis(h: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Invert :func:`haar_analysis` (same ``axes``)."""
    bands = list(h.chunk(2 ** len(axes), 1))
    for a in reversed(axes):
        nxt = []
        for lo, hi in zip(bands[0::2], bands[1::2], strict=True):
            even, odd = (lo + hi) / math.sqrt(2), (lo - hi) / math.sqrt(2)
            nxt.append(torch.stack([even, odd], a + 1).flatten(a, a + 1))
        bands = nxt
    return bands[0]


def _pointwise(c_in: int, c_out: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv3d(c_in if i == 0 else c_out, c_out, 1))
        if i < n - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _BCRUnit(nn.Module):
    """Residual BCR unit: Haar levels, local operators in the wavelet domain, synthesis."""

    def __init__(self, c: int, convs: int, halvings: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.halvings = halvings
        self.detail = nn.ModuleList(
            _pointwise(c * 2 ** len(h), c * (2 ** len(h) - 1), convs) for h in halvings
        )
        coarse: list[nn.Module] = []
        for _ in range(convs):
            coarse += [nn.Conv3d(c, c, 3, padding=1), nn.ReLU()]
        self.coarse = nn.Sequential(*coarse[:-1])
        self.out = nn.Conv3d(c, c, 1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        c = v.shape[1]
        details, s = [], v
        for axes, op in zip(self.halvings, self.detail, strict=True):
            w = haar_analysis(s, axes)
            details.append(op(w))
            s = w[:, :c]
        u = s + self.coarse(s)
        for axes, d in zip(reversed(self.halvings), reversed(details), strict=True):
            u = haar_synthesis(torch.cat([u, d], 1), axes)
        return v + self.out(u)


class DeBCR(nn.Module):
    """3D m-rBCR (see the module); input ``(B, 1, Z, Y, X)``, sizes multiples of ``multiple``."""

    in_channels = 1

    def __init__(self, cfg: DeBCRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c, hv = cfg.channels, cfg.halvings()
        self.scale_axes = hv[: cfg.scales - 1]
        self.lift = nn.ModuleList(nn.Conv3d(1, c, 3, padding=1) for _ in range(cfg.scales))
        self.units = nn.ModuleList(
            _BCRUnit(c, cfg.convs, hv[k : k + cfg.levels]) for k in range(cfg.scales)
        )
        self.fuse = nn.Sequential(nn.Conv3d(2 * c, c, 1), nn.ReLU(), nn.Conv3d(c, c, 3, padding=1))
        self.heads = nn.ModuleList(nn.Conv3d(c, 1, 3, padding=1) for _ in range(cfg.scales))

    @property
    def multiple(self) -> int:
        """Every spatial size given to the network must be a multiple of this."""
        return self.cfg.multiple

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``[x, x↓, x↓↓, ...]``: averages over the per-axis factors of each scale."""
        out = [x]
        for axes in self.scale_axes:
            k = tuple(2 if a in axes else 1 for a in (2, 3, 4))
            out.append(F.avg_pool3d(out[-1], k))
        return out

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """Return the full-scale prediction and ``{"scales": [coarser predictions]}``."""
        xs = self.pyramid(x[:, :1])
        feats = [u(lift(xk)) for xk, lift, u in zip(xs, self.lift, self.units, strict=True)]
        g = feats[-1]
        outs = [xs[-1] + self.heads[-1](g)]
        for k in range(len(xs) - 2, -1, -1):
            up = F.interpolate(g, size=feats[k].shape[2:], mode="trilinear", align_corners=False)
            g = self.fuse(torch.cat([feats[k], up], 1))
            outs.insert(0, xs[k] + self.heads[k](g))
        return outs[0], {"scales": outs[1:], "pyramid": self.pyramid}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[0]


def fourier_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean ``|F(pred) − F(target)|`` over the 3D spectrum (orthonormal FFT over z, y, x)."""
    dims = (-3, -2, -1)
    diff = torch.fft.rfftn(pred.float(), dim=dims, norm="ortho") - torch.fft.rfftn(
        target.float(), dim=dims, norm="ortho"
    )
    return diff.abs().mean()


def debcr_loss(
    pred: torch.Tensor, target: torch.Tensor, extras: dict[str, Any] | None = None
) -> torch.Tensor:
    """DeBCR's loss ``Σ_scales MSE + 0.5 · fourier_l1`` (Eqs. 1–3 of the paper).

    ``extras`` from :meth:`DeBCR.forward_train` adds its coarser scales, each against the
    target averaged to that scale; without it the loss is the full scale's alone.
    """
    target = target.float()
    preds, targets = [pred], [target]
    if extras and extras.get("scales"):
        targets = extras["pyramid"](target)
        preds += list(extras["scales"])
    loss = pred.new_zeros((), dtype=torch.float32)
    for p, t in zip(preds, targets, strict=True):
        loss = loss + ((p.float() - t) ** 2).mean() + 0.5 * fourier_l1(p, t)
    return loss
