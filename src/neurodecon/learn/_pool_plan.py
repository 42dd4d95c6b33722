"""How many noisy realisations of each pool volume the physics input gets, within a time budget.

Running RL_K on every realisation of every pool volume can take longer than the whole training
budget on 2 CPU cores; :class:`RealisationPlan` times the first run and, from it, gives each
volume fewer realisations (the photon levels taken in turn across volumes) so the pool fits.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

log = logging.getLogger("neurodecon")

__all__ = ["RealisationPlan"]


class RealisationPlan:
    """How many noisy realisations (and RL_K runs) each pool volume gets, within a time budget."""

    def __init__(self, levels: list[int], n_volumes: int, budget_s: float | None) -> None:
        self.levels, self.n_volumes, self.budget_s = levels, n_volumes, budget_s
        self.per_volume = len(levels)
        self.seconds: float | None = None

    def levels_of(self, volume: int) -> list[int]:
        """Return the photon-level index of each realisation of ``volume``."""
        if self.per_volume == len(self.levels):
            return self.levels
        n_levels = max(self.levels) + 1
        start = volume * self.per_volume
        return [(start + j) % n_levels for j in range(self.per_volume)]

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Time the first RL_K run and, from it, fit the realisations into the budget."""
        t0 = time.perf_counter()
        yield
        if self.seconds is not None:
            return
        self.seconds = time.perf_counter() - t0
        if self.budget_s is None:
            return
        total = self.seconds * self.n_volumes * len(self.levels)
        if total <= self.budget_s:
            return
        fits = int(self.budget_s / (self.seconds * self.n_volumes))
        self.per_volume = max(1, min(len(self.levels), fits))
        log.info(
            "physics input: RL_K takes %.1f s per volume; %d noisy realisation(s) per volume "
            "instead of %d, to build the pool in about %.0f s of the time limit",
            self.seconds,
            self.per_volume,
            len(self.levels),
            self.budget_s,
        )
