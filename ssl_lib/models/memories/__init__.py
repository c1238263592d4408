"""Memories, one file each as in the seed (memory banks of sample features). Importing this package
registers them in MEMORIES."""
from .odc_memory import ODCMemory
from .simple_memory import SimpleMemory

__all__ = ["ODCMemory", "SimpleMemory"]
