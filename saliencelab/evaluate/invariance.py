"""Input invariance (Kindermans et al. 2017): does an explanation survive a constant input shift?

Shift every input by a constant ``s`` and give the network's first layer the
bias ``b' = b − W·s``: the shifted network ``g`` computes ``g(x + s) = f(x)``
for every ``x``, so it is the same model on shifted data, and an input-invariant
explanation of ``g`` at ``x + s`` equals that of ``f`` at ``x`` (Kindermans et
al. 2017: gradients pass, gradient × input and reference methods with a fixed reference
do not).

A first convolution that zero-pads sees zeros around ``x`` but would see zeros
around ``x + s`` too, where the shifted image's background is ``s``: folding
the bias alone is then wrong at the border (the pitfall of Quantus' input
invariance test, DESIGN.md). :func:`shifted_model` pads with the shift value
instead and convolves without padding, so ``g`` matches ``f`` everywhere.

Example
-------
>>> import torch
>>> f = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
>>> x = torch.rand(2, 1, 5, 5)
>>> g = shifted_model(f, -1.0, example=x)
>>> torch.allclose(g(x - 1.0), f(x), atol=1e-6)
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saliencelab.core.guard import preserved
from saliencelab.core.targets import TargetSpec
from saliencelab.engine import Call, Interception, tensors_in, watching_modules
from saliencelab.evaluate.explainers import as_explainer

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_RESHAPES = frozenset({"flatten", "reshape", "view", "contiguous", "unsqueeze", "squeeze", "clone", "detach"})
"""Operations that only move values: the input may pass through them before the first layer."""


def shifted_model(model: nn.Module, shift: float | torch.Tensor, *, example: torch.Tensor) -> nn.Module:
    """A new model ``g`` with ``g(x + shift) == model(x)``: the shift folded into the first layer's bias.

    The first layer is found by one forward pass on a sample shaped like
    ``example``: the first operation that computes with the input (after at most
    flatten/reshape/view) must run inside an ``nn.Linear`` or ``nn.Conv1d/2d/3d``
    module, and nothing else may use the input. ``model`` itself is untouched;
    ``g`` is a deep copy whose first layer has the bias ``b − W·shift``. A first
    convolution with zero padding is replaced by a :class:`ShiftPaddedConv` that
    pads with the shift value and convolves without padding.

    Parameters
    ----------
    model:
        The network ``f``.
    shift:
        A number, one value per channel (shape ``(C,)``, channel = dimension 1 of
        the input), or a tensor broadcastable to one sample. It must be the same
        at every position the first layer slides over.
    example:
        A batch of inputs of the model (only its shape, dtype and device are used).

    Example
    -------
    >>> import torch
    >>> f = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> x = torch.randn(4, 3)
    >>> g = shifted_model(f, torch.tensor([1.0, -2.0, 0.5]), example=x)
    >>> torch.allclose(g(x + torch.tensor([1.0, -2.0, 0.5])), f(x), atol=1e-6)
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"shifted_model needs a torch.nn.Module whose first layer it can change; got {type(model)}")
    if not isinstance(example, torch.Tensor) or example.ndim < 2 or not example.is_floating_point():
        raise TypeError("example must be a floating-point batch of the model's inputs, shape (N, ...)")
    shifted = copy.deepcopy(model)
    shift_sample = _shift_sample(shift, example)
    name, layer, layer_shift = _first_layer(shifted, shift_sample)
    replacement = _fold(layer, layer_shift)
    if not name:
        return replacement
    parent_name, _, child = name.rpartition(".")
    setattr(shifted.get_submodule(parent_name), child, replacement)
    return shifted


class ShiftPaddedConv(nn.Module):
    """A convolution without padding after an explicit pad with one value per channel.

    ``pad`` is in :func:`torch.nn.functional.pad` order; the border takes
    ``fill[c]`` in channel ``c`` (the shifted image's background), the interior
    the input.

    Example
    -------
    >>> import torch
    >>> layer = ShiftPaddedConv(torch.nn.Conv2d(1, 1, 3, bias=False), [1, 1, 1, 1], torch.tensor([2.0]))
    >>> torch.nn.init.ones_(layer.conv.weight)  # doctest: +ELLIPSIS
    Parameter...
    >>> layer(torch.zeros(1, 1, 2, 2))[0, 0].tolist()
    [[10.0, 10.0], [10.0, 10.0]]
    """

    def __init__(self, conv: nn.Module, pad: list[int], fill: torch.Tensor) -> None:
        super().__init__()
        self.conv = conv
        self.pad = pad
        self.register_buffer("fill", fill.reshape(1, -1, *([1] * (len(pad) // 2))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = torch.zeros((1, 1, *x.shape[2:]), dtype=self.fill.dtype, device=self.fill.device)
        border = F.pad(inside, self.pad, value=1.0)
        return self.conv(F.pad(x, self.pad) + border * self.fill)


def input_invariance(
    model: Any,
    inputs: torch.Tensor,
    *,
    method: str | Callable,
    target: TargetSpec = None,
    shift: float | torch.Tensor,
    method_options: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Per sample, the largest |attribution of f at x − attribution of g at x + shift|, shape (N,).

    ``g = shifted_model(model, shift)`` is the same network on shifted data
    (Kindermans et al. 2017), so an input-invariant method gives 0 (up
    to round-off). The method runs with the same options for both, so a fixed
    reference (e.g. ``baseline="zeros"``) is not shifted along.

    Parameters
    ----------
    model, inputs, target:
        As for :func:`saliencelab.explain`; ``model`` must be an ``nn.Module``
        whose first operation is a linear or convolution layer.
    method:
        A method name or a callable ``(model, inputs, target) -> tensor``.
    method_options:
        The method's options, the same for both models.
    shift:
        A number or one value per channel; see :func:`shifted_model`.

    Example
    -------
    >>> import torch
    >>> with torch.random.fork_rng():  # a fixed network and inputs, whatever ran before
    ...     _ = torch.manual_seed(0)
    ...     f = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    ...     x = torch.rand(5, 3)
    >>> bool(input_invariance(f, x, method="gradient", target=0, shift=-1.0).max() < 1e-6)
    True
    >>> bool(input_invariance(f, x, method="gradient_x_input", target=0, shift=-1.0).max() > 1e-3)
    True
    """
    original, shifted = attribution_pair(model, inputs, as_explainer(method, **(method_options or {})), target, shift)
    return (original - shifted).abs().flatten(1).amax(dim=1)


def attribution_pair(
    model: nn.Module, inputs: torch.Tensor, explain_fn: Callable, target: TargetSpec, shift: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attributions of ``model`` at ``inputs`` and of its shifted model at ``inputs + shift``.

    Example
    -------
    >>> import torch
    >>> f = torch.nn.Linear(2, 1)
    >>> a, b = attribution_pair(f, torch.ones(1, 2), as_explainer("gradient_x_input"), 0, 1.0)
    >>> (b - a).flatten().tolist() == f.weight.flatten().tolist()
    True
    """
    shifted = shifted_model(model, shift, example=inputs)
    moved = inputs + _shift_sample(shift, inputs)
    return explain_fn(model, inputs, target), explain_fn(shifted, moved, target)


def _shift_sample(shift: float | torch.Tensor, example: torch.Tensor) -> torch.Tensor:
    """The shift as one sample ``(1, *example.shape[1:])`` in the example's dtype and device."""
    if isinstance(shift, bool) or not isinstance(shift, (int, float, torch.Tensor)):
        raise TypeError(f"shift must be a number or a tensor; got {type(shift).__name__}")
    shift = torch.as_tensor(shift, dtype=example.dtype, device=example.device)
    if not torch.isfinite(shift).all():
        raise ValueError("shift must be finite")
    sample_shape = example.shape[1:]
    if shift.ndim == 1 and len(sample_shape) > 1:
        if shift.shape[0] != sample_shape[0]:
            raise ValueError(
                f"a per-channel shift needs one value per channel: the inputs have {sample_shape[0]} channels "
                f"(dimension 1 of shape {tuple(example.shape)}), the shift has {shift.shape[0]} values"
            )
        shift = shift.reshape(-1, *([1] * (len(sample_shape) - 1)))
    try:
        return shift.expand(sample_shape).unsqueeze(0)
    except RuntimeError:
        raise ValueError(
            f"shift of shape {tuple(shift.shape)} does not broadcast to one input sample {tuple(sample_shape)}; "
            "give a number, one value per channel, or a tensor of the sample's shape"
        ) from None


class _FirstLayerProbe(Interception):
    """Watches a forward pass: which module's operation first computes with the input, and nothing else uses it.

    The input and its reshapes are what depends on the input; the first layer's
    output is not followed further.
    """

    def __init__(self, active: list[nn.Module]) -> None:
        super().__init__({}, method="input_invariance")
        self.active = active
        self.layer: nn.Module | None = None

    def dispatch(self, call: Call) -> Any:
        result = call.genuine()
        if not tensors_in(result):
            return result
        if self.layer is not None and any(m is self.layer for m in self.active):
            return result  # the first layer's own operations (a pad before its convolution)
        if call.name in _RESHAPES and self.layer is None:
            return result
        owner = self.active[-1] if self.active else None
        if self.layer is None and isinstance(owner, (nn.Linear, *_CONVS)):
            self.layer = owner
            return result
        where = f"inside {type(owner).__name__}" if owner is not None else "outside any module"
        if self.layer is None:
            raise ValueError(
                f"the first operation on the input is '{call.name}' ({where}), not an nn.Linear or nn.Conv1d/2d/3d "
                "layer: a shift can only be folded into the bias of a first linear or convolution layer"
            )
        raise ValueError(
            f"the input is used again by '{call.name}' ({where}) besides the first layer "
            f"{type(self.layer).__name__}: folding the shift into that layer's bias would not shift this use"
        )

    def mark_result(self, call: Call, result: Any) -> None:
        if call.name in _RESHAPES and self.layer is None:
            super().mark_result(call, result)


def _first_layer(model: nn.Module, shift_sample: torch.Tensor) -> tuple[str, nn.Module, torch.Tensor]:
    """Name and module of the first layer, and the shift as that layer receives it."""
    active: list[nn.Module] = []
    calls: dict[int, list[torch.Tensor]] = {}

    def enter(module: nn.Module, args: tuple) -> None:
        active.append(module)
        calls.setdefault(id(module), []).append(args[0] if args and isinstance(args[0], torch.Tensor) else None)

    def leave(module: nn.Module, args: tuple, output: Any) -> None:
        active.pop()

    probe = _FirstLayerProbe(active)
    with preserved(model), torch.no_grad(), watching_modules(before=enter, after=leave), probe:
        model(probe.mark(shift_sample.clone()))
    if probe.layer is None:
        raise ValueError(
            "no nn.Linear or nn.Conv1d/2d/3d layer computes with the input in a forward pass; "
            "input invariance needs a first linear or convolution layer"
        )
    layer_calls = calls[id(probe.layer)]
    if len(layer_calls) > 1:
        raise ValueError(
            f"the first layer ({type(probe.layer).__name__}) is called {len(layer_calls)} times in a forward pass; "
            "folding the shift into its bias would change its other uses too"
        )
    name = next(n for n, m in model.named_modules() if m is probe.layer)
    return name, probe.layer, layer_calls[0]


def _fold(layer: nn.Module, layer_shift: torch.Tensor) -> nn.Module:
    """A copy of ``layer`` with bias ``b − W·s`` (and a pad with the shift for a zero-padded convolution)."""
    folded = copy.deepcopy(layer)
    if isinstance(layer, nn.Linear):
        per_feature = layer_shift.reshape(-1, layer.in_features)
        _check_uniform(per_feature, "every position before the features")
        per_feature = per_feature[0]
        absorbed = layer.weight.detach() @ per_feature
    else:
        per_channel = layer_shift[0].flatten(1)
        _check_uniform(per_channel.T, "every pixel of a channel")
        per_channel = per_channel[:, 0]
        groups = layer.groups
        weight = layer.weight.detach().flatten(2).sum(dim=2)  # (out, in/groups)
        weight = weight.reshape(groups, -1, weight.shape[1])
        absorbed = torch.einsum("goi,gi->go", weight, per_channel.reshape(groups, -1)).flatten()
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(absorbed)
    folded.bias = nn.Parameter(bias - absorbed, requires_grad=layer.weight.requires_grad)
    if isinstance(layer, nn.Linear) or layer.padding_mode != "zeros":
        return folded  # reflect/replicate/circular padding copies pixels, so it shifts along with them
    pad = _padding(layer)
    if not any(pad):
        return folded
    folded.padding = (0,) * len(layer.kernel_size)
    return ShiftPaddedConv(folded, pad, per_channel.detach().clone())


def _check_uniform(rows: torch.Tensor, where: str) -> None:
    if not torch.equal(rows, rows[:1].expand_as(rows)):
        raise ValueError(
            f"the shift reaching the first layer differs across {where}: a bias absorbs only a shift that is "
            "the same at every position the layer slides over (a number or one value per channel)"
        )


def _padding(conv: nn.Module) -> list[int]:
    """The convolution's zero padding in :func:`torch.nn.functional.pad` order (last dimension first)."""
    if conv.padding == "valid":
        return [0] * (2 * len(conv.kernel_size))
    pad: list[int] = []
    for axis in reversed(range(len(conv.kernel_size))):
        if conv.padding == "same":
            total = conv.dilation[axis] * (conv.kernel_size[axis] - 1)
            pad += [total // 2, total - total // 2]
        else:
            pad += [conv.padding[axis]] * 2
    return pad
