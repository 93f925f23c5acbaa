"""Operations propagated through their definition in terms of operations that have rules.

A layer norm is ``(z − mean z) · rsqrt(mean (z − mean z)² + ε) · γ + β``; attention
is ``softmax(q kᵀ · scale + mask) v``. The difference mode runs these definitions
in its own context, so every piece takes its own exact rule (sums and
differences, products of two input-dependent tensors, the elementwise Rescale
or RevealCancel rule for ``rsqrt``, softmax) and summation-to-delta holds for
the whole operation as it does for each piece.

Example
-------
>>> import torch
>>> x = torch.randn(2, 5)
>>> torch.allclose(layer_norm(x, (5,)), torch.nn.functional.layer_norm(x, (5,)), atol=1e-6)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


def _normalize(z: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    """``(z − mean) / sqrt(variance + eps)`` over ``dims``, the biased variance as the norms use."""
    centred = z - z.mean(dim=dims, keepdim=True)
    return centred * torch.rsqrt((centred * centred).mean(dim=dims, keepdim=True) + eps)


def layer_norm(
    input: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.layer_norm`` in operations that have difference rules."""
    dims = tuple(range(-len(tuple(normalized_shape)), 0))
    out = _normalize(input, dims, eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def group_norm(
    input: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """``F.group_norm`` in operations that have difference rules."""
    n, c = input.shape[:2]
    grouped = input.reshape(n, num_groups, -1)
    out = _normalize(grouped, (-1,), eps).reshape(input.shape)
    affine = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(affine)
    return out if bias is None else out + bias.reshape(affine)


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` in operations that have difference rules.

    Attention dropout (``dropout_p > 0``) is a dropout in training mode, which the
    difference mode refuses as random.
    """
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        repeats = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(repeats, dim=-3), value.repeat_interleave(repeats, dim=-3)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = query @ key.transpose(-2, -1) * scale
    if is_causal:
        rows, cols = query.shape[-2], key.shape[-2]
        attn_mask = torch.ones(rows, cols, dtype=torch.bool, device=query.device).tril()
    if attn_mask is None:
        weights = torch.softmax(logits, dim=-1)
    else:
        if attn_mask.dtype == torch.bool:
            logits, dead = logits.masked_fill(~attn_mask, float("-inf")), ~attn_mask.any(dim=-1, keepdim=True)
        else:
            logits, dead = logits + attn_mask, torch.isneginf(attn_mask).all(dim=-1, keepdim=True)
        # a query that may attend to nothing gets zero weights, as torch gives, and no NaN on the way
        weights = torch.softmax(logits.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    if dropout_p:
        weights = torch.nn.functional.dropout(weights, dropout_p, training=True)
    return weights @ value


DECOMPOSITIONS: dict[str, Callable[..., torch.Tensor]] = {
    "layer_norm": layer_norm,
    "group_norm": group_norm,
    "scaled_dot_product_attention": scaled_dot_product_attention,
}
"""Canonical operation name -> its definition in operations with rules."""
