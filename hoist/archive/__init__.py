"""Layer archives: safe extraction, deterministic creation, streaming (de)compression.

Typical use::

    with open_decompressed(blob, limit=MAX) as tar:
        extract_layer(tar, dest, whiteouts="overlay")

    with compressor("gzip", sink) as gz:
        write_tar_from_dir(upperdir, gz)
"""
from __future__ import annotations

from .compression import Compressor, compressor, detect, open_decompressed
from .create import write_tar_from_dir
from .extract import ExtractStats, extract_layer, open_root, safe_remove_tree, split_name
from .tarstream import TarEntry, TarReader, TarWriter, write_tar_entries

__all__ = [
    "Compressor",
    "ExtractStats",
    "TarEntry",
    "TarReader",
    "TarWriter",
    "compressor",
    "detect",
    "extract_layer",
    "open_decompressed",
    "open_root",
    "safe_remove_tree",
    "split_name",
    "write_tar_entries",
    "write_tar_from_dir",
]
