"""Control Room's core: hub, node service, agents and their protocol.

Nothing under ``backend`` imports Qt (a test proves it), so every part here runs headless,
on a server, under test, or inside the desktop app's qasync loop alike.
"""

__version__ = "0.1.0"
