"""Sub-commands of this concept (filled in by its owner)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, psf_sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the main parser (``sub``) and to ``neurodecon psf``."""
