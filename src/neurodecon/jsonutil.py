"""JSON helpers shared by the CLI, model directories and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["json_default"]


def json_default(o: Any) -> Any:
    """Convert what :mod:`json` cannot: numpy scalars and arrays, paths (``default=`` hook).

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> from neurodecon.jsonutil import json_default
    >>> json.dumps({"gain": np.float32(1.5), "shape": np.array([2, 3])}, default=json_default)
    '{"gain": 1.5, "shape": [2, 3]}'
    """
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
