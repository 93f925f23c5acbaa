"""Drawing attributions with matplotlib."""

from saliencelab.viz.grid import grid, to_map

__all__ = ["grid", "to_map"]
