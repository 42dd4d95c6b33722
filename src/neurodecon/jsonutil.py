"""JSON helpers shared by the CLI, model directories and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["json_default"]


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` hook: numpy scalars and arrays, paths."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
