"""What this console's token lets it do, and the one way the views act on it.

The hub says which kind of token a console attached with (``access`` in ``GET
/api/v1/hub``): an **operator** token may do everything; a **viewer** token (a wall
display, a producer's laptop) may read and stream but every state-changing call gets 403;
a **node** token is a linked node's, never meant for a person, and this console offers it
nothing that changes state either. Offering a button that can only fail is worse than
greying it out with the reason, so each view marks its state-changing controls once,
with :meth:`Access.guard`, and the decision lives here rather than in every view:

- on an operator console, :meth:`Access.guard` does nothing, and the views enable their
  controls exactly as before (from the task's ``commands``, the selection, ...);
- on a read-only console it disables them for the window's life, whatever a view's
  refresh later asks (an event filter turns every re-enable back), and puts the reason
  first in their tooltips, so a person learns why without reading code or docs.

A token's kind cannot change under an open window: switching hubs or tokens opens a new
window (``File ▸ Connect to Hub…``), so deciding once per widget is enough. Controls built
per task (the instance parameters) ask :meth:`Access.allows` when they are built.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

#: The token kind that may change state; every other kind is read-only here.
OPERATOR = "operator"
#: The read-only indicator's colour: an amber dark enough to read as text, a notice
#: rather than an error (nothing is wrong; the console is doing what its token allows).
READ_ONLY_COLOUR = "#9a6700"


@dataclass(frozen=True)
class Access:
    """The kind of token this console attached with (``operator``, ``viewer``, ``node``)."""

    kind: str = OPERATOR

    @property
    def may_change(self) -> bool:
        """True when the hub takes this console's state-changing calls."""
        return self.kind == OPERATOR

    @property
    def read_only(self) -> bool:
        return not self.may_change

    @property
    def reason(self) -> str:
        """Why a control is greyed out, and what would make it work (its tooltip)."""
        return (f"Read-only: this console's token is a {self.kind} token; attach with an "
                "operator token to change anything")

    @property
    def label(self) -> str:
        """The always-visible indicator: ``read-only (viewer token)``; "" for an operator."""
        return f"read-only ({self.kind} token)" if self.read_only else ""

    def allows(self, condition: bool = True) -> bool:
        """``condition``, unless this console may not change state at all."""
        return condition and self.may_change

    def guard(self, *widgets: QWidget) -> None:
        """Mark controls that change state on the hub (or need an enrollment, which does).

        On a read-only console each one is disabled for good, with :attr:`reason` first in
        its tooltip (what it would do stays after it); on an operator console, nothing.
        """
        if self.may_change:
            return
        for widget in widgets:
            tip = widget.toolTip()
            widget.setToolTip(f"{self.reason}.\n\n{tip}" if tip else self.reason)
            widget.installEventFilter(_KeepDisabled(widget))
            widget.setEnabled(False)


class _KeepDisabled(QObject):
    """Turns a guarded control's every re-enable back, so a view's refresh (a task turning
    ready, a spec becoming valid) cannot offer it again. Owned by the control it watches."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.EnabledChange and isinstance(watched, QWidget)
                and watched.isEnabled()):
            watched.setEnabled(False)
        return False
