"""Operations propagated through their definition in terms of operations that have rules.

A layer norm is ``(z − mean z) · rsqrt(mean (z − mean z)² + ε) · γ + β``; an RMS
norm ``z · rsqrt(mean z² + ε) · γ``; a vector norm ``sqrt(Σ z·z)`` (or
``(Σ |z|ᵖ)^(1/p)``, the maximum of ``|z|``); ``F.normalize`` is ``z / max(‖z‖, ε)``, and
the cosine similarity the sum of the product of two normalized vectors;
``addmm`` is ``β·c + α·a @ b``; attention is ``softmax(q kᵀ · scale + mask) v``.
The difference mode runs these definitions
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

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from saliencelab.engine.attention import MULTI_HEAD_UNSUPPORTED, attention_weights, grouped, multi_head_decomposed


class Refused(Exception):
    """A definition's refusal of arguments it has no exact rule for; the difference mode raises it as
    :class:`~saliencelab.UnsupportedOperationError` for the operation, with this message as the reason."""


def _normalize(z: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    """``(z − mean) / sqrt(variance + eps)`` over ``dims``, the biased variance as the norms use."""
    centred = z - z.mean(dim=dims, keepdim=True)
    return centred * torch.rsqrt((centred * centred).mean(dim=dims, keepdim=True) + eps)


def rms_norm(
    input: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """``F.rms_norm`` in operations that have difference rules (``eps`` defaults to the dtype's epsilon, as torch's)."""
    dims = tuple(range(-len(tuple(normalized_shape)), 0))
    eps = torch.finfo(input.dtype).eps if eps is None else eps
    out = input * torch.rsqrt((input * input).mean(dim=dims, keepdim=True) + eps)
    return out if weight is None else out * weight


def linalg_vector_norm(
    input: torch.Tensor,
    ord: float = 2,
    dim: int | Sequence[int] | None = None,
    keepdim: bool = False,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``torch.linalg.vector_norm`` along ``dim`` in operations that have difference rules.

    The 2-norm is ``sqrt(Σ z·z)``, the 1-norm ``Σ |z|``, the ∞-norm the maximum
    of ``|z|``, any other ``p > 0`` ``(Σ |z|ᵖ)^(1/p)``. A norm over the batch
    dimension (or every dimension) would mix the samples, and ``ord <= 0`` (a
    count of non-zeros, or no norm) has no exact rule: both are refused.
    """
    if dim is None:
        raise Refused("a norm over the whole tensor mixes the samples; give dim=")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if any(d % input.ndim == 0 for d in dims):
        raise Refused("a norm over the batch dimension mixes the samples")
    ord = float(ord)
    if not ord > 0:
        raise Refused(f"ord={ord:g} is not a norm with an exact rule; use ord > 0")
    z = input if dtype is None else input.to(dtype)
    if ord == 2:
        return torch.sqrt((z * z).sum(dim=dims, keepdim=keepdim))
    magnitude = z.abs()
    if ord == math.inf:
        return magnitude.amax(dim=dims, keepdim=keepdim)
    if ord == 1:
        return magnitude.sum(dim=dims, keepdim=keepdim)
    return magnitude.pow(ord).sum(dim=dims, keepdim=keepdim).pow(1 / ord)


def norm(
    input: torch.Tensor,
    p: float | str = "fro",
    dim: int | Sequence[int] | None = None,
    keepdim: bool = False,
    out: None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``torch.norm`` and ``Tensor.norm``: the vector norm along ``dim`` (``"fro"`` is the 2-norm)."""
    if isinstance(p, str) and p != "fro":
        raise Refused(f"the matrix norm p={p!r} has no exact rule")
    return linalg_vector_norm(input, 2 if p == "fro" else p, dim, keepdim, dtype=dtype)


def normalize(
    input: torch.Tensor,
    p: float = 2.0,
    dim: int = 1,
    eps: float = 1e-12,
    out: None = None,
    *,
    vector_norm: Callable[..., torch.Tensor] = linalg_vector_norm,
) -> torch.Tensor:
    """``F.normalize``: ``z / max(‖z‖ₚ, eps)`` along ``dim``, the norm computed by ``vector_norm``.

    LRP passes ``torch.linalg.vector_norm``, whose result its rules hold constant as a normaliser.
    """
    return input / vector_norm(input, p, dim, keepdim=True).clamp_min(eps)


def cosine_similarity(
    x1: torch.Tensor,
    x2: torch.Tensor,
    dim: int = 1,
    eps: float = 1e-8,
    *,
    vector_norm: Callable[..., torch.Tensor] = linalg_vector_norm,
) -> torch.Tensor:
    """``F.cosine_similarity`` as torch computes it: ``Σ (x₁ / max(‖x₁‖, ε)) · (x₂ / max(‖x₂‖, ε))`` along ``dim``.

    Example
    -------
    >>> a, b = torch.randn(3, 4), torch.randn(1, 4)
    >>> torch.allclose(cosine_similarity(a, b), torch.nn.functional.cosine_similarity(a, b), atol=1e-6)
    True
    """
    shape = torch.broadcast_shapes(x1.shape, x2.shape)
    x1, x2 = x1.expand(shape), x2.expand(shape)
    unit1, unit2 = (normalize(x, 2.0, dim, eps, vector_norm=vector_norm) for x in (x1, x2))
    return (unit1 * unit2).sum(dim)


def addmm(
    input: torch.Tensor, mat1: torch.Tensor, mat2: torch.Tensor, *, beta: float = 1, alpha: float = 1
) -> torch.Tensor:
    """``torch.addmm`` and ``torch.baddbmm``: ``beta · input + alpha · mat1 @ mat2``.

    As torch does, ``input`` is ignored when ``beta`` is zero (NaN and Inf included).
    """
    product = mat1 @ mat2
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return product + (input if beta == 1 else input * beta)


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
    """``F.scaled_dot_product_attention`` in operations with difference rules (:mod:`saliencelab.engine.attention`).

    Attention dropout (``dropout_p > 0``) is a dropout in training mode, which the
    difference mode refuses as random.
    """
    key, value = grouped(query, key, value, enable_gqa)
    weights = attention_weights(query, key, attn_mask, is_causal, scale)
    if dropout_p:
        weights = torch.nn.functional.dropout(weights, dropout_p, training=True)
    return weights @ value


def multi_head_attention_forward(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``nn.MultiheadAttention``'s functional form, written out (:mod:`saliencelab.engine.attention`).

    Its attention dropout in training mode and the options it does not write out are refused.
    """
    bound = inspect.signature(multi_head_decomposed).bind(*args, **kwargs)
    bound.apply_defaults()
    options = bound.arguments
    used = [name for name in MULTI_HEAD_UNSUPPORTED if options[name] is not None and options[name] is not False]
    if used:
        raise Refused(f"nn.MultiheadAttention with {', '.join(used)} is not written out; leave them unset")
    if options["dropout_p"] and options["training"]:
        raise Refused("attention dropout in training mode is random: put the model in eval mode (model.eval())")
    return multi_head_decomposed(**options)


DECOMPOSITIONS: dict[str, Callable[..., torch.Tensor]] = {
    "rms_norm": rms_norm,
    "linalg_vector_norm": linalg_vector_norm,
    "norm": norm,
    "normalize": normalize,
    "cosine_similarity": cosine_similarity,
    "addmm": addmm,
    "baddbmm": addmm,
    "layer_norm": layer_norm,
    "group_norm": group_norm,
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "multi_head_attention_forward": multi_head_attention_forward,
}
"""Canonical operation name -> its definition in operations with rules."""
