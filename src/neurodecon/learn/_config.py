"""Training configuration: ``TrainConfig``, the nested, validated groups of one run.

``TrainConfig`` holds one group per concept (see :mod:`._groups`) plus the network's
:class:`NetConfig`; it is saved in full (nested) into every model directory and checkpoint.
:meth:`TrainConfig.from_dict` reads the nested layout and the flat one of earlier versions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from enum import Enum
from typing import Any, ClassVar

from ..errors import user_error
from ._groups import (
    DataConfig,
    KernelConfig,
    LossConfig,
    OptimConfig,
    PhysicsConfig,
    RunConfig,
)
from ._net import ARCH_CONFIGS, NetConfig
from ._noise_config import NoiseConfig
from ._options import (
    Arch,
    BeadTarget,
    Calibrate,
    ConfigOption,
    LossKind,
    LRSchedule,
    Option,
    PhotonsAt,
    PhysicsInput,
    PhysicsMethod,
    as_tuple,
    fail,
    set_field,
)

__all__ = [
    "TrainConfig",
    "DataConfig",
    "NoiseConfig",
    "OptimConfig",
    "LossConfig",
    "PhysicsConfig",
    "RunConfig",
    "KernelConfig",
    "LossKind",
    "Arch",
    "LRSchedule",
    "PhysicsInput",
    "PhysicsMethod",
    "BeadTarget",
    "Calibrate",
    "PhotonsAt",
]


_GROUPS: dict[str, type] = {
    "data": DataConfig,
    "noise": NoiseConfig,
    "optim": OptimConfig,
    "loss": LossConfig,
    "physics": PhysicsConfig,
    "net": NetConfig,
    "run": RunConfig,
    "kernel": KernelConfig,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run, besides the kernels and the sharp volumes.

    Build it with :meth:`from_dict` (nested groups, or the flat keys of earlier versions) or
    from the groups themselves. ``to_dict`` gives the nested form recorded in ``config.json``.

    Examples
    --------
    >>> cfg = TrainConfig.from_dict({"steps": 3, "loss": "mse"}, physics="rl")
    >>> cfg.run.steps, cfg.loss.kind.value, cfg.physics.on, cfg.net.in_channels
    (3, 'mse', True, 2)
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    net: NetConfig = field(default_factory=NetConfig)
    run: RunConfig = field(default_factory=RunConfig)
    kernel: KernelConfig = field(default_factory=KernelConfig)

    #: options that may differ between an interrupted run and its resumption
    RUNTIME_ONLY: ClassVar[tuple[str, ...]] = (
        "run.device",
        "run.threads",
        "run.steps",
        "run.early_stopping_patience",
        "run.time_limit_min",
    )

    def __post_init__(self) -> None:
        for name, kind in _GROUPS.items():
            if not isinstance(getattr(self, name), kind):
                fail(name, f"must be a {kind.__name__}")
        arch = self.net.arch
        if arch != Arch.UNET and self.physics.on:
            fail(
                "physics_input",
                f"rl is for --arch unet; {arch.value} takes the raw channel only",
                "use --physics-input none (the default with this architecture)",
            )
        if self.loss.kind == LossKind.RLN and arch != Arch.RLN:
            fail("loss", "rln needs --arch rln (its intermediate update)", "use mae, mse or debcr")
        if self.physics.on:  # [raw, RL_K] in, residual on RL_K, starting as RL_K exactly
            set_field(
                self,
                "net",
                replace(self.net, in_channels=2, residual_channel=1, zero_init_tail=True),
            )
        m = self.net.multiple
        patch, pool = self.data.patch, self.data.pool_shape
        if any(p % m for p in patch):
            fail(
                "patch",
                f"{patch} is not a multiple of {m} on every axis",
                f"choose patch sizes divisible by the network's size multiple {m}",
            )
        if any(p > s for p, s in zip(patch, pool, strict=True)):
            fail(
                "patch",
                f"{patch} is larger than the pool volumes {pool}",
                "use a smaller --patch or a larger --pool-shape",
            )

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any] | TrainConfig | None = None, **overrides: Any
    ) -> TrainConfig:
        """Build a validated config from a nested or flat dict, then keyword overrides.

        Keys are group names with a dict of fields (``{"run": {"steps": 3}}``, the layout of
        ``to_dict`` and of ``config.json``), or the flat names of earlier versions
        (``steps=3``, ``physics="rl"``, ``loss="mse"``; see :meth:`options`), in any mix.
        Unset fields keep their defaults; with ``net.arch`` other than ``unet``, the fields that
        architecture's paper sets (its ``TRAINING_DEFAULTS``: loss, optimiser, physics input)
        take its values unless given. Unknown keys are a one-line error.
        """
        values: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
        base = d.to_dict() if isinstance(d, TrainConfig) else dict(d or {})
        for source in (base, overrides):
            for key, value in source.items():
                _assign(values, key, value)
        arch = values["net"].get("arch", Arch.UNET)
        arch = arch.value if isinstance(arch, Enum) else arch
        if arch in ARCH_CONFIGS:
            for g, defaults in ARCH_CONFIGS[arch][0].TRAINING_DEFAULTS.items():
                for k, v in defaults.items():
                    values[g].setdefault(k, v)
        groups = {}
        for g, kind in _GROUPS.items():
            v = values[g]
            if kind is NetConfig:  # its fields are no Option-spelled group: keep its own types
                v = {k: as_tuple(x) if isinstance(x, list) else x for k, x in v.items()}
            groups[g] = kind(**v)
        return cls(**groups)

    def to_dict(self) -> dict[str, Any]:
        """Return the nested form (``{"data": {...}, "run": {...}, ...}``), enums as strings."""
        return {
            name: {k: v.value if isinstance(v, Enum) else v for k, v in asdict(group).items()}
            for name, group in ((g, getattr(self, g)) for g in _GROUPS)
        }

    @classmethod
    def options(cls) -> Iterator[ConfigOption]:
        """Yield every field of every group with its spelling (flag, help, flat name)."""
        for g, kind in _GROUPS.items():
            default = kind()
            for f in fields(kind):
                opt = f.metadata.get("option", Option(flat=""))
                value = getattr(default, f.name)
                choices = (
                    tuple(str(m.value) for m in type(value)) if isinstance(value, Enum) else None
                )
                yield ConfigOption((g, f.name), opt, value, choices)

    def differences(self, other: TrainConfig, *, ignore: tuple[str, ...] = ()) -> list[str]:
        """Return the dotted names of the fields that differ from ``other``'s."""
        a, b = _dotted(self.to_dict()), _dotted(other.to_dict())
        return sorted(k for k in a if k not in ignore and a[k] != b.get(k))


@functools.cache
def _flat_names() -> dict[str, tuple[str, str]]:
    return {o.flat: (o.path[0], o.path[1]) for o in TrainConfig.options() if o.flat}


def _assign(values: dict[str, dict[str, Any]], key: str, value: Any) -> None:
    """Put one entry of a nested or flat dict into ``values[group][field]``."""
    group_value = isinstance(value, Mapping) or is_dataclass(value)
    if key in _GROUPS and (group_value or key == "net"):
        if is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in fields(value)}
        if not isinstance(value, Mapping):
            fail(key, f"must be a dict of {key} options, not {value!r}")
        known = {f.name for f in fields(_GROUPS[key])}
        unknown = sorted(set(value) - known)
        if unknown:
            raise user_error(
                f"unknown training option(s) {', '.join(f'{key}.{u}' for u in unknown)}",
                fix=f"use some of {', '.join(sorted(known))}",
            )
        values[key].update(value)
        return
    flat = _flat_names()
    if key not in flat:
        raise user_error(
            f"unknown training option {key}",
            fix=f"use some of {', '.join(sorted(flat))}, or the groups {', '.join(_GROUPS)}",
        )
    group, name = flat[key]
    values[group][name] = value


def _dotted(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
