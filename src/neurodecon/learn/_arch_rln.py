"""Richardson–Lucy Network (RLN; Li et al., Nat. Methods 2022), in PyTorch, 3D.

RLN unrolls two Richardson–Lucy updates with learned projections. A down-scaled branch
(average-pool 2) learns a forward projection ``FP1``, divides the input by it
(``DV1 = x / (FP1 + 0.001)``), learns a back projection ``BP1`` ending in a transposed
convolution back to full size and updates ``E1 = softplus(BN(x · BP1))``; a full-scale branch
does the same starting from ``E1`` (``E2 = softplus(BN(E1 · BP2))``); a merge of
``[f1, E2, E1]`` gives the output. Every convolution is 3×3×3 without bias, followed by
batch normalisation (except the two merge convolutions the authors left without) and softplus;
the projections average their channels. The first forward-projection kernels start as
Gaussians (σ 1–4 voxels), the others as truncated normals of standard deviation 1, as in the
authors' code (MeatyPlus/Richardson-Lucy-Net, ``RLN code/RLN_single.py``). The default widths
(4 forward-projection, 8 back-projection channels) give 15,968 parameters (the paper:
"about 16,000"). RLN takes the raw channel only and needs no PSF at inference.

Deviations from the authors' code, each on purpose:

- batch-norm running statistics use momentum 0.1 (TensorFlow's default 0.99 is PyTorch 0.01):
  they settle in tens of steps instead of hundreds, which matters on short CPU budgets;
- the division and multiplication use autograd's analytic gradients by default. The authors'
  custom ones (``custom_gradients=True``: the numerator's gradient passed through unchanged,
  the divisor's ``−m²`` instead of ``−m / (FP + 0.001)``, the multiplication's first factor
  ``dy`` instead of ``b · dy``) trained worse here: best validation 23.11 dB / 0.814 against
  23.38 dB / 0.831 for the analytic ones (mean of two seeds, 300 steps each, both seeds
  favouring the analytic gradients; ``benchmarks/rln_gradients.py``, BENCHMARKS.md);
- the authors' two unused trainable scalars (``alpha``, ``beta``) are left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ._arch_common import check_counts, paper_training

__all__ = ["RLNConfig", "RLN", "rln_loss", "global_ssim", "rln_parameter_count"]


@dataclass
class RLNConfig:
    """Settings of :class:`RLN` (the ``arch_options`` of ``--arch rln``).

    Attributes
    ----------
    fp_channels : int
        Width of the forward projections (the paper's 4).
    bp_channels : int
        Width of the back projections and of the merge (the paper's 8).
    custom_gradients : bool
        The authors' gradients of the division and the multiplication (see the module; off by
        default: they trained worse in a measurement here).
    gaussian_init : bool
        Start the first forward-projection kernels as Gaussians (σ 1–4 voxels).

    The defaults are the paper's and small already (15,968 parameters); the documented CPU
    configuration is the same network.

    Examples
    --------
    >>> from neurodecon.learn import build_network, count_parameters
    >>> count_parameters(build_network({"arch": "rln"}))
    15968
    """

    fp_channels: int = 4
    bp_channels: int = 8
    custom_gradients: bool = False
    gaussian_init: bool = True

    #: options of the training config that ``--arch rln`` sets unless given (the paper's:
    #: Adam lr 0.015 decayed ×0.95 every 600 steps, batch 4, its own loss, raw input only)
    TRAINING_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = paper_training(
        "rln", 0.015, "exponential", data={"batch": 4}
    )

    def __post_init__(self) -> None:
        check_counts(self, ("fp_channels", "bp_channels"))

    @property
    def multiple(self) -> int:
        """Spatial sizes must be even (one average-pooling and its transposed convolution)."""
        return 2

    @property
    def halo(self) -> int:
        """Tiled inference's context in voxels: the receptive field's radius (17) and a margin."""
        return 20

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return asdict(self)


class _Divide(torch.autograd.Function):
    """``m = a / (b + 0.001)`` with the authors' gradients: ``∂a = dy``, ``∂b = −m² dy``."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        m = a / (b + 0.001)
        ctx.save_for_backward(m)
        return m

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (m,) = ctx.saved_tensors
        return dy, -(m**2) * dy


class _Multiply(torch.autograd.Function):
    """``a · b`` with the authors' gradients: ``∂a = dy`` (not ``b dy``), ``∂b = a dy``."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return a * b

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (a,) = ctx.saved_tensors
        return dy, a * dy


def _bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, eps=1e-3, momentum=0.1)


class _ConvBN(nn.Module):
    """3×3×3 convolution without bias, then (optionally) batch norm and softplus."""

    def __init__(self, c_in: int, c_out: int, *, bn: bool = True, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = _bn(c_out) if bn else nn.Identity()
        self.act = act
        nn.init.trunc_normal_(self.conv.weight, std=1.0, a=-2.0, b=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv(x))
        return F.softplus(h) if self.act else h


def _gaussian_init(conv: nn.Conv3d, sigma: float = 2.0) -> None:
    """Set output channel ``k`` to a 3³ Gaussian of σ ∈ (2σ, σ/2, σ, 1.5σ) (max 1, × U(0.7, 1))."""
    w = conv.weight
    r = torch.arange(-1.0, 2.0)
    d2 = r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2
    factors = (2.0, 0.5, 1.0, 1.5)
    with torch.no_grad():
        for k in range(w.shape[0]):
            s = sigma * factors[k % len(factors)]
            g = torch.exp(-d2 / (2 * s * s))
            w[k] = (g / g.max()) * torch.empty(w.shape[1], 1, 1, 1).uniform_(0.7, 1.0)


class RLN(nn.Module):
    """The Richardson–Lucy Network (see the module); input ``(B, 1, Z, Y, X)``, sizes even."""

    def __init__(self, cfg: RLNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        a, b = cfg.fp_channels, cfg.bp_channels
        # down-scaled branch: forward projection FP1, back projection BP1
        fp1 = [_ConvBN(1, a), _ConvBN(a, a), _ConvBN(2 * a, a)]
        self.fp1 = nn.ModuleList(fp1)
        self.dv1_bn = _bn(1)
        self.bp1 = nn.ModuleList([_ConvBN(1, b), _ConvBN(b, b), _ConvBN(2 * b, b)])
        self.up = nn.ConvTranspose3d(b, a, 2, stride=2, bias=False)
        nn.init.trunc_normal_(self.up.weight, std=1.0, a=-2.0, b=2.0)
        self.up_bn = _bn(a)
        self.bp1_out = _ConvBN(a, a)
        self.e1_bn = _bn(1)
        # full-scale branch: FP2, BP2
        fp2 = [_ConvBN(1, a), _ConvBN(a, a)]
        self.fp2 = nn.ModuleList(fp2)
        self.dv2_bn = _bn(1)
        self.bp2 = nn.ModuleList([_ConvBN(1, b), _ConvBN(b, b)])
        self.e2_bn = _bn(1)
        # merge
        self.f1 = _ConvBN(1, b, bn=False)
        self.f2 = _ConvBN(b + 2, b, bn=False)
        self.out = _ConvBN(2 * b, b)
        if cfg.gaussian_init:
            for layer in fp1 + fp2:
                _gaussian_init(layer.conv)

    in_channels = 1

    @property
    def multiple(self) -> int:
        """Every spatial size given to the network must be a multiple of this."""
        return self.cfg.multiple

    def _div(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _Divide.apply(a, b) if self.cfg.custom_gradients else a / (b + 0.001)

    def _mul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _Multiply.apply(a, b) if self.cfg.custom_gradients else a * b

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the prediction and ``{"intermediate": x · BP1}`` (the loss's second term)."""
        a = self.cfg.fp_channels
        xd = F.avg_pool3d(x, 2)
        h1 = self.fp1[0](xd)
        h2 = self.fp1[1](h1)
        fp1 = self.fp1[2](torch.cat([h1, h2], 1)) + F.softplus(xd).expand(-1, a, -1, -1, -1)
        dv1 = self.dv1_bn(self._div(xd, fp1.mean(1, keepdim=True)))
        g1 = self.bp1[0](dv1)
        g2 = self.bp1[1](g1)
        g3 = self.bp1[2](torch.cat([g2, g1], 1))
        up = F.softplus(self.up_bn(self.up(g3)))
        bp1 = self.bp1_out(up).mean(1, keepdim=True)
        inter = self._mul(x, bp1)
        e1 = F.softplus(self.e1_bn(inter))
        k1 = self.fp2[0](x)
        fp2 = self.fp2[1](k1) + F.softplus(x).expand(-1, a, -1, -1, -1)
        dv2 = self.dv2_bn(self._div(x, fp2.mean(1, keepdim=True)))
        bp2 = (self.bp2[1](self.bp2[0](dv2)) + 1.0).mean(1, keepdim=True)
        e2 = F.softplus(self.e2_bn(self._mul(e1, bp2)))
        f1 = self.f1(e2)
        f2 = self.f2(torch.cat([f1, e2, e1], 1))
        pred = self.out(torch.cat([f1, f2], 1)).mean(1, keepdim=True)
        return pred, {"intermediate": inter}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)[0]


def global_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM from whole-batch statistics (one window), constants for a data range of 1 (RLN's)."""
    p, t = pred.float(), target.float()
    mp, mt = p.mean(), t.mean()
    vp, vt = ((p - mp) ** 2).mean(), ((t - mt) ** 2).mean()
    cov = ((p - mp) * (t - mt)).mean()
    c1, c2 = 1e-4, 9e-4
    return ((2 * mp * mt + c1) * (2 * cov + c2)) / ((mp**2 + mt**2 + c1) * (vp + vt + c2))


def rln_loss(
    pred: torch.Tensor, target: torch.Tensor, inp: torch.Tensor, intermediate: torch.Tensor
) -> torch.Tensor:
    """RLN's loss: ``MSE + 0.1 · MSE(x · BP1, 0.8 · y + 0.2 · x) − log((1 + SSIM) / 2)``.

    ``inp`` is the network's (raw) input, ``intermediate`` the first update's ``x · BP1``;
    SSIM is :func:`global_ssim` (the authors' single-window form).
    """
    target = target.float()
    mse = ((pred.float() - target) ** 2).mean()
    guide = 0.8 * target + 0.2 * inp[:, :1].float()
    mse2 = ((intermediate.float() - guide) ** 2).mean()
    ssim = global_ssim(pred, target)
    return mse + 0.1 * mse2 - torch.log(((1 + ssim) / 2).clamp_min(1e-6))


def rln_parameter_count(fp: int = 4, bp: int = 8) -> int:
    """Return the parameter count of :class:`RLN` from its structure (convolutions + BN).

    Examples
    --------
    >>> rln_parameter_count()
    15968
    """
    k = 27
    convs = k * (fp + fp * fp + 2 * fp * fp)  # FP1
    convs += k * (bp + bp * bp + 2 * bp * bp) + 8 * bp * fp + k * fp * fp  # BP1
    convs += k * (fp + fp * fp) + k * (bp + bp * bp)  # FP2, BP2
    convs += k * bp + k * (bp + 2) * bp + k * 2 * bp * bp  # merge
    bn_channels = 3 * fp + 1 + 3 * bp + fp + fp + 1 + 2 * fp + 1 + 2 * bp + 1 + bp
    return convs + 2 * bn_channels
