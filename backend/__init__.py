"""Control Room's core: hub, node service, agents and their protocol.

Nothing under ``backend`` imports Qt (a test proves it), so every part here runs headless,
on a server, under test, or inside the desktop app's qasync loop alike.
"""

from importlib.metadata import PackageNotFoundError, version

# One version, pyproject.toml's: read from the installed distribution's metadata, which
# the PyInstaller bundle carries too (the spec copies it), so a release is stamped once.
try:
    __version__ = version("controlroom")
except PackageNotFoundError:  # a tree on sys.path that was never installed
    __version__ = "0.0.0+unknown"

#: The version of the hub's HTTP contract. The hub announces it and a console attached
#: from elsewhere refuses a hub that speaks another, rather than half-working. 2: every
#: error is a problem (RFC 9457, ``backend/problems.py``); the paths keep ``/api/v1``.
API_VERSION = 2

__all__ = ["API_VERSION", "__version__"]
