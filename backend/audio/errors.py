"""The audio core's exceptions, all under the backend's one tree (``backend.errors``).

    ControlRoomError
    └── AudioError            anything the audio core refuses or cannot do
        ├── ParamError        bad instance parameters: unknown name, out of range, bad type
        │   └── UnknownModelError   no instance model by that name
        ├── SourceError       a track's source cannot be opened or read (missing file, 3+
        │                     channels, a sample-rate ratio too complex to resample)
        ├── BlockError        a block handed to an instance is not (frames, 2) floating point
        └── InstanceError     an instance failed while processing; names the instance id so
                              the engine can fail the play or render with the reason

``ParamError``, ``SourceError`` and ``BlockError`` are also ``ValueError`` so generic
callers that only know the standard library still catch them. Messages are written for an
operator: they name the field and the allowed range.
"""

from __future__ import annotations

from backend.errors import ControlRoomError


class AudioError(ControlRoomError):
    """Base of every error the audio core raises on purpose."""


class ParamError(AudioError, ValueError):
    """Instance parameters refused; the message names the parameter and why."""


class UnknownModelError(ParamError):
    """No instance model is registered under that name."""


class SourceError(AudioError, ValueError):
    """A track source cannot be opened or read."""


class BlockError(AudioError, ValueError):
    """A block is not a (frames, 2) floating-point array."""


class InstanceError(AudioError):
    """An instance raised while processing a block; ``instance_id`` says which one."""

    def __init__(self, instance_id: str, reason: str) -> None:
        super().__init__(f"instance {instance_id!r} failed: {reason}")
        self.instance_id = instance_id
        self.reason = reason
