"""The method tables of the classical package, in one place.

Every other module (the engine, the filters, the ``auto`` stopping rule, the report) reads the
method names and their properties from here; see ``docs/classical.md`` for what each method does.
"""

from __future__ import annotations

__all__ = [
    "METHODS",
    "DIRECT_METHODS",
    "ITERATIVE_METHODS",
    "NON_NEGATIVE",
    "POISSON_METHODS",
    "DEFAULT_REGULARIZATION",
]

#: Every method, closed-form filters first.
METHODS = (
    "nif",
    "wiener",
    "tikhonov",
    "rif",
    "landweber",
    "landweber+",
    "rl",
    "rltv",
    "tm",
    "ictm",
    "rl-accel",
)
#: Closed-form filters: one pass, no iteration count.
DIRECT_METHODS = ("nif", "wiener", "tikhonov", "rif")
#: Methods that take an iteration count (or ``"auto"``).
ITERATIVE_METHODS = tuple(m for m in METHODS if m not in DIRECT_METHODS)
#: Methods whose result is guaranteed ≥ 0.
NON_NEGATIVE = ("landweber+", "rl", "rltv", "ictm", "rl-accel")
#: Methods that model Poisson data (negative data are clipped to 0 for them).
POISSON_METHODS = ("rl", "rltv", "rl-accel")
#: Default ``regularization`` of the methods that take one (the others ignore it). ``None``:
#: estimated from the data's noise (tikhonov, rif; see ``_direct.estimated_regularization``).
DEFAULT_REGULARIZATION: dict[str, float | None] = {
    "nif": 1e-3,
    "wiener": 1.0,
    "tikhonov": None,
    "rif": None,
    "rltv": 2e-3,
    "tm": 1e-4,
    "ictm": 1e-4,
}
