"""The command recorded in every written file, and the temporary files of interrupted writes.

The record names the command as the user typed it, ``neurodecon deconvolve in.tif -o out.tif``
(never the interpreter's or the executable's location, which would expose the folder layout of
the machine whenever a result is shared). The CLI sets it with :func:`recording_command`; files
written from Python record ``Python (script.py)``.

Every output is first written to a hidden sibling ``.NAME.HOST-PID.XXXX.partial…`` and renamed.
A run killed with ``kill -9`` (or a power cut) leaves that sibling behind; the next write to the
same output removes it when its process is gone, or names it in a warning otherwise
(:func:`clean_stale_partials`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import socket
import sys
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

__all__ = ["recording_command", "current_command", "partial_prefix", "clean_stale_partials"]

log = logging.getLogger("neurodecon")

_COMMAND: ContextVar[str | None] = ContextVar("neurodecon_command", default=None)


@contextlib.contextmanager
def recording_command(argv: Sequence[str]) -> Iterator[str]:
    """Record ``neurodecon ARGV...`` as the command of every file written inside the block.

    Examples
    --------
    >>> with recording_command(["info", "my stack.tif"]) as cmd:
    ...     current_command()
    "neurodecon info 'my stack.tif'"
    """
    command = shlex.join(["neurodecon", *map(str, argv)])
    token = _COMMAND.set(command)
    try:
        yield command
    finally:
        _COMMAND.reset(token)


def current_command() -> str:
    """Return the command to record: the CLI's, else ``Python (script name)``."""
    command = _COMMAND.get()
    if command is not None:
        return command
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return f"Python ({script})" if script and script != "-c" else "Python"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname().split(".")[0])[:32] or "host"


def partial_prefix(out: Path) -> str:
    """Return the name prefix of this process's temporary files for ``out``."""
    return f".{out.name}.{_host()}-{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftover: nothing of ours writes this output now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale_partials(out: Path) -> list[Path]:
    """Remove temporary siblings of ``out`` left by killed runs on this machine; warn about others.

    Returns the removed paths.
    """
    pattern = re.compile(
        re.escape(f".{out.name}.") + r"(?:(?P<host>\w+)-(?P<pid>\d+)\.)?.*\.partial"
    )
    removed: list[Path] = []
    try:
        siblings = list(out.parent.iterdir()) if out.parent.is_dir() else []
    except OSError:
        return removed
    for p in siblings:
        m = pattern.match(p.name)
        if m is None:
            continue
        if m.group("pid") and m.group("host") == _host() and not _alive(int(m.group("pid"))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
            log.info(f"{p}: removed a temporary file left by an interrupted earlier run")
        else:
            log.warning(
                f"{p}: a temporary file of another run writing {out.name} (or of one that was "
                "killed); delete it if no other run is writing this output"
            )
    return removed
