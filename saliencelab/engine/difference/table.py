"""Which rule handles which operation (canonical names from :func:`saliencelab.engine.op_name`).

An operation on input-dependent tensors that is not listed here, and that returns
a tensor, raises :class:`~saliencelab.UnsupportedOperationError`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from saliencelab.engine.difference import linear, maximum, nonlinear
from saliencelab.engine.difference.call import DifferenceCall
from saliencelab.engine.difference.difference import difference_of

STRUCTURAL = (
    "view view_as reshape reshape_as flatten unflatten permute transpose swapaxes swapdims movedim moveaxis t "
    "squeeze unsqueeze expand expand_as broadcast_to repeat tile repeat_interleave contiguous clone detach getitem "
    "narrow select index_select gather take_along_dim chunk split tensor_split unbind cat concat concatenate stack "
    "hstack vstack flip fliplr flipud roll rot90 diagonal to float double half bfloat16 type type_as pixel_shuffle "
    "pixel_unshuffle channel_shuffle unfold pad masked_fill where T mT identity slice"
).split()

ELEMENTWISE = (
    "relu relu6 leaky_relu rrelu prelu elu selu celu gelu silu mish sigmoid tanh softplus softsign hardtanh "
    "hardsigmoid hardswish logsigmoid threshold tanhshrink softshrink hardshrink exp exp2 expm1 log log2 "
    "log10 log1p sqrt rsqrt reciprocal square abs sin cos erf erfc clamp clip clamp_min clamp_max pow rpow sinh cosh "
    "arctan atan"
).split()

DROPOUT = "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout"

AVERAGES = "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d sum mean"

CONVOLUTIONS = "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d"

DifferenceRule = Callable[[DifferenceCall], object]


def _mul(call: DifferenceCall) -> object:
    first, second = call.args[0], call.args[1] if len(call.args) > 1 else call.kwargs["other"]
    if difference_of(first) is not None and difference_of(second) is not None:
        return nonlinear.multiply(call, torch.mul)
    return linear.scale(call, second if difference_of(first) is not None else first)


def _div(call: DifferenceCall) -> object:
    if call.kwargs.get("rounding_mode") is not None:
        raise call.unsupported("rounded division is piecewise constant; it has no DeepLIFT rule")
    if call.name == "div" and difference_of(call.args[1] if len(call.args) > 1 else call.kwargs["other"]) is None:
        divisor = call.args[1] if len(call.args) > 1 else call.kwargs["other"]
        return linear.scale(call, 1 / divisor)
    return nonlinear.multiply(call, torch.mul)


def _matmul(call: DifferenceCall) -> object:
    first, second = call.args[0], call.args[1] if len(call.args) > 1 else call.kwargs["other"]
    if difference_of(first) is not None and difference_of(second) is not None:
        return nonlinear.multiply(call, torch.matmul)
    weight = (1, "other") if difference_of(first) is not None else (0, "input")
    return linear.weighted_sum(call, weight=weight)


def _neg(call: DifferenceCall) -> object:
    return linear.scale(call, -1.0)


def _table() -> dict[str, DifferenceRule]:
    rules: dict[str, DifferenceRule] = {}
    rules.update(dict.fromkeys(STRUCTURAL, linear.structural))
    rules.update(dict.fromkeys(ELEMENTWISE, nonlinear.elementwise_rule))
    rules.update(dict.fromkeys(DROPOUT.split(), linear.dropout))
    rules.update(dict.fromkeys(AVERAGES.split(), linear.weighted_sum))
    rules.update(
        dict.fromkeys(CONVOLUTIONS.split(), partial(linear.weighted_sum, weight=(1, "weight"), bias=(2, "bias")))
    )
    rules["linear"] = partial(linear.weighted_sum, weight=(1, "weight"), bias=(2, "bias"))
    rules["interpolate"] = linear.interpolate
    rules["batch_norm"] = linear.batch_norm
    rules.update(dict.fromkeys(("add", "sub", "rsub"), linear.add))
    rules.update(mul=_mul, div=_div, rdiv=_div, neg=_neg, matmul=_matmul, mm=_matmul, bmm=_matmul)
    rules.update(dict.fromkeys(("softmax", "log_softmax"), nonlinear.softmax_rule))
    rules.update(dict.fromkeys(("amax", "amin", "max", "min"), maximum.reduction))
    rules.update(dict.fromkeys(("maximum", "minimum", "fmax", "fmin"), maximum.pairwise))
    for nd in (1, 2, 3):
        rules[f"max_pool{nd}d"] = rules[f"max_pool{nd}d_with_indices"] = maximum.max_pool
    return rules


DIFFERENCE_RULES: dict[str, DifferenceRule] = _table()
