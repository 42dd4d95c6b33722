"""How a training option is spelled and checked: flag, help, text form, old flat name, choices.

Every field of the training configuration (:mod:`._groups`) carries an :class:`Option` in its
dataclass metadata. ``neurodecon train`` builds its options from these (one flag per field that
has one), and :meth:`TrainConfig.from_dict <neurodecon.learn.TrainConfig.from_dict>` reads the
old flat layout through the ``flat`` names, so each option is described in exactly one place.
Enumerated choices are ``str`` enums checked by :func:`choice`; every check raises the package's
one-line :func:`~neurodecon.errors.user_error` naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field
from enum import Enum
from typing import Any, NoReturn, TypeVar

from ..errors import user_error

__all__ = [
    "Option",
    "ConfigOption",
    "option",
    "parse_numbers",
    "parse_names",
    "parse_auto",
    "parse_auto_int",
    "LossKind",
    "Arch",
    "LRSchedule",
    "parse_key_values",
    "PhysicsInput",
    "PhysicsMethod",
    "BeadTarget",
    "Calibrate",
    "PhotonsAt",
]


@dataclass(frozen=True)
class Option:
    """How one configuration field appears outside Python.

    Attributes
    ----------
    flag : str or None
        Command-line flag (``"--pool-shape"``); ``None`` keeps the field off the command line.
    help : str
        Help text without the default (which is appended from the field's default).
    metavar : str or tuple of str, optional
        Argument placeholder(s) in the help.
    nargs : int, optional
        Number of command-line values (``3`` for a ``Z Y X`` shape).
    parse : callable, optional
        Text → value of one command-line item (``int``, ``float``, :func:`parse_numbers`, ...).
    default_text : str, optional
        How the default reads in the help when the value alone would not say it.
    flat : str, optional
        Key of the field in the flat layout of model directories written before nesting
        (default: the field's name; ``""``: none).
    """

    flag: str | None = None
    help: str = ""
    metavar: str | tuple[str, ...] | None = None
    nargs: int | None = None
    parse: Callable[[str], Any] | None = None
    default_text: str | None = None
    flat: str | None = None


def option(
    default: Any = MISSING, *, default_factory: Any = MISSING, **meta: Any
) -> Any:  # Any: the dataclass field takes the type of its annotation
    """Return a dataclass field whose metadata holds an :class:`Option` built from ``meta``."""
    md = {"option": Option(**meta)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=md)
    return field(default=default, metadata=md)


@dataclass(frozen=True)
class ConfigOption:
    """One field of the nested configuration, with where it lives and how it is spelled.

    Attributes
    ----------
    path : tuple of str
        ``("run", "steps")``: the group, then the field.
    option : Option
        Its spelling (flag, help, text form, flat name).
    default : object
        The field's default value.
    choices : tuple of str, optional
        The allowed values of an enumerated field.
    """

    path: tuple[str, ...]
    option: Option
    default: Any
    choices: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """Return the dotted name, ``"run.steps"``."""
        return ".".join(self.path)

    @property
    def flat(self) -> str | None:
        """Return the key in the flat layout, or ``None`` when it has none."""
        flat = self.option.flat
        if flat == "":
            return None
        return flat if flat is not None else self.path[-1]

    @property
    def dest(self) -> str:
        """Return a name for the parsed value that no other option shares (``"cfg.run.steps"``)."""
        return "cfg." + self.name

    @property
    def metavar(self) -> str | tuple[str, ...]:
        """Return the placeholder of the value in the help: given, else the field's name."""
        return self.option.metavar if self.option.metavar is not None else self.path[-1].upper()

    def help_text(self) -> str:
        """Return the help followed by the default, e.g. ``"crops per step (default 2)"``."""
        text = self.option.default_text
        if text is None:
            text = format_value(self.default, self.option)
        return f"{self.option.help} (default {text})"


def format_value(value: Any, opt: Option | None = None) -> str:
    """Return ``value`` as it would be typed on the command line.

    Examples
    --------
    >>> format_value((32, 64, 64), Option(nargs=3))
    '32 64 64'
    >>> format_value((0.0, 2.0), Option(parse=parse_numbers))
    '0,2'
    """
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        sep = " " if opt is not None and opt.nargs else ","
        return sep.join(format_value(v) for v in value) if value else "none"
    return str(value)


def parse_numbers(text: str) -> tuple[float, ...]:
    """Parse a comma-separated list of numbers ≥ 0.

    Examples
    --------
    >>> parse_numbers("0, 5,10")
    (0.0, 5.0, 10.0)
    """
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals or any(not math.isfinite(v) or v < 0 for v in vals):
        raise ValueError(f"{text!r}: give one or more numbers >= 0, e.g. 0,5,10")
    return vals


def parse_names(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of names; ``none`` is the empty list.

    Examples
    --------
    >>> parse_names("ellipsoids, tubes"), parse_names("none")
    (('ellipsoids', 'tubes'), ())
    """
    if text.strip().lower() == "none":
        return ()
    return tuple(n.strip() for n in text.split(",") if n.strip())


def parse_key_values(text: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE,...`` into a dict (numbers, ``true``/``false`` and ``a/b/c`` tuples).

    Examples
    --------
    >>> parse_key_values("channels=16, groups=2,attention=false,z=1/2")
    {'channels': 16, 'groups': 2, 'attention': False, 'z': (1, 2)}
    """
    out: dict[str, Any] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not KEY=VALUE")
        out[key.strip()] = _scalar(value.strip())
    return out


def _scalar(text: str) -> Any:
    if "/" in text:
        return tuple(_scalar(t) for t in text.split("/"))
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_auto_int(text: str) -> int | str:
    """Parse ``auto`` or an integer.

    Examples
    --------
    >>> parse_auto_int("Auto"), parse_auto_int("40")
    ('auto', 40)
    """
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither 'auto' nor an integer") from None


def parse_auto(text: str) -> float | str:
    """Parse ``auto`` or a number.

    Examples
    --------
    >>> parse_auto("AUTO"), parse_auto("1.5")
    ('auto', 1.5)
    """
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither 'auto' nor a number") from None


def as_tuple(value: Any, kind: Callable[[Any], Any] | None = None) -> tuple[Any, ...]:
    """Return a sequence as a tuple (lists from JSON), each item converted by ``kind``."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(value)
    return tuple(kind(v) if kind else v for v in value)


class LossKind(str, Enum):
    """The loss: mean absolute (NeuroDecon's, 3D-RCAN's) or squared error, or an arch's own.

    ``rln``: RLN's MSE + 0.1 · MSE(intermediate, 0.8 · target + 0.2 · input) − log((1 + SSIM)/2)
    (the ``rln`` architecture only); ``debcr``: DeBCR's MSE + 0.5 · mean |F(pred) − F(target)|
    summed over the network's output scales (one scale for the other architectures).
    """

    MAE = "mae"
    MSE = "mse"
    RLN = "rln"
    DEBCR = "debcr"


class Arch(str, Enum):
    """The network: NeuroDecon's residual U-Net, or one of the seed papers' networks."""

    UNET = "unet"
    RLN = "rln"
    RCAN = "rcan"
    DEBCR = "debcr"


class LRSchedule(str, Enum):
    """Learning-rate schedule after the warm-up (see :func:`neurodecon.learn.lr_factor`)."""

    COSINE = "cosine"
    EXPONENTIAL = "exponential"
    STEP = "step"
    CONSTANT = "constant"


class PhysicsInput(str, Enum):
    """Extra input channel: none, or RL_K of the raw volume (the physics-aware variant)."""

    NONE = "none"
    RL = "rl"


class PhysicsMethod(str, Enum):
    """The RL flavour of the physics input (:func:`neurodecon.classical.deconvolve` methods)."""

    RL = "rl"
    RL_ACCEL = "rl-accel"


class BeadTarget(str, Enum):
    """What a bead stack trains towards: i ⊛ i* (bead mode) or i (PSF mode, PSF from the beads)."""

    BEAD = "bead"
    PSF = "psf"


class Calibrate(str, Enum):
    """Training noise from the microscope's stacks (bead stack, ``--sample``): on or off."""

    AUTO = "auto"
    OFF = "off"


class PhotonsAt(str, Enum):
    """Where the training photons are counted: the sharp volume's or the blurred input's top."""

    AUTO = "auto"
    SHARP = "sharp"
    INPUT = "input"


E = TypeVar("E", bound=Enum)


def choice(kind: type[E], value: Any, what: str) -> E:
    """Return ``value`` as a member of ``kind``, or raise a one-line error naming ``what``."""
    if isinstance(value, kind):
        return value
    allowed = [str(m.value) for m in kind]
    if isinstance(value, str) and value in allowed:
        return kind(value)
    raise user_error(f"unknown {what} {value!r}", fix=f"use {' or '.join(allowed)}")


def fail(what: str, problem: str, fix: str | None = None) -> NoReturn:
    """Raise the one-line error "WHAT PROBLEM. FIX." (see :func:`neurodecon.errors.user_error`)."""
    raise user_error(f"{what} {problem}", fix=fix)


def finite(v: Any) -> bool:
    """Tell whether ``v`` is a finite int or float (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def set_field(obj: Any, name: str, value: Any) -> None:
    """Set a field of a frozen dataclass (normalised once, in ``__post_init__``)."""
    object.__setattr__(obj, name, value)


def check_shape(obj: Any, name: str, n: int, kind: type = int) -> None:
    """Normalise a sequence field to a tuple of ``n`` positive ``kind`` values, or fail."""
    v = getattr(obj, name)
    try:
        t = as_tuple(v, kind)
        exact = all(finite(x) and kind(x) == x for x in as_tuple(v))
    except (TypeError, ValueError):
        t, exact = (), False
    if len(t) != n or not exact or not all(x > 0 for x in t):
        fail(name, f"{v!r} must be {n} numbers > 0")
    set_field(obj, name, t)
