"""One progress mechanism for all long work.

Long-running functions accept ``progress: ProgressFn | None``. They call it as
``progress(done, total, message)``; if it returns ``False`` the work is cancelled with
:class:`Cancelled`. The CLI passes a rich progress bar (:func:`console_progress`), tests can pass
a list-appending function, a GUI can pass a worker signal.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

__all__ = ["Cancelled", "ProgressFn", "console_progress", "report"]

ProgressFn = Callable[[int, int, str], "bool | None"]


class Cancelled(RuntimeError):
    """Raised inside long work when the progress callback asks to stop."""


def report(progress: ProgressFn | None, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if given; raise :class:`Cancelled` when it returns ``False``."""
    if progress is None:
        return
    if progress(done, total, message) is False:
        raise Cancelled(message or "cancelled")


@contextlib.contextmanager
def console_progress(description: str, *, enabled: bool | None = None) -> Iterator[ProgressFn]:
    """Draw a rich progress bar with ETA; yield the :data:`ProgressFn` that updates it.

    The bar goes to stderr; when stderr is not a terminal (CI, pipes) it is disabled unless
    ``enabled=True``.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if enabled is None:
        enabled = sys.stderr.isatty()
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[msg]}"),
        console=console,
        disable=not enabled,
        transient=False,
    )
    task = bar.add_task(description, total=None, msg="")

    def _update(done: int, total: int, message: str = "") -> None:
        bar.update(task, completed=done, total=total, msg=message)

    with bar:
        yield _update
