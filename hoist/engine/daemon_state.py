"""The engine: every service the API exposes, built once from a data root."""
from __future__ import annotations

from dataclasses import dataclass

from .archives import ArchiveService
from .containers import ContainerService
from .images import ImageService
from .store import ImageStore


@dataclass(frozen=True)
class Engine:
    store: ImageStore
    images: ImageService
    archives: ArchiveService
    containers: ContainerService

    @staticmethod
    def open(data_root: str, snapshotter: str | None = None,
             max_layer_size: int | None = None) -> "Engine":
        store = ImageStore(data_root, snapshotter) if max_layer_size is None else \
            ImageStore(data_root, snapshotter, max_layer_size)
        images = ImageService(store)
        containers = ContainerService(store, images)
        containers.restore()  # live restore: re-watch running containers
        return Engine(store, images, ArchiveService(images), containers)
