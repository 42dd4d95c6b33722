"""One progress mechanism for all long work.

Long-running functions accept ``progress: ProgressFn | None``. They call it as
``progress(done, total, message)``; if it returns ``False`` the work is cancelled with
:class:`Cancelled`. The CLI passes :func:`console_progress`: a rich progress bar on a terminal,
and plain lines every ~15 s (:class:`TextProgress`) when stderr is a file or a pipe (batch jobs,
clusters, ``2> log``); ``--quiet`` turns both off. Python code can pass a :class:`TextProgress`
for the same lines, tests a list-appending function, a GUI a worker signal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TextIO

__all__ = [
    "Cancelled",
    "ProgressFn",
    "TextProgress",
    "console_options",
    "console_progress",
    "console_quiet",
    "report",
]

ProgressFn = Callable[[int, int, str], "bool | None"]

#: Seconds between two plain progress lines (``NEURODECON_PROGRESS_INTERVAL`` overrides it).
DEFAULT_INTERVAL_S = 15.0


class Cancelled(RuntimeError):
    """Raised inside long work when the progress callback asks to stop."""


def report(progress: ProgressFn | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if given; raise :class:`Cancelled` when it returns ``False``."""
    if progress is None:
        return
    if progress(done, total, message) is False:
        raise Cancelled(message or "cancelled")


def _duration(seconds: float) -> str:
    """Return ``seconds`` as ``42 s``, ``3 min 05 s`` or ``2 h 03 min``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class TextProgress:
    """A :data:`ProgressFn` that prints a plain line every ``interval_s`` seconds.

    Each line names the step, the percentage, the count, the elapsed time and an ETA, e.g.
    ``[    30 s] Deconvolving (rl): 40 % (120/300, rl), ETA 45 s``. The first line comes after
    ``interval_s``; short work prints nothing. The ETA extrapolates the rate since the total
    last changed (a new phase, such as the cross-validation of ``iterations="auto"``).

    Parameters
    ----------
    description : str
        What is running ("Deconvolving (rl)").
    interval_s : float, optional
        Seconds between lines; default ``NEURODECON_PROGRESS_INTERVAL`` or 15.
    stream : file, optional
        Where the lines go (default: ``sys.stderr`` at the time of the call).
    clock : callable
        Monotonic seconds (replaceable in tests).

    Examples
    --------
    >>> import io
    >>> out, now = io.StringIO(), [0.0]
    >>> bar = TextProgress("Deconvolving", interval_s=10, stream=out, clock=lambda: now[0])
    >>> for k in range(1, 5):
    ...     now[0] = 6.0 * k
    ...     bar(k, 4, "rl")
    >>> print(out.getvalue().strip())
    [    12 s] Deconvolving: 50 % (2/4, rl), ETA 12 s
    [    24 s] Deconvolving: 100 % (4/4, rl), done
    """

    def __init__(
        self,
        description: str,
        *,
        interval_s: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.description = description
        self.interval_s = _interval() if interval_s is None else float(interval_s)
        self.stream = stream
        self.clock = clock
        self.t0 = self.last = self.phase_t0 = clock()
        self.total: int | None = None
        self.phase_done = 0
        self.lines = 0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        """Note ``done`` of ``total``; print a line when ``interval_s`` has passed."""
        now = self.clock()
        if total != self.total:  # a new phase (the first starts at 0 when this was made)
            if self.total is not None:
                self.phase_t0, self.phase_done = now, done
            self.total = total
        if now - self.last >= self.interval_s:
            self.last = now
            self.lines += 1
            print(self.line(done, total, message, now), file=self.stream or sys.stderr, flush=True)

    def line(self, done: int, total: int, message: str, now: float) -> str:
        """Return the progress line for ``done`` of ``total`` at time ``now``."""
        head = f"[{_duration(now - self.t0):>8}] {self.description}"
        if total <= 0:
            return f"{head}: {done} done" + (f", {message}" if message else "")
        pct = 100.0 * min(done, total) / total
        count = f"{done}/{total}" + (f", {message}" if message else "")
        if done >= total:
            eta = "done"
        elif done > self.phase_done:
            rate = (now - self.phase_t0) / (done - self.phase_done)
            eta = f"ETA {_duration(rate * (total - done))}"
        else:
            eta = "ETA unknown"
        shown = f"{pct:.1f}" if 0 < pct < 10 else f"{pct:.0f}"
        return f"{head}: {shown} % ({count}), {eta}"


@dataclass(frozen=True)
class _ConsoleOptions:
    quiet: bool = False
    interval_s: float | None = None


_OPTIONS: ContextVar[_ConsoleOptions | None] = ContextVar("neurodecon_console", default=None)


def _options() -> _ConsoleOptions:
    return _OPTIONS.get() or _ConsoleOptions()


def _interval() -> float:
    given = _options().interval_s
    if given is not None:
        return given
    try:
        return float(os.environ.get("NEURODECON_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S


@contextlib.contextmanager
def console_options(*, quiet: bool = False, interval_s: float | None = None) -> Iterator[None]:
    """Set how :func:`console_progress` reports inside the block (the CLI's ``--quiet``).

    Parameters
    ----------
    quiet : bool
        No progress bar and no progress lines.
    interval_s : float, optional
        Seconds between plain progress lines (default ``NEURODECON_PROGRESS_INTERVAL`` or 15).
    """
    token = _OPTIONS.set(_ConsoleOptions(quiet=quiet, interval_s=interval_s))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def console_quiet() -> bool:
    """Tell whether progress output is switched off (``--quiet``)."""
    return _options().quiet


def _silent(done: int, total: int, message: str = "") -> None:
    return None


@contextlib.contextmanager
def console_progress(description: str, *, enabled: bool | None = None) -> Iterator[ProgressFn]:
    """Yield the :data:`ProgressFn` that shows progress on stderr.

    On a terminal a rich progress bar with ETA; otherwise (a file, a pipe, a batch system's log)
    a :class:`TextProgress` line every ~15 s. ``enabled=True`` forces the bar, ``enabled=False``
    the plain lines; ``--quiet`` (:func:`console_options`) shows nothing.
    """
    if _options().quiet:
        yield _silent
        return
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield TextProgress(description)
        return
    with _rich_bar(description) as update:
        yield update


@contextlib.contextmanager
def _rich_bar(description: str) -> Iterator[ProgressFn]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[msg]}"),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task(description, total=None, msg="")

    def _update(done: int, total: int, message: str = "") -> None:
        bar.update(task, completed=done, total=total, msg=message)

    with bar:
        yield _update
