"""Containers: records, lifecycle and per-container files; processes run in monitors."""
from .service import ContainerService, RUNTIMES

__all__ = ["ContainerService", "RUNTIMES"]
