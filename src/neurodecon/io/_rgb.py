"""RGB exports of single-channel microscopy data: find the channel that holds the data."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["pick_data_channel"]

log = logging.getLogger("neurodecon")

_NAMES = "RGBA"


def pick_data_channel(
    data: np.ndarray, axes: str, path: Any, meta: dict[str, Any]
) -> tuple[np.ndarray, str]:
    """Reduce RGB(A) data (channel axis ``C``) to the one channel that holds the data.

    Microscope software often exports a single-channel stack with a colour lookup table applied,
    so one of R, G, B carries the values and the others are zero (or constant, like an opaque
    alpha). That channel is kept and recorded in ``meta["channel_picked"]``. Identical channels
    (grey saved as RGB) keep the first. When several channels differ, all are kept as ``C`` and a
    warning says so.
    """
    c = axes.index("C")
    n = data.shape[c]
    moved = np.moveaxis(data, c, 0)
    live = [i for i in range(n) if moved[i].size and moved[i].min() != moved[i].max()]
    name = lambda i: _NAMES[i] if n <= 4 else str(i)  # noqa: E731
    if len(live) > 1 and all(np.array_equal(moved[live[0]], moved[i]) for i in live[1:]):
        reason = f"channels {', '.join(name(i) for i in live)} are identical (grey saved as RGB)"
        live = live[:1]
    else:
        reason = "the other channels are constant"
    if len(live) == 1:
        i = live[0]
        meta["channel_picked"] = {"index": i, "name": name(i), "of": n, "reason": reason}
        log.info(
            f"{path}: RGB image with the data in channel {name(i)} only ({reason}); "
            "using that channel"
        )
        return np.ascontiguousarray(moved[i]), axes.replace("C", "")
    if not live:
        meta["channel_picked"] = {
            "index": 0,
            "name": name(0),
            "of": n,
            "reason": "all channels constant",
        }
        return np.ascontiguousarray(moved[0]), axes.replace("C", "")
    msg = (
        f"{path}: RGB image with data in {len(live)} channels "
        f"({', '.join(name(i) for i in live)}); kept them as {n} channels (axis C)"
    )
    log.warning(msg)
    meta.setdefault("warnings", []).append(msg)
    return data, axes
