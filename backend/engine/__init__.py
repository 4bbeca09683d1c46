"""The audio engine agent: plays and renders task specs with the audio core."""

from backend.engine.engine import Engine
from backend.engine.inserts import InsertRouter, RemoteInstance

__all__ = ["Engine", "InsertRouter", "RemoteInstance"]
