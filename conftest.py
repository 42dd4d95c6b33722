"""Root conftest: without the ``napari`` extra, pytest does not import the plugin's modules.

``--doctest-modules`` imports every module under ``src/neurodecon``; the plugin's need napari,
magicgui and Qt (``pip install -e ".[napari]"``). The plugin's tests skip with a reason then.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _installed(dist: str) -> bool:
    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


collect_ignore_glob = (
    []
    if all(_installed(d) for d in ("napari", "magicgui", "qtpy"))
    else ["src/neurodecon/napari/*"]
)
