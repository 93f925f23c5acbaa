"""CAMs that weight each channel by what happens to the score when the input or the layer is perturbed.

- Score-CAM (Wang et al. 2020): channel k's activation, upsampled and then scaled
  to ``[0, 1]``, masks the input; its weight is the score's increase over the
  blacked-out input, ``f(x ⊙ H_k) − f(0)`` (with the class probability for a
  class target, as in the paper).
- Ablation-CAM (Desai & Ramaswamy 2020): channel k is set to zero in the layer
  and the rest of the network re-run; its weight is the score's drop
  ``(y − y_k) / |y|``. Dividing by ``|y|`` rather than ``y`` keeps the weight's
  meaning when the score is negative: a channel whose removal lowers the score
  counts for the class.

Both evaluate every (sample, channel) pair in batches under the memory budget,
in inference mode, and skip channels that are constant (Score-CAM: the mask is
undefined and the weight is 0) or zero (Ablation-CAM: removing them changes
nothing). For a half-precision model Score-CAM compares the class
probabilities, and weights the channels, in float32: the differences are small
next to bfloat16's rounding. Ablation-CAM re-runs only the layers after the CAM
layer when the rest of the network depends on the input through that layer
alone (checked with autograd on every call), in chunks sized by what a row
costs after that layer, and the whole network otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from saliencelab.core.batching import ActivationMeter, run_chunked
from saliencelab.core.registry import register
from saliencelab.core.targets import Target
from saliencelab.methods.cam.base import CamMethod, grid_axes, upsampled, working_dtype
from saliencelab.methods.cam.layers import as_grid, watching


def _channel_pairs(active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (sample, channel) index pairs where ``active`` ``(n, C)`` is true."""
    pairs = active.nonzero()
    return pairs[:, 0], pairs[:, 1]


def _per_channel(weights: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return (weights.reshape(*weights.shape, *([1] * (grid.ndim - 2))) * grid).sum(1)


@register
class ScoreCam(CamMethod):
    """Score-CAM: channels weighted by the score of the input masked with them (Wang et al. 2020).

    Parameters (beyond the CAM ones): ``softmax`` (default True): for a class
    target, score the class probability, as the paper does; otherwise (and
    for callable targets) the raw score.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.ScoreCam(net, layer="1")(torch.rand(2, 3, 8, 8), target=1).values.shape
    torch.Size([2, 1, 8, 8])
    """

    structured_inputs = False  # it masks the input with the layer's grid

    name = "score_cam"
    description = "Score-CAM: channels weighted by the target score of the input masked with each channel"
    source = "Wang et al. 2020"

    def __init__(self, model, *, softmax: bool = True, **options) -> None:
        super().__init__(model, **options)
        self.softmax = softmax

    def _score(self, output: torch.Tensor, bound: Target) -> torch.Tensor:
        output = output.to(working_dtype(output.dtype))
        if self.softmax and bound.classes is not None and output.ndim == 2:
            return bound.scores(output.softmax(1))
        return bound.scores(output)

    def layer_map(self, x: torch.Tensor, target: Target, layer: nn.Module) -> tuple[torch.Tensor, Target]:
        raw, output = self.activations(x, layer)
        grid = as_grid(raw, self.reshape)
        bound = target.bind(output)
        with torch.inference_mode():
            blank = self._score(self.forward(torch.zeros_like(x), torch.arange(x.shape[0])), bound)
        dims = grid_axes(grid)
        sample, channel = _channel_pairs(grid.amax(dims) > grid.amin(dims))
        weights = torch.zeros(grid.shape[:2], dtype=working_dtype(grid.dtype), device=grid.device)
        size = tuple(x.shape[2:])
        if len(grid.shape[2:]) != len(size):
            raise ValueError("score_cam masks the input with the layer's grid; it needs as many spatial dimensions")

        def run(rows: slice) -> None:
            s, c = sample[rows], channel[rows]
            mask = upsampled(grid[s, c].unsqueeze(1), size, self.upsample or "bilinear")
            flat = mask.flatten(1)
            lo, hi = flat.amin(1), flat.amax(1)
            shape = (-1, *([1] * (mask.ndim - 1)))
            mask = (mask - lo.reshape(shape)) / (hi - lo).reshape(shape)
            with torch.inference_mode():
                scores = self._score(self.forward(x[s] * mask, s), bound.rows(s))
            weights[s, c] = (scores - blank[s]).to(weights.dtype)

        self.run_chunked(x, run, total_rows=sample.numel(), passes=1)
        return _per_channel(weights, grid.to(weights.dtype)), bound


@register
class AblationCam(CamMethod):
    """Ablation-CAM: channels weighted by the score's drop when they are removed (Desai & Ramaswamy 2020).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> sl.AblationCam(net, layer="1")(torch.rand(2, 3, 8, 8), target=1).values.shape
    torch.Size([2, 1, 8, 8])
    """

    name = "ablation_cam"
    description = "Ablation-CAM: channels weighted by the relative drop of the score when each is set to zero"
    source = "Desai & Ramaswamy 2020"

    def layer_map(self, x: torch.Tensor, target: Target, layer: nn.Module) -> tuple[torch.Tensor, Target]:
        raw, output = self.activations(x, layer)
        raw = raw.clone()  # a normal tensor: the ablation of token layouts runs through autograd
        grid = as_grid(raw, self.reshape)
        bound = target.bind(output)
        score = bound.scores(output).to(grid.dtype)
        sample, channel = _channel_pairs(grid.flatten(2).abs().amax(2) > 0)
        drops = torch.zeros(grid.shape[:2], dtype=grid.dtype, device=grid.device)
        tail_bytes = self._tail_row_bytes(x[:1], raw, layer)

        def run(rows: slice) -> None:
            s, c = sample[rows], channel[rows]
            ablated = self._ablated(raw[s], c)
            scores = self._tail_scores(x, s, ablated, bound.rows(s), layer, tail_bytes is not None)
            drops[s, c] = score[s] - scores.to(drops.dtype)

        if tail_bytes is None:
            self.run_chunked(x, run, total_rows=sample.numel(), passes=1)
        else:  # chunks sized by what a row costs after the layer: one pass of the layers before it per chunk
            run_chunked(sample.numel(), run, self.memory_budget, measure=lambda: tail_bytes, passes=1)
        scale = torch.where(score != 0, score.abs(), 1).unsqueeze(1)
        return _per_channel(drops / scale, grid), bound

    def _ablated(self, raw: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
        """Rows of the layer output with grid channel ``channel[r]`` of row r set to zero."""
        rows = torch.arange(raw.shape[0], device=raw.device)
        if raw.ndim >= 4 and self.reshape is None:
            ablated = raw.clone()
            ablated[rows, channel] = 0
            return ablated
        with torch.enable_grad():  # map the grid channel back to its place in the layer output
            leaf = raw.detach().requires_grad_(True)
            grid = as_grid(leaf, self.reshape)
            selected = torch.zeros_like(grid)
            selected[rows, channel] = grid[rows, channel].detach()
            (back,) = torch.autograd.grad(grid, leaf, selected)
        return raw - back

    def _tail_row_bytes(self, probe: torch.Tensor, raw: torch.Tensor, layer: nn.Module) -> int | None:
        """What one ablated row costs when only the layers after ``layer`` re-run, or None when they cannot.

        They can when the model's output depends on its input only through
        ``layer``'s output (checked with autograd) and a one-row input with more
        rows of activations gives one output per activation row. The cost is the
        row's ablated activation plus what the rest of the network allocates for
        it: the difference between runs with two rows and with one.
        """
        if getattr(self.model, "needs_rows", False):  # forward arguments per sample: every row runs whole
            return None
        leaf = probe.detach().clone().requires_grad_(True)
        with torch.enable_grad(), watching(layer, replace=lambda out: out.detach()):
            output = self.model(leaf)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            (grad,) = torch.autograd.grad(output.sum(), leaf, allow_unused=True)
            if grad is not None:
                return None

        def allocated(rows: int) -> int | None:
            activations = raw[:1].expand(rows, *raw.shape[1:]).clone()
            with ActivationMeter() as meter, torch.inference_mode(), watching(layer, replace=lambda _out: activations):
                out = self.model(probe)
            return meter.bytes if isinstance(out, torch.Tensor) and out.ndim > 0 and out.shape[0] == rows else None

        try:
            one, two = allocated(1), allocated(2)
        except RuntimeError:  # the model reads its batch size off the input, say
            return None
        if one is None or two is None:
            return None
        return max(0, two - one) + 2 * raw[0].numel() * raw.element_size()

    def _tail_scores(
        self, x: torch.Tensor, sample: torch.Tensor, ablated: torch.Tensor, bound: Target, layer: nn.Module, tail: bool
    ) -> torch.Tensor:
        """The scores with the layer's output replaced by ``ablated``.

        With ``tail``, one input row feeds the layers before it; if the model
        then does not give one output per ablated row, the rows are re-run
        through the whole network.
        """

        def replaced(rows: torch.Tensor, forward) -> torch.Tensor:  # a copy: the model may change it in place
            with torch.inference_mode(), watching(layer, replace=lambda _out: ablated.clone()):
                return forward(rows)

        if tail:
            try:
                output = replaced(x[sample[:1]], self.model)
                if isinstance(output, torch.Tensor) and output.ndim > 0 and output.shape[0] == ablated.shape[0]:
                    return bound.scores(output)
            except RuntimeError:
                pass
        return bound.scores(replaced(x[sample], lambda rows: self.forward(rows, sample)))
