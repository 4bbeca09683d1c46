"""Control Room's core: hub, node service, agents and their protocol.

Nothing under ``backend`` imports Qt (a test proves it), so every part here runs headless,
on a server, under test, or inside the desktop app's qasync loop alike.
"""

__version__ = "0.1.0"

#: The major version of the hub's HTTP surface (the ``v1`` in ``/api/v1``). The hub
#: announces it and a console attached from elsewhere refuses a hub that speaks another,
#: rather than half-working.
API_VERSION = 1

__all__ = ["API_VERSION", "__version__"]
