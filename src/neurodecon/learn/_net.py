"""The networks: NeuroDecon's 3D U-Net, and ``build_network``, the one map from ``arch`` to module.

``NetConfig.arch`` names the network (``unet`` — the default —, ``rln``, ``rcan``, ``debcr``;
:mod:`._arch_rln`, :mod:`._arch_rcan`, :mod:`._arch_debcr`) and ``NetConfig.arch_options`` holds
the other architectures' own settings. Every network built here has ``multiple`` (the size
multiple of tiled inference) and ``in_channels``.

The NeuroDecon network: a 3D U-Net whose convolution pairs are residual blocks (paper §4.2.1).

Each residual block is three 3×3×3 convolutions, each followed by LeakyReLU(0.3); the block adds
its input (through a 1×1×1 projection when the channel count changes). 1×1×1 convolutions map
the image to the base width at the input and back to one channel at the output. Widths double
after each 3D max-pooling and halve after each (non-learned) upsampling.

Stability: without normalisation layers this network diverged at lr 1e-3 in an earlier trial
here. Each residual branch is multiplied by a learnable scalar (``res_scale_init``); training
uses warm-up and gradient clipping. Measured (bench_learn.py, base 8, lr 1e-3, warm-up 20,
clip 1.0): init 1.0 was stable for 200–300 steps and learned ~3× faster than init 0.1; use a
small init (0.1) if a wider network or higher rate diverges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any

import torch
from torch import nn

from ._arch_debcr import DeBCR, DeBCRConfig, z_halving_for
from ._arch_rcan import RCAN, RCANConfig
from ._arch_rln import RLN, RLNConfig
from ._options import Arch, choice, option, parse_key_values

__all__ = [
    "NetConfig",
    "ResBlock",
    "ResUNet",
    "build_network",
    "count_parameters",
    "ARCH_CONFIGS",
    "arch_config",
    "for_voxel_size",
]

#: the other architectures' settings and modules (``unet`` is :class:`NetConfig` itself)
ARCH_CONFIGS: dict[str, tuple[Any, type[nn.Module]]] = {
    "rln": (RLNConfig, RLN),
    "rcan": (RCANConfig, RCAN),
    "debcr": (DeBCRConfig, DeBCR),
}


@dataclass
class NetConfig:
    """Architecture of :class:`ResUNet` (saved into every model directory)."""

    # flat="": the flat layout of earlier versions nested these under "net" already
    base_channels: int = option(
        8, flag="--base-channels", parse=int, flat="", help="network width (first level)"
    )
    depth: int = option(
        3, flag="--net-depth", parse=int, flat="", help="network depth: number of poolings"
    )
    convs_per_block: int = 3
    negative_slope: float = 0.3
    upsample: str = "nearest"
    res_scale_init: float = 1.0
    global_residual: bool = True
    in_channels: int = 1
    residual_channel: int = 0  # the input channel added to the output (global residual)
    zero_init_tail: bool = False  # output projection starts at zero: prediction = that channel
    arch: Arch = option(
        Arch.UNET,
        flag="--arch",
        help="network: unet (NeuroDecon's residual U-Net), rln (Richardson-Lucy Network), rcan "
        "(3D-RCAN) or debcr (3D m-rBCR); the loss, optimiser and physics input default to the "
        "chosen network's paper (docs/learn.md)",
    )
    # the other architectures' settings (all of them once resolved; empty for the U-Net, whose
    # settings are the fields above)
    arch_options: dict[str, Any] = option(
        default_factory=dict,
        flag="--arch-options",
        parse=parse_key_values,
        metavar="KEY=VALUE,...",
        help="settings of --arch rln/rcan/debcr, e.g. channels=16,groups=2 (docs/learn.md)",
        default_text="the paper's",
    )

    def __post_init__(self) -> None:
        from ..errors import user_error

        for name in ("base_channels", "depth", "convs_per_block", "in_channels"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise user_error(f"network {name} {v!r} must be an integer >= 1")
        self.arch = choice(Arch, self.arch, "architecture")
        if not isinstance(self.arch_options, Mapping):
            raise user_error(f"arch_options {self.arch_options!r} must be a dict")
        if self.arch == Arch.UNET:
            if self.arch_options:
                raise user_error(
                    "arch_options apply to --arch rln, rcan or debcr",
                    fix="set the U-Net's width and depth with --base-channels and --net-depth",
                )
            self.arch_options = {}
            return
        kind = ARCH_CONFIGS[self.arch.value][0]
        known = set(kind.__dataclass_fields__)
        unknown = sorted(set(self.arch_options) - known)
        if unknown:
            raise user_error(
                f"unknown {self.arch.value} option(s) {', '.join(unknown)}",
                fix=f"use some of {', '.join(sorted(known))}",
            )
        try:
            self.arch_options = kind(**self.arch_options).to_dict()
        except ValueError as exc:
            raise user_error(f"{self.arch.value} option {exc}") from None

    @property
    def multiple(self) -> int:
        """Return the size multiple of the network this config builds."""
        if self.arch == Arch.UNET:
            return 2**self.depth
        return int(arch_config(self).multiple)

    @property
    def halo(self) -> int:
        """Return the context tiled inference reads around each tile (16 for the U-Net)."""
        if self.arch == Arch.UNET:
            return 16
        return int(arch_config(self).halo)

    def to_dict(self) -> dict:
        """Return the fields as a dict (the ``network`` entry of ``config.json``)."""
        return {k: v.value if isinstance(v, Enum) else v for k, v in asdict(self).items()}


class ResBlock(nn.Module):
    """``out = skip(x) + γ · f(x)`` with ``f`` = (conv3³ → LeakyReLU) × ``n_convs``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        n_convs: int = 3,
        slope: float = 0.3,
        res_scale_init: float = 1.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [
                nn.Conv3d(c_in if i == 0 else c_out, c_out, 3, padding=1),
                nn.LeakyReLU(slope),
            ]
        self.body = nn.Sequential(*layers)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)
        self.scale = nn.Parameter(torch.tensor(float(res_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.scale * self.body(x)


class ResUNet(nn.Module):
    """Residual 3D U-Net. Spatial input sizes must be multiples of ``2 ** depth``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_channels = cfg.in_channels
        c = cfg.base_channels

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(
                c_in,
                c_out,
                n_convs=cfg.convs_per_block,
                slope=cfg.negative_slope,
                res_scale_init=cfg.res_scale_init,
            )

        self.head = nn.Conv3d(cfg.in_channels, c, 1)
        self.down = nn.ModuleList()
        for level in range(cfg.depth):
            self.down.append(block(c * 2 ** max(level - 1, 0), c * 2**level))
        self.pool = nn.MaxPool3d(2)
        self.bottom = block(c * 2 ** (cfg.depth - 1), c * 2**cfg.depth)
        self.reduce = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(cfg.depth)):
            self.reduce.append(nn.Conv3d(c * 2 ** (level + 1), c * 2**level, 1))
            self.up.append(block(c * 2 ** (level + 1), c * 2**level))
        self.upsample = nn.Upsample(scale_factor=2, mode=cfg.upsample)
        self.tail = nn.Conv3d(c, 1, 1)
        if cfg.zero_init_tail:
            nn.init.zeros_(self.tail.weight)
            if self.tail.bias is not None:
                nn.init.zeros_(self.tail.bias)

    @property
    def multiple(self) -> int:
        """Every spatial size given to the network must be a multiple of this."""
        return 2**self.cfg.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for reduce, block, skip in zip(self.reduce, self.up, reversed(skips), strict=True):
            h = reduce(self.upsample(h))
            h = block(torch.cat([h, skip], dim=1))
        out = self.tail(h)
        if self.cfg.global_residual:
            r = self.cfg.residual_channel
            out = out + x[:, r : r + 1]
        return out


def arch_config(cfg: NetConfig) -> Any:
    """Return the settings dataclass of a non-U-Net ``cfg`` (``RLNConfig``, ...)."""
    return ARCH_CONFIGS[cfg.arch.value][0](**cfg.arch_options)


def build_network(cfg: NetConfig | Mapping[str, Any] | None = None) -> nn.Module:
    """Build any architecture: the one place that maps ``arch`` to a module.

    Parameters
    ----------
    cfg : NetConfig, dict or None
        A :class:`NetConfig`; the ``network`` entry of a model's ``config.json``; or the whole
        ``config.json`` (its ``network`` entry, with the top-level ``arch`` when the entry has
        none). A dict without ``arch`` is the U-Net (model folders written before there was a
        choice). ``None``: the U-Net's defaults.

    Returns
    -------
    torch.nn.Module
        The network, with ``multiple`` (every spatial input size must be a multiple of it) and
        ``in_channels``; :class:`ResUNet`, :class:`~neurodecon.learn.RLN`,
        :class:`~neurodecon.learn.RCAN` or :class:`~neurodecon.learn.DeBCR`.

    Examples
    --------
    >>> net = build_network({"arch": "rcan", "arch_options": {"channels": 8, "groups": 1}})
    >>> type(net).__name__, net.multiple, net.in_channels
    ('RCAN', 1, 1)
    """
    if cfg is None:
        cfg = NetConfig()
    elif isinstance(cfg, Mapping):
        d = dict(cfg)
        if isinstance(d.get("network"), Mapping):  # a whole config.json
            top = d.get("arch")
            d = dict(d["network"])
            if top is not None:
                d.setdefault("arch", top)
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        cfg = NetConfig(**fields)
    if cfg.arch == Arch.UNET:
        return ResUNet(cfg)
    return ARCH_CONFIGS[cfg.arch.value][1](arch_config(cfg))


def for_voxel_size(cfg: NetConfig, voxel_size_um: tuple[float, float, float]) -> NetConfig:
    """Return ``cfg`` with what depends on the voxel size resolved (DeBCR's ``z_halving``)."""
    if cfg.arch == Arch.DEBCR and cfg.arch_options.get("z_halving") == "auto":
        depth = DeBCRConfig(**cfg.arch_options).depth
        z = z_halving_for(voxel_size_um, depth)
        return replace(cfg, arch_options={**cfg.arch_options, "z_halving": z})
    return cfg


def count_parameters(net: nn.Module) -> int:
    """Return the number of parameters of ``net``."""
    return sum(p.numel() for p in net.parameters())
