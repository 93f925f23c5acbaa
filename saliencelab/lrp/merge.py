"""Merging batch norms into the layers they normalise: one canonicalising step over the call stream.

An eval-mode batch norm ``y = s·z + t`` applied straight to the output ``z`` of a
dense layer or a convolution is the same function as that layer with weights
``s·w`` and bias ``s·b + t``. LRP's rules are not invariant under this
rewrite (z⁺, αβ and γ see the merged bias; every rule sees different weights),
and merging is what Zennit's canonizers do. :class:`BatchNormMerge` watches the
calls of one forward pass: it registers each layer output, merges the batch
norm that reads it, and refuses a layer output that anything else also reads
(merging would then change what that other consumer sees). The merged
parameters are read when relevance flows back, after the whole forward pass.

A transposed convolution's weight has its output channels on axis 1 (per
group), a convolution's and a dense layer's on axis 0; both are merged.

Example
-------
>>> import torch, torch.nn.functional as F
>>> from saliencelab.engine.intercept import Call
>>> merge = BatchNormMerge("demo")
>>> x, w = torch.randn(2, 3), torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
>>> layer = Call.of(F.linear, (x, w), {}, method="demo")
>>> z = layer.genuine()
>>> merged = MergedLayer(layer)
>>> merge.register(merged, z)
>>> stats = (torch.zeros(2), torch.ones(2) - 1e-5, torch.tensor([2.0, 3.0]), torch.tensor([0.5, 0.0]))
>>> norm = Call.of(F.batch_norm, (z, *stats[:2]), {"weight": stats[2], "bias": stats[3]}, method="demo")
>>> merge.observe(norm)
>>> merge.absorbs(norm), merged.parameters()
(True, (tensor([[ 2.,  4.,  6.],
        [12., 15., 18.]]), tensor([0.5000, 0.0000])))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from saliencelab.engine.intercept import Call

MERGEABLE = frozenset("linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d".split())


def batch_norm_affine(call: Call) -> tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode ``F.batch_norm`` call as ``s·x + t``: the per-channel vectors ``s`` and ``t``.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> x = torch.ones(1, 2)
    >>> call = Call.of(F.batch_norm, (x, torch.zeros(2), torch.full((2,), 4.0)), {"eps": 0.0}, method="demo")
    >>> batch_norm_affine(call)
    (tensor([0.5000, 0.5000]), tensor([0., 0.]))
    """
    mean, var = call.argument(1, "running_mean"), call.argument(2, "running_var")
    weight, bias = call.argument(3, "weight"), call.argument(4, "bias")
    scale = torch.rsqrt(var + call.argument(7, "eps", 1e-5))
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale + (bias if bias is not None else 0.0)
    return scale.detach(), shift.detach()


def merged_parameters(call: Call, scale: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of the layer ``call`` followed by the per-output-channel affine ``s·z + t``.

    Example
    -------
    >>> import torch.nn.functional as F
    >>> w = torch.ones(2, 3, 1, 1)  # conv_transpose2d: (in, out, kH, kW)
    >>> call = Call.of(F.conv_transpose2d, (torch.ones(1, 2, 1, 1), w), {}, method="demo")
    >>> weight, bias = merged_parameters(call, torch.tensor([1.0, 2.0, 3.0]), torch.zeros(3))
    >>> weight[:, :, 0, 0]
    tensor([[1., 2., 3.],
            [1., 2., 3.]])
    """
    weight, bias = call.argument(1, "weight").detach(), call.argument(2, "bias")
    scale, shift = scale.to(weight.dtype), shift.to(weight.dtype)
    trailing = [1] * (weight.ndim - 2)
    if call.name.startswith("conv_transpose"):
        groups = call.argument(6, "groups", 1)
        grouped = weight.reshape(groups, weight.shape[0] // groups, *weight.shape[1:])
        merged = (grouped * scale.reshape(groups, 1, -1, *trailing)).reshape(weight.shape)
    else:
        merged = weight * scale.reshape(-1, 1, *trailing)
    return merged, shift if bias is None else scale * bias.detach() + shift


@dataclass
class MergedLayer:
    """One layer's parameters, with the batch norm merged into it once the forward pass has met one."""

    call: Call
    affine: tuple[torch.Tensor, torch.Tensor] | None = None
    read_elsewhere: bool = False

    def parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weight and bias a rule should use: merged with the batch norm, if one was merged."""
        if self.affine is None:
            weight, bias = self.call.argument(1, "weight"), self.call.argument(2, "bias")
            return weight.detach(), None if bias is None else bias.detach()
        return merged_parameters(self.call, *self.affine)


class BatchNormMerge:
    """Watches one forward pass and merges each batch norm into the layer whose output it reads.

    Call :meth:`register` for every dense/conv output, :meth:`observe` for every
    other call; :meth:`absorbs` says whether a batch norm call was merged (its
    relevance then passes unchanged: the layer's rule saw the merged layer).
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self._outputs: dict[int, tuple[torch.Tensor, MergedLayer]] = {}  # id -> (output kept alive, its layer)
        self._merged: set[int] = set()  # ids of the batch norm inputs that were merged

    def register(self, record: MergedLayer, output: torch.Tensor) -> None:
        """Register a layer's output: ``record`` gets the batch norm that reads it, if one does."""
        name = record.call.name
        dense_with_channels_last = name == "linear" and output.ndim != 2  # batch norm wants channels on axis 1
        if name in MERGEABLE and not dense_with_channels_last:
            self._outputs[id(output)] = (output, record)

    def observe(self, call: Call) -> None:
        """Note a call: a batch norm of a registered output merges; any other read of one is recorded."""
        first = call.args[0] if call.args else None
        for tensor in call.tensors():
            entry = self._outputs.get(id(tensor))
            if entry is None:
                continue
            output, record = entry
            merging = call.name == "batch_norm" and tensor is first and record.affine is None
            if merging and not record.read_elsewhere:
                record.affine = batch_norm_affine(call)
                self._merged.add(id(output))
                continue
            record.read_elsewhere = True
            if record.affine is not None or merging:
                raise call.unsupported(
                    f"it reads the output of a {record.call.name} layer that a batch norm is merged into; "
                    "use batch_norm='rule' for models that reuse a pre-normalisation activation"
                )

    def absorbs(self, call: Call) -> bool:
        """Whether the batch norm ``call`` was merged into the layer that produced its input."""
        return id(call.args[0]) in self._merged
