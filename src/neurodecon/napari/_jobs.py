"""The widgets' shared machinery: a job in a napari thread worker, with progress and cancel.

A :class:`JobWidget` reads its fields on the GUI thread (:meth:`JobWidget.job`), runs the
public API call in a :func:`napari.qt.threading.create_worker` thread, and passes the package's
progress callback (:mod:`neurodecon.progress`) to it. The callback relays ``(done, total,
message)`` to the GUI through a Qt signal and returns ``False`` once *Cancel* was pressed, which
stops the job with :class:`~neurodecon.progress.Cancelled`. A :class:`~neurodecon.NeuroDeconError`
becomes a napari error notification with its one-line message; any other exception is left to
napari's worker, which shows it as an error notification with its traceback (a bug).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton
from napari.layers import Image as ImageLayer
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from ..errors import NeuroDeconError
from ..progress import Cancelled, ProgressFn

__all__ = ["JobWidget", "Outcome", "layer_choices"]

log = logging.getLogger("neurodecon")


@dataclass
class Outcome:
    """What a job ended with: a value, a user error, or a cancellation."""

    value: Any = None
    error: NeuroDeconError | None = None
    cancelled: bool = False


def _guarded(func: Callable[..., Any], kwargs: dict[str, Any], progress: ProgressFn) -> Outcome:
    """Run ``func(**kwargs, progress=progress)``; return user errors and cancels as an Outcome."""
    try:
        return Outcome(value=func(**kwargs, progress=progress))
    except Cancelled:
        return Outcome(cancelled=True)
    except NeuroDeconError as exc:
        return Outcome(error=exc)


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (a queued Qt signal)."""

    progress = Signal(int, int, str)


def layer_choices(viewer: Any, kind: Any = ImageLayer) -> Callable[[Any], list[tuple[str, Any]]]:
    """Return a magicgui ``choices`` callable: the viewer's layers of type ``kind``."""

    def choices(_widget: Any) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kind)]

    return choices


class JobWidget(Container):
    """Base of the plugin's widgets: fields, *Run*, *Cancel*, a progress bar and a status line.

    Subclasses build their fields, call :meth:`finish_layout`, and implement :meth:`job`
    (returns the API function and its keyword arguments, read on the GUI thread) and
    :meth:`done` (puts the result into the viewer).
    """

    #: shown in notifications ("Deconvolve: cancelled")
    title = "NeuroDecon"

    def __init__(self, viewer: Any) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.worker: Any = None
        self.cancel_requested = False
        self.started = 0.0
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="", label="status")
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self._layer_combos: list[ComboBox] = []
        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)

    def layer_combo(
        self, label: str, *, kind: Any = ImageLayer, optional: bool = False
    ) -> ComboBox:
        """Return a drop-down of the viewer's layers of ``kind``, kept up to date."""
        combo = ComboBox(label=label, choices=layer_choices(self.viewer, kind), nullable=optional)
        self._layer_combos.append(combo)
        return combo

    def _refresh_layers(self, _event: Any = None) -> None:
        for combo in self._layer_combos:
            combo.reset_choices()

    def finish_layout(self) -> None:
        """Append the run/cancel buttons, the progress bar and the status line."""
        self.extend([self.run_button, self.cancel_button, self.progress_bar, self.status])

    # -- to implement ----------------------------------------------------------------------
    def job(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        """Return ``(function, keyword arguments)``; the function takes ``progress=`` too."""
        raise NotImplementedError

    def done(self, value: Any) -> None:
        """Put the job's result into the viewer (GUI thread)."""
        raise NotImplementedError

    def on_progress(self, done: int, total: int, message: str) -> None:
        """Handle one progress report on the GUI thread (a hook for subclasses)."""

    # -- machinery -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a job runs."""
        return self.worker is not None

    def start(self, _value: Any = None) -> Any:
        """Read the fields and start the job in a thread worker; return the worker (or None)."""
        if self.running:
            return None
        try:
            func, kwargs = self.job()
        except NeuroDeconError as exc:
            self.notify_error(exc)
            return None
        self.cancel_requested = False
        worker = create_worker(_guarded, func, kwargs, self._callback, _ignore_errors=True)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.progress_bar.max, self.progress_bar.value = 0, 0  # busy until the first report
        self.status.value = "running…"
        self.started = time.monotonic()
        worker.start()
        return worker

    def cancel(self, _value: Any = None) -> None:
        """Ask the running job to stop at its next progress report."""
        if self.running:
            self.cancel_requested = True
            self.status.value = "cancelling…"

    def _callback(self, done: int, total: int, message: str = "") -> bool:
        """Relay a progress report to the GUI; ``False`` once cancelled (worker thread)."""
        self._relay.progress.emit(int(done), int(total), str(message))
        return not self.cancel_requested

    def _on_progress(self, done: int, total: int, message: str) -> None:
        total = max(int(total), 1)
        self.progress_bar.max = total
        self.progress_bar.value = min(max(int(done), 0), total)
        if not self.cancel_requested:
            self.status.value = message
        self.on_progress(done, total, message)

    def _on_returned(self, outcome: Outcome) -> None:
        if outcome.cancelled:
            self.status.value = "cancelled"
            show_info(f"{self.title}: cancelled")
        elif outcome.error is not None:
            self.status.value = "failed"
            self.notify_error(outcome.error)
        else:
            self.progress_bar.max = max(self.progress_bar.max, 1)
            self.progress_bar.value = self.progress_bar.max
            self.status.value = f"done in {time.monotonic() - self.started:.1f} s"
            self.done(outcome.value)  # may say more in the status line

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False

    def notify_error(self, exc: NeuroDeconError) -> None:
        """Show the package's one-line message as a napari error notification."""
        self.status.value = "failed"
        show_error(str(exc))
