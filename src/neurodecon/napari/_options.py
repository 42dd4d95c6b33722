"""Parsing of the widgets' text fields into the API's option values (no Qt imports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import user_error

__all__ = ["iterations_value", "optional_float", "auto_or_float", "json_options", "chosen_path"]


def iterations_value(n: int) -> int | str:
    """Return ``"auto"`` for 0 (the package's stopping rule), else the count.

    Examples
    --------
    >>> iterations_value(0), iterations_value(20)
    ('auto', 20)
    """
    return "auto" if int(n) <= 0 else int(n)


def optional_float(text: str, what: str) -> float | None:
    """Return ``None`` for an empty field (the method's default), else the number.

    Examples
    --------
    >>> optional_float("", "regularization"), optional_float("1e-3", "regularization")
    (None, 0.001)
    """
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise user_error(
            f"{what} {text!r} is not a number", fix="enter a number or leave it empty"
        ) from None


def auto_or_float(text: str, what: str) -> float | str:
    """Return ``"auto"`` for ``auto`` or an empty field, else the number.

    Examples
    --------
    >>> auto_or_float("auto", "background"), auto_or_float("100", "background")
    ('auto', 100.0)
    """
    text = text.strip().lower()
    if text in ("", "auto"):
        return "auto"
    value = optional_float(text, what)
    assert value is not None
    return value


def json_options(text: str, what: str) -> dict[str, Any]:
    """Parse a JSON object of extra options (``{"steps": 200}``); empty → ``{}``.

    Examples
    --------
    >>> json_options('{"steps": 4}', "options")
    {'steps': 4}
    """
    text = text.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise user_error(
            f"{what}: not valid JSON ({exc.msg} at character {exc.pos})",
            fix='write a JSON object, e.g. {"steps": 200}',
        ) from None
    if not isinstance(value, dict):
        raise user_error(f"{what}: expected a JSON object", fix='e.g. {"steps": 200}')
    return value


def chosen_path(value: Any) -> Path | None:
    """Return a file field's path, or None when nothing was chosen (empty, or magicgui's ``.``).

    Examples
    --------
    >>> chosen_path(""), chosen_path("."), chosen_path(" out/model ")
    (None, None, PosixPath('out/model'))
    """
    text = str(value or "").strip()
    return None if text in ("", ".") else Path(text)
