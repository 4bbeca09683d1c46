"""The composition root: command line, modes, loops, logging and paths.

Only :mod:`app.desktop` imports Qt, and only when the desktop mode runs; the headless and
agent modes never load it.
"""
