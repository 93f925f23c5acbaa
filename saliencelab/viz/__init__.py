"""Drawing attributions with matplotlib: heatmaps, overlays, bars of tabular features, grids, evaluation curves.

Plots accept torch tensors (always channel-first) and numpy arrays (HW, CHW or
HWC, told apart by a channel axis of 1, 3 or 4 entries on one side only); see
:mod:`saliencelab.viz.read` for the layout rule and how images are rescaled for
display, and :mod:`saliencelab.viz.scale` for how a map becomes colours. Nothing
here changes matplotlib's backend: plots saved to a ``path`` are drawn
off-screen, the others in pyplot figures.

Example
-------
>>> import matplotlib.pyplot as plt, torch
>>> from saliencelab import viz
>>> ax = viz.heatmap(torch.zeros(3, 8, 8))  # an all-zero map draws white
>>> ax.images[0].to_rgba(ax.images[0].get_array(), bytes=True)[0, 0].tolist()
[255, 255, 255, 255]
>>> plt.close(ax.figure)
"""

from saliencelab.viz.bars import bars
from saliencelab.viz.curves import curves, randomization_curve
from saliencelab.viz.grid import grid
from saliencelab.viz.heatmap import heatmap, overlay
from saliencelab.viz.scale import to_map

__all__ = ["bars", "curves", "grid", "heatmap", "overlay", "randomization_curve", "to_map"]
