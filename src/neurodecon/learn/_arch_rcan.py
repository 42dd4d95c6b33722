"""3D-RCAN (Chen et al., Nat. Methods 2021): residual channel-attention network, in PyTorch.

Residual groups of residual channel-attention blocks: each block is conv3³ → ReLU → conv3³,
then channel attention (global average pool → 1×1×1 conv to ``channels / reduction`` → ReLU
→ 1×1×1 conv → sigmoid, multiplying the channels), added to its input (times
``residual_scaling``); each group ends in a conv3³ added to the group's input, and the groups
end in a conv3³ added to the first convolution's output (the long skip). No pooling: any input
size. Inputs are mapped to [−1, 1] (``2x − 1``) inside the network and the output back
(``(y + 1) / 2``), as ``rcan/model.py`` of AiviaCommunity/3D-RCAN does; the pipeline's inputs
are percentile-normalised to about [0, 1]. The paper's defaults (32 channels, 5 groups × 3
blocks, reduction 8) give 1,002,621 parameters (:func:`rcan_parameter_count`).

Tiling: channel attention pools over the whole input, so a tile's output depends a little on
the rest of the tile (the same holds in the authors' code, which tiles too). Tiled inference
differs from whole-volume inference by that much; ``attention=False`` (plain residual blocks)
makes the network local and tiled == untiled exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ._arch_common import check_counts, paper_training

__all__ = ["RCANConfig", "RCAN", "rcan_parameter_count"]


@dataclass
class RCANConfig:
    """Settings of :class:`RCAN` (the ``arch_options`` of ``--arch rcan``).

    Defaults are the paper's. The documented small CPU configuration is
    ``channels=16, groups=2, blocks=2, reduction=4`` (:meth:`cpu`; 77,681 parameters).

    Examples
    --------
    >>> from neurodecon.learn import build_network, count_parameters
    >>> count_parameters(build_network({"arch": "rcan"})) == rcan_parameter_count() == 1002621
    True
    >>> count_parameters(build_network({"arch": "rcan", "arch_options": RCANConfig.cpu()}))
    77681
    """

    channels: int = 32
    groups: int = 5
    blocks: int = 3
    reduction: int = 8
    residual_scaling: float = 1.0
    attention: bool = True

    #: the paper's training: MAE, Adam 1e-4 halved every quarter of training, raw input only
    TRAINING_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = paper_training("mae", 1e-4, "step")

    def __post_init__(self) -> None:
        check_counts(self, ("channels", "groups", "blocks", "reduction"))
        if self.channels // self.reduction < 1:
            raise ValueError(f"reduction {self.reduction} leaves no channel of {self.channels}")

    @staticmethod
    def cpu() -> dict[str, Any]:
        """Return the options of the small CPU configuration."""
        return {"channels": 16, "groups": 2, "blocks": 2, "reduction": 4}

    @property
    def multiple(self) -> int:
        """No pooling: any size."""
        return 1

    @property
    def halo(self) -> int:
        """Tiled inference's context: the receptive field's radius (one voxel per 3³ conv)."""
        return 2 * self.groups * self.blocks + (self.groups if self.groups > 1 else 0) + 3

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict."""
        return asdict(self)


def _conv(c_in: int, c_out: int) -> nn.Conv3d:
    return nn.Conv3d(c_in, c_out, 3, padding=1)


class _RCAB(nn.Module):
    """Residual channel-attention block."""

    def __init__(self, c: int, reduction: int, scaling: float, attention: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c, c), nn.ReLU(), _conv(c, c))
        self.attention = (
            nn.Sequential(
                nn.AdaptiveAvgPool3d(1),
                nn.Conv3d(c, c // reduction, 1),
                nn.ReLU(),
                nn.Conv3d(c // reduction, c, 1),
                nn.Sigmoid(),
            )
            if attention
            else None
        )
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if self.attention is not None:
            h = h * self.attention(h)
        return x + self.scaling * h


class _Group(nn.Module):
    def __init__(self, cfg: RCANConfig) -> None:
        super().__init__()
        c = cfg.channels
        blocks = [
            _RCAB(c, cfg.reduction, cfg.residual_scaling, cfg.attention) for _ in range(cfg.blocks)
        ]
        self.blocks = nn.Sequential(*blocks)
        # the authors' code skips the group's convolution and skip when there is one group
        self.conv = _conv(c, c) if cfg.groups > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x)
        return h if self.conv is None else x + self.conv(h)


class RCAN(nn.Module):
    """3D-RCAN (see the module); input ``(B, 1, Z, Y, X)`` of any size."""

    in_channels = 1

    def __init__(self, cfg: RCANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.head = _conv(1, c)
        self.groups = nn.Sequential(*[_Group(cfg) for _ in range(cfg.groups)])
        self.body_end = _conv(c, c)
        self.tail = _conv(c, 1)

    @property
    def multiple(self) -> int:
        """Every spatial size given to the network must be a multiple of this."""
        return self.cfg.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(2 * x - 1)
        h = h + self.body_end(self.groups(h))
        return 0.5 * self.tail(h) + 0.5


def rcan_parameter_count(
    channels: int = 32, groups: int = 5, blocks: int = 3, reduction: int = 8
) -> int:
    """Return the parameter count of :class:`RCAN` (with attention) from its structure.

    Examples
    --------
    >>> rcan_parameter_count()
    1002621
    """
    c, r = channels, channels // reduction
    conv = 27 * c * c + c
    block = 2 * conv + (c * r + r) + (r * c + c)
    group_conv = conv if groups > 1 else 0
    return (27 * c + c) + groups * (blocks * block + group_conv) + conv + (27 * c + 1)
