"""Open a bioimage.io model package made by NeuroDecon: its attached model directory, unpacked.

A package written by :func:`neurodecon.learn.export_bioimageio` carries the model directory as
attachments (``neurodecon_config.json``, ``neurodecon_weights.pt``, …). Loading it unpacks them
once into a cache folder named by their content hash (``$NEURODECON_CACHE``, else
``$XDG_CACHE_HOME/neurodecon``, else ``~/.cache/neurodecon``), so the model loads exactly as
the directory it was exported from. Reading needs only the standard library.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import user_error

__all__ = [
    "is_bioimageio_package",
    "is_neurodecon_package",
    "unpack_bioimageio",
    "cache_dir",
    "ATTACHMENT_PREFIX",
    "quiet_unclosed_files",
]

#: Prefix of the model directory's files attached to a package (apart from the package's own
#: ``weights.pt`` and ``README.md``).
ATTACHMENT_PREFIX = "neurodecon_"

_DESCRIPTIONS = ("bioimageio.yaml", "rdf.yaml")


@contextlib.contextmanager
def quiet_unclosed_files() -> Iterator[None]:
    """Collect, without ResourceWarnings, the files bioimageio.spec leaves open in a block.

    bioimageio.spec 0.5 opens package files (hashing, validation) without closing them; their
    ResourceWarnings would reach the user (and fail strict test runs) at a random later moment.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


def cache_dir() -> Path:
    """Return the folder NeuroDecon caches unpacked models and downloads in."""
    env = os.environ.get("NEURODECON_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "neurodecon"


def is_bioimageio_package(path: str | Path) -> bool:
    """Tell whether ``path`` is a bioimage.io package: a ``.zip`` or a folder with its YAML."""
    p = Path(path)
    if p.is_dir():
        return any((p / n).is_file() for n in _DESCRIPTIONS)
    return p.is_file() and p.suffix.lower() == ".zip"


def is_neurodecon_package(path: str | Path) -> bool:
    """Tell whether a bioimage.io package carries a NeuroDecon model directory."""
    p = Path(path)
    marker = f"{ATTACHMENT_PREFIX}config.json"
    if p.is_dir():
        return (p / marker).is_file()
    try:
        with zipfile.ZipFile(p) as zf:
            return marker in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _files(path: Path) -> dict[str, bytes]:
    """Return the top-level files ``{name: content}`` of a package folder or ``.zip``."""
    if path.is_dir():
        return {f.name: f.read_bytes() for f in path.iterdir() if f.is_file()}
    try:
        with zipfile.ZipFile(path) as zf:
            return {n: zf.read(n) for n in zf.namelist() if "/" not in n}
    except (zipfile.BadZipFile, OSError) as exc:
        raise user_error(f"not a readable zip file ({exc})", path=path) from exc


def _members(path: Path) -> dict[str, bytes]:
    """Return the package's NeuroDecon attachments ``{name without prefix: content}``."""
    files = _files(path)
    if not any(n in files for n in _DESCRIPTIONS):
        raise user_error(
            "not a bioimage.io model package (no bioimageio.yaml or rdf.yaml inside)",
            path=path,
            fix="pass a model directory or a package written by `neurodecon export`",
        )
    n = len(ATTACHMENT_PREFIX)
    ours = {k[n:]: v for k, v in files.items() if k.startswith(ATTACHMENT_PREFIX)}
    if "config.json" not in ours:
        raise user_error(
            "this bioimage.io package was not made by NeuroDecon (no neurodecon_config.json)",
            path=path,
            fix="deconvolve with it through `neurodecon deconvolve --model PACKAGE` or "
            "neurodecon.learn.predict (they run it with bioimageio.core)",
        )
    return ours


def unpack_bioimageio(path: str | Path) -> Path:
    """Return the model directory carried by a NeuroDecon package (unpacked once, cached)."""
    path = Path(path)
    members = _members(path)
    digest = hashlib.sha256()
    for name in sorted(members):
        digest.update(name.encode() + b"\0" + members[name])
    target = cache_dir() / "models" / digest.hexdigest()[:20]
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        for name, content in members.items():
            (tmp / name).write_bytes(content)
        try:
            tmp.replace(target)
        except OSError:  # another process unpacked it first
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
