"""The audio engine agent: plays and renders task specs with the audio core."""

from backend.engine.engine import Engine, render_processes
from backend.engine.inserts import InsertRouter, RemoteInstance

__all__ = ["Engine", "InsertRouter", "RemoteInstance", "render_processes"]
