"""The training noise group: a camera's noise, its values calibrated or given.

:class:`NoiseConfig` leaves the values a noise calibration measures ``None`` until training
starts; :meth:`NoiseConfig.resolved` fills them from the calibration of the bead stack and
``--sample`` stacks (:mod:`._calibration`) or from :attr:`NoiseConfig.FALLBACK`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ._options import Calibrate, PhotonsAt, as_tuple, choice, fail, finite, option, set_field
from ._options import parse_numbers as _nums

__all__ = ["NoiseConfig"]


@dataclass(frozen=True)
class NoiseConfig:
    """Training noise, drawn per crop as a camera would.

    ``counts = gain · Poisson(x · photons + background) + offset + N(0, read_noise²)``, the input
    being ``counts / (gain · photons)``.

    ``photons`` are expected photo-electrons at the brightest structures — of the sharp volume
    (its 99.9th percentile scaled to 1: ``photons_at="sharp"``) or of the blurred input (its
    :func:`~neurodecon.metrics.structure_level`: ``"input"``, what a calibration measures);
    ``backgrounds`` background light in photons per voxel (left in the input, as a microscope's
    would be; not in the target); ``read_noise`` the Gaussian σ in counts; ``gain`` counts per
    photo-electron; ``offset`` the camera offset in counts.

    A field left ``None`` is resolved when training starts (:meth:`resolved`): from the noise
    calibration of the bead stack and ``--sample`` stacks when ``calibrate="auto"`` and there is
    one, else from :attr:`FALLBACK`. A value given explicitly always wins.
    """

    #: What a field left ``None`` becomes without a calibration.
    FALLBACK: ClassVar[dict[str, Any]] = {
        "photons": (30.0, 100.0, 300.0, 1000.0),
        "backgrounds": (0.0, 2.0, 5.0, 10.0),
        "read_noise": 1.0,
        "gain": 1.0,
        "offset": 0.0,
    }

    calibrate: Calibrate = option(
        Calibrate.AUTO,
        flag="--calibrate",
        help="auto: measure offset, gain, read noise and photon levels on the bead stack and "
        "--sample stacks and train with noise drawn around them; off: use the values below",
    )
    photons: tuple[float, ...] | None = option(
        None,
        flag="--photons",
        parse=_nums,
        metavar="P,...",
        help="expected photons at the brightest structures (see --photons-at), one drawn per crop",
        default_text="calibrated, else 30,100,300,1000",
    )
    photons_at: PhotonsAt = option(
        PhotonsAt.AUTO,
        flag="--photons-at",
        help="where --photons count: the sharp volume's top (sharp) or the blurred input's "
        "brightest structures (input); auto: input for calibrated photons, else sharp",
    )
    backgrounds: tuple[float, ...] | None = option(
        None,
        flag="--backgrounds",
        parse=_nums,
        metavar="B,...",
        help="background light in photons per voxel, left in the input, one drawn per crop",
        default_text="calibrated (0 and each sample's light above the beads' dark level), "
        "else 0,2,5,10",
    )
    read_noise: float | None = option(
        None,
        flag="--read-noise",
        parse=float,
        help="Gaussian read noise σ in counts",
        default_text="calibrated, else 1",
    )
    gain: float | None = option(
        None,
        flag="--gain",
        parse=float,
        help="camera counts per photo-electron",
        default_text="calibrated, else 1",
    )
    offset: float | None = option(
        None,
        flag="--offset",
        parse=float,
        help="camera offset in counts, in the input",
        default_text="calibrated dark level, else 0",
    )

    def __post_init__(self) -> None:
        set_field(self, "calibrate", choice(Calibrate, self.calibrate, "noise calibration"))
        set_field(self, "photons_at", choice(PhotonsAt, self.photons_at, "photons-at"))
        for name, low in (("photons", "> 0"), ("backgrounds", ">= 0")):
            if getattr(self, name) is None:
                continue
            try:
                t = as_tuple(getattr(self, name), float)
            except (TypeError, ValueError):
                t = ()
            if not t or not all(
                math.isfinite(v) and (v > 0 if low == "> 0" else v >= 0) for v in t
            ):
                fail(name, f"{getattr(self, name)!r} must be numbers {low}", "e.g. 0,5,10")
            set_field(self, name, t)
        for name, ok in (
            ("read_noise", lambda v: v >= 0),
            ("gain", lambda v: v > 0),
            ("offset", lambda v: True),
        ):
            v = getattr(self, name)
            if v is not None and not (finite(v) and ok(v)):
                fail(name, f"{v!r} must be a finite number{' > 0' if name == 'gain' else ''}")
            if v is not None:
                set_field(self, name, float(v))

    def resolved(self, calibrated: Mapping[str, Any] | None = None) -> NoiseConfig:
        """Return the config with every ``None`` field filled and ``photons_at`` decided.

        ``calibrated`` holds calibrated values (``photons``, counted at the input, and
        ``backgrounds``, ``read_noise``, ``gain``, ``offset``); it is used when
        ``calibrate="auto"``, else (or without it) :attr:`FALLBACK` is.

        Examples
        --------
        >>> n = NoiseConfig(photons=(50.0,)).resolved({"photons": (9.0,), "gain": 2.0})
        >>> n.photons, n.photons_at.value, n.gain, n.read_noise
        ((50.0,), 'sharp', 2.0, 1.0)
        """
        use = dict(calibrated or {}) if self.calibrate == Calibrate.AUTO else {}
        values: dict[str, Any] = {}
        for name, fallback in self.FALLBACK.items():
            mine = getattr(self, name)
            values[name] = mine if mine is not None else use.get(name, fallback)
        at = self.photons_at
        if at == PhotonsAt.AUTO:
            from_calibration = self.photons is None and "photons" in use
            at = PhotonsAt.INPUT if from_calibration else PhotonsAt.SHARP
        return replace(self, photons_at=at, **values)

    @property
    def explicit(self) -> tuple[str, ...]:
        """Return the names of the fields set (not ``None``) among those a calibration fills."""
        return tuple(n for n in self.FALLBACK if getattr(self, n) is not None)
