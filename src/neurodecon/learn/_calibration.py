"""Training noise from the microscope's own stacks: the bead stack and ``--sample`` stacks.

The bead stack comes from the same microscope and camera as the data the model is for, so
:func:`neurodecon.metrics.calibrate_noise` on it gives the camera (offset, gain, read noise) and
its beads' photons; a sample stack, when given, the photon levels of real structures and its
background light. :func:`calibrate_training_noise` turns these into the training noise (the
``calibrated`` values of :meth:`NoiseConfig.resolved <neurodecon.learn.NoiseConfig.resolved>`):

* gain: from the calibration whose gain is best determined (smallest relative standard error);
* offset and read noise: from the darkest stack (the bead slide, usually): its dark level in
  counts and the noise there;
* backgrounds: 0, and each sample's dark level above that offset, in photons (its background
  light);
* photons, counted at the input's brightest structures: with samples, from half the dimmest
  sample's level to twice the brightest's (:data:`SAMPLE_PHOTON_SPREAD`), in steps of at most
  ×2; from beads alone, from the read-noise floor (``read_noise_e²`` photons, where shot noise
  and read noise are equal) to twice the beads' median peak (:data:`BEAD_PEAK_FACTOR`), with a
  warning to pass ``--sample``: a bead's brightness says little about a sample's (on the
  simulated microscopes of ``benchmarks/microscopes.py`` the beads peak at 250–1000 photons, the
  thin filaments of a sample at 10–20); at most :data:`MAX_PHOTON_LEVELS` levels, geometric.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import user_error

__all__ = [
    "TrainingNoise",
    "calibrate_training_noise",
    "read_counts",
    "MAX_PHOTON_LEVELS",
    "BEAD_PEAK_FACTOR",
    "SAMPLE_PHOTON_SPREAD",
]

log = logging.getLogger("neurodecon")

#: Without a sample: the highest photon level is the beads' median peak times this.
BEAD_PEAK_FACTOR = 2.0
#: With samples: the photon levels reach this factor below the dimmest and above the brightest.
SAMPLE_PHOTON_SPREAD = 2.0
#: At most this many photon levels (the physics-aware variant computes RL_K for each).
MAX_PHOTON_LEVELS = 5
#: Smallest photon level trained on.
MIN_PHOTONS = 1.0


@dataclass(frozen=True)
class TrainingNoise:
    """Calibrated training noise and where it came from.

    Attributes
    ----------
    photons : tuple of float
        Photon levels at the input's brightest structures.
    backgrounds : tuple of float
        Background light, photons per voxel.
    read_noise, gain, offset : float
        Read noise σ (counts), counts per photo-electron, dark level (counts).
    record : dict
        The calibrations (``NoiseCalibration.to_dict()`` with their source) and the rules: the
        ``noise.calibration`` entry of ``config.json``.
    """

    photons: tuple[float, ...]
    backgrounds: tuple[float, ...]
    read_noise: float
    gain: float
    offset: float
    record: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """Return the calibrated values as :meth:`NoiseConfig.resolved` takes them."""
        return {
            "photons": self.photons,
            "backgrounds": self.backgrounds,
            "read_noise": self.read_noise,
            "gain": self.gain,
            "offset": self.offset,
        }


def read_counts(source: Any, what: str, channel: int | None = None) -> tuple[np.ndarray, str]:
    """Return one ``(Z, Y, X)`` stack in the camera's counts and its name (file or "array").

    A file written by NeuroDecon with a recorded scaling is mapped back to its original values;
    ``channel`` picks a channel of a multi-channel file.
    """
    from ..io import as_image, source_of

    img = as_image(source, what=f"the {what}")
    data = np.asarray(img.data)
    if channel is not None and "C" in img.axes and data.ndim == len(img.axes):
        data = np.take(data, int(channel), axis=img.axes.index("C"))
    while data.ndim > 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise user_error(
            f"the {what} must be one 3D stack (Z, Y, X) for the noise calibration; got shape "
            f"{data.shape}",
            path=source_of(source),
            fix="pick one channel/time point, e.g. with `neurodecon convert`",
        )
    vol = data.astype(np.float32)
    scaling = img.metadata.get("scaling")
    if isinstance(scaling, dict) and "scale" in scaling:
        vol = vol * np.float32(scaling["scale"]) + np.float32(scaling.get("offset", 0.0))
    return vol, source_of(source) or "array"


def calibrate_training_noise(
    *,
    beads: Any = None,
    samples: Sequence[Any] = (),
    channel: int | None = None,
) -> TrainingNoise | None:
    """Calibrate the training noise on a bead stack and/or sample stacks (module docstring).

    Parameters
    ----------
    beads : path, Image or array, optional
        The bead stack (``channel`` picks one of a multi-channel file).
    samples : sequence of path, Image or array
        Stacks of the samples the model is for, from the same camera.
    channel : int, optional
        Channel of a multi-channel bead stack.

    Returns
    -------
    TrainingNoise or None
        None when there is nothing to calibrate.
    """
    from ..metrics import calibrate_noise

    cals = []
    if beads is not None:
        vol, name = read_counts(beads, "bead stack", channel)
        cals.append(("beads", calibrate_noise(vol, source=name)))
    for s in samples:
        vol, name = read_counts(s, "sample")
        cals.append(("sample", calibrate_noise(vol, source=name)))
    if not cals:
        return None
    for kind, cal in cals:
        log.info(f"noise calibration of the {kind} {cal.source}: {cal.summary()}")
        for note in cal.notes:
            log.warning(f"noise calibration of {cal.source}: {note}")
    return _training_noise(cals)


def _training_noise(cals: list[tuple[str, Any]]) -> TrainingNoise:
    gains = [(c.gain_se / c.gain, c) for _, c in cals if math.isfinite(c.gain) and c.gain > 0]
    if not gains:
        raise user_error(
            "the noise calibration found no gain: the stacks are too dim or show no structure "
            f"({', '.join(str(c.source) for _, c in cals)})",
            fix="pass a brighter --sample stack, or --calibrate off with --gain, --photons, "
            "--backgrounds and --read-noise",
        )
    camera = min(gains, key=lambda t: t[0])[1]
    gain = float(camera.gain)
    dark = min((c for _, c in cals), key=lambda c: c.offset)
    offset, read_noise = float(dark.offset), float(dark.read_noise)
    sample_cals = [c for kind, c in cals if kind == "sample"]
    light = {round(max(c.offset - offset, 0.0) / gain, 2) for c in sample_cals}
    backgrounds = sorted({0.0} | light)
    if sample_cals:
        levels = [max(c.signal / gain, MIN_PHOTONS) for c in sample_cals]
        photons = _span(min(levels) / SAMPLE_PHOTON_SPREAD, max(levels) * SAMPLE_PHOTON_SPREAD)
        rule = (
            f"photons: from the samples' brightest structures ({_fmt(levels)} photons) /"
            f"{SAMPLE_PHOTON_SPREAD:g} to ×{SAMPLE_PHOTON_SPREAD:g}, steps ≤ ×2"
        )
    else:
        bead = next(c for kind, c in cals if kind == "beads")
        peak = bead.median_peak_photons if bead.peaks else bead.signal / gain
        floor = max((read_noise / gain) ** 2, MIN_PHOTONS)
        photons = _span(floor, max(BEAD_PEAK_FACTOR * peak, 2 * floor))
        rule = (
            f"photons: from the read-noise floor ({floor:.3g} photons) to {BEAD_PEAK_FACTOR:g} × "
            f"the beads' median peak ({peak:.4g} photons); no --sample given"
        )
        log.warning(
            f"training photons {_fmt(photons)} span the read-noise floor to the beads' peaks "
            f"({peak:.4g} photons); pass --sample STACK (repeatable) to measure your samples' "
            "levels"
        )
    record = {
        "calibrations": [{"kind": kind, **c.to_dict()} for kind, c in cals],
        "rules": [
            f"gain: from {camera.source} (its standard error is the smallest)",
            f"offset and read noise: from {dark.source} (the darkest stack)",
            "backgrounds: 0 and each sample's dark level above the offset, in photons",
            rule,
        ],
    }
    noise = TrainingNoise(
        tuple(round(p, 3) for p in photons),
        tuple(float(b) for b in backgrounds),
        round(read_noise, 4),
        round(gain, 5),
        round(offset, 3),
        record,
    )
    log.info(
        f"training noise from the calibration: offset {noise.offset:g} counts, gain "
        f"{noise.gain:g} counts/e⁻, read noise {noise.read_noise:g} counts, backgrounds "
        f"{_fmt(noise.backgrounds)} photons, photons {_fmt(noise.photons)} at the input's "
        "brightest structures"
    )
    return noise


def _span(lo: float, hi: float) -> tuple[float, ...]:
    """Geometric levels from ``lo`` to ``hi``, ×2 apart or closer, at most MAX_PHOTON_LEVELS."""
    if not hi > lo:
        return (float(lo),)
    n = min(math.ceil(math.log2(hi / lo) - 1e-9) + 1, MAX_PHOTON_LEVELS)
    return tuple(float(v) for v in np.geomspace(lo, hi, max(n, 2)))


def _fmt(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.4g}" for v in values)
