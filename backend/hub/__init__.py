"""The hub: component registry, config store and merge, health checks, enrollments, events."""

from backend.hub.api import router
from backend.hub.component import Component
from backend.hub.health import Health, HealthCheck, HealthSettings
from backend.hub.merge import deep_merge
from backend.hub.registry import Registry
from backend.hub.service import Hub, HubSettings

__all__ = [
    "Component",
    "Health",
    "HealthCheck",
    "HealthSettings",
    "Hub",
    "HubSettings",
    "Registry",
    "deep_merge",
    "router",
]
