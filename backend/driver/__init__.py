"""The instance driver agent: fixed instances patched into the engine's signal path."""

from backend.driver.driver import Driver

__all__ = ["Driver"]
