"""Fused attention written out as the steps every interception has rules for: one definition for all of them.

Run under an interception (DeepLIFT's differences, LRP's relevance), each step
(the dense projections, ``q kᵀ``, the scaling, the mask, the softmax, ``A v``)
goes through that method's own rule. The masks follow torch's
``F.scaled_dot_product_attention``: a boolean mask keeps its ``True`` entries,
a float one is added, ``is_causal`` keeps the keys up to each query's own
position counted from the first (top-left, also when there are more keys than
queries), and a query left with no key gets zero weights, not NaN.

Example
-------
>>> import torch, torch.nn.functional as F
>>> q, k, v = torch.randn(3, 1, 2, 4, 5, dtype=torch.float64).unbind(0)
>>> fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
>>> torch.allclose(attention_decomposed(q, k, v, is_causal=True), fused)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MULTI_HEAD_UNSUPPORTED = ("bias_k", "bias_v", "add_zero_attn", "static_k", "static_v")
"""``F.multi_head_attention_forward`` options that :func:`multi_head_decomposed` does not write out."""


def attention_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """``softmax(q kᵀ · scale + mask)`` with SDPA's masks (see the module notes).

    Example
    -------
    >>> q = torch.ones(1, 2, 3)
    >>> attention_weights(q, q, is_causal=True)
    tensor([[[1.0000, 0.0000],
             [0.5000, 0.5000]]])
    >>> attention_weights(q, torch.ones(1, 3, 3), is_causal=True)  # top-left, as torch: query 0 sees key 0
    tensor([[[1.0000, 0.0000, 0.0000],
             [0.5000, 0.5000, 0.0000]]])
    """
    factor = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query, key.transpose(-2, -1)) * factor
    allowed = torch.ones(query.shape[-2], key.shape[-2], dtype=torch.bool, device=query.device)
    if is_causal:
        allowed = allowed.tril()
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        allowed = allowed & attn_mask
    elif attn_mask is not None:
        scores = scores + attn_mask
    empty = ~allowed.any(-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~(allowed | empty), float("-inf")), -1)
    return weights * ~empty if bool(empty.any()) else weights


def attention_decomposed(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` without dropout: :func:`attention_weights` times ``v``.

    Example
    -------
    >>> q, k, v = torch.randn(3, 1, 4, 2, 5, dtype=torch.float64).unbind(0)
    >>> mask = torch.tensor([[True, False], [True, True]])
    >>> fused = F.scaled_dot_product_attention(q, k[:, :2], v[:, :2], attn_mask=mask, enable_gqa=True)
    >>> torch.allclose(attention_decomposed(q, k[:, :2], v[:, :2], mask, enable_gqa=True), fused)
    True
    """
    key, value = grouped(query, key, value, enable_gqa)
    return torch.matmul(attention_weights(query, key, attn_mask, is_causal, scale), value)


def grouped(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, enable_gqa: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values repeated to the queries' heads for grouped-query attention (``enable_gqa``).

    Example
    -------
    >>> k, v = grouped(torch.ones(1, 4, 2, 3), torch.ones(1, 2, 2, 3), torch.ones(1, 2, 2, 3), True)
    >>> k.shape
    torch.Size([1, 4, 2, 3])
    """
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        repeats = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(repeats, -3), value.repeat_interleave(repeats, -3)
    return key, value


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``nn.MultiheadAttention``'s mask (``True`` or ``-inf``: left out) as a float mask to add."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def multi_head_decomposed(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: torch.Tensor | None,
    in_proj_bias: torch.Tensor | None,
    bias_k: None,
    bias_v: None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor | None,
    training: bool = True,
    key_padding_mask: torch.Tensor | None = None,
    need_weights: bool = True,
    attn_mask: torch.Tensor | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: torch.Tensor | None = None,
    k_proj_weight: torch.Tensor | None = None,
    v_proj_weight: torch.Tensor | None = None,
    static_k: None = None,
    static_v: None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``F.multi_head_attention_forward`` (``nn.MultiheadAttention``) without dropout, written out.

    Sequence-first inputs ``(L, N, E)`` or unbatched ``(L, E)``, as the module
    passes them. The options in :data:`MULTI_HEAD_UNSUPPORTED` must be unset;
    ``is_causal`` is a hint that ``attn_mask`` is causal, which it applies already.

    Example
    -------
    >>> mha = torch.nn.MultiheadAttention(4, 2).double().eval()
    >>> x = torch.randn(3, 2, 4, dtype=torch.float64)
    >>> mask = torch.tensor([[False, True, True], [False, False, True], [False, False, False]])
    >>> out, weights = mha(x, x, x, attn_mask=mask)
    >>> mine = multi_head_decomposed(x, x, x, 4, 2, mha.in_proj_weight, mha.in_proj_bias, None, None, False, 0.0,
    ...                              mha.out_proj.weight, mha.out_proj.bias, training=False, attn_mask=mask)
    >>> torch.allclose(mine[0], out), torch.allclose(mine[1], weights)
    (True, True)
    """
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
    if use_separate_proj_weight:
        projections = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        projections = in_proj_weight.chunk(3)
    biases = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3)
    length, batch, embed = query.shape
    head = embed // num_heads

    def heads(t: torch.Tensor) -> torch.Tensor:  # (L, N, E) -> (N, H, L, head), MHA's order of heads
        return t.reshape(t.shape[0], batch * num_heads, head).transpose(0, 1).reshape(batch, num_heads, -1, head)

    q, k, v = (heads(F.linear(x, w, b)) for x, w, b in zip((query, key, value), projections, biases, strict=True))
    mask = _additive(attn_mask, q.dtype)
    if mask is not None and mask.dim() == 3:
        mask = mask.reshape(batch, num_heads, *mask.shape[1:])
    padding = _additive(key_padding_mask, q.dtype)
    if padding is not None:
        padding = padding.reshape(batch, 1, 1, -1)
        mask = padding if mask is None else mask + padding
    attention = attention_weights(q, k, mask)
    out = torch.matmul(attention, v).permute(2, 0, 1, 3).reshape(length, batch, embed)
    out = F.linear(out, out_proj_weight, out_proj_bias)
    returned = (attention.mean(1) if average_attn_weights else attention) if need_weights else None
    if unbatched:
        return out.squeeze(1), None if returned is None else returned.squeeze(0)
    return out, returned
