"""Containers: records, lifecycle, per-container files and the interim shim."""
from .service import ContainerService, RUNTIMES

__all__ = ["ContainerService", "RUNTIMES"]
