"""Audio tasks on the hub: the state fold, the service that drives agents, the routes."""

from backend.hub.tasks.state import Conflict, Render, RenderState, Task, TaskState, apply, require

__all__ = ["Conflict", "Render", "RenderState", "Task", "TaskState", "apply", "require"]
