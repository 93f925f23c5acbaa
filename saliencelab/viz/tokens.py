"""Token heatmaps as HTML: each token a span coloured by its score, every string escaped, no script.

Scores are signed and the colour scale is the maps' diverging one
(:func:`saliencelab.viz.scale.colour_map`: blue negative, white zero, red
positive), symmetric around zero and scaled per text to its largest ``|score|``
unless ``limit`` is given. Each token's tooltip (``title``) holds the token as
the tokenizer wrote it and its score. Word pieces join their word without a
space: BERT's ``##`` continuations, and for tokenizers that mark the start of a
word (GPT-2's ``Ġ``, SentencePiece's ``▁``) every token without the mark. The
styles are inline, so the same HTML shows in a notebook and in the report.

Example
-------
>>> html = token_heatmap_html(["[CLS]", "token", "##ization", "<b>", "[SEP]"], [0.0, 1.0, -0.5, 0.25, 0.0])
>>> html.count('class="sl-token"'), "&lt;b&gt;" in html, "<b>" in html
(5, True, False)
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import torch

from saliencelab.viz.scale import colour_map

CONTINUATION = "##"
"""BERT's (WordPiece's) mark of a piece that continues the previous token's word."""
WORD_STARTS = ("Ġ", "▁")
"""Marks of a token that starts a word: GPT-2's byte-level BPE and SentencePiece."""
DARK = 0.6
"""Above this fraction of the scale, a token's text is white (its background is dark)."""
TOKENS_STYLE = "line-height: 1.9; font-size: 14px; font-family: system-ui, sans-serif; color: #111"
TOKEN_STYLE = "padding: 1px 1px; border-radius: 3px; white-space: pre"


def token_heatmap_html(
    tokens: Sequence[str], scores: Any, *, limit: float | None = None, special: Sequence[str] = ()
) -> str:
    """One text's tokens as HTML spans, each coloured by its score, with the score in its tooltip.

    Parameters
    ----------
    tokens:
        The token strings (as the tokenizer writes them: ``##`` pieces, ``Ġ`` marks).
    scores:
        One signed score per token (a tensor, array or sequence of numbers).
    limit:
        The ``|score|`` at which the colours saturate; default the text's largest
        ``|score|`` (symmetric scaling per text). Give the same ``limit`` to
        compare several texts by colour.
    special:
        Tokens shown in grey, uncoloured (``[CLS]``, ``[SEP]``, ...).

    Example
    -------
    >>> html = token_heatmap_html(["a", "<script>alert(1)</script>"], [1.0, -1.0])
    >>> "&lt;script&gt;alert(1)&lt;/script&gt;" in html, "<script>" in html
    (True, False)
    >>> "background: #b2182b" in html, "background: #2166ac" in html  # red +1, blue -1
    (True, True)
    """
    values = _scores(tokens, scores)
    if limit is None:
        limit = max((abs(v) for v in values), default=0.0)
    elif not isinstance(limit, int | float) or isinstance(limit, bool) or not limit > 0 or math.isinf(limit):
        raise ValueError(f"limit is the |score| where the colours saturate, a positive number; got {limit!r}")
    scale = colour_map("all")
    marked = any(token.startswith(WORD_STARTS) for token in tokens)
    spans = []
    for index, (token, value) in enumerate(zip(tokens, values, strict=True)):
        shown, joins = _piece(token, marked)
        title = html.escape(f"{token}: {value:+.3g}", quote=True)
        if token in special:
            style = f"{TOKEN_STYLE}; color: #888; font-size: 12px"
        else:
            fraction = max(-1.0, min(1.0, value / limit)) if limit > 0 else 0.0
            red, green, blue, _ = scale((fraction + 1) / 2)
            colour = "#" + "".join(f"{round(c * 255):02x}" for c in (red, green, blue))
            text = "#fff" if abs(fraction) > DARK else "#111"
            style = f"{TOKEN_STYLE}; background: {colour}; color: {text}"
        space = "" if index == 0 or joins else " "
        spans.append(f'{space}<span class="sl-token" style="{style}" title="{title}">{html.escape(shown)}</span>')
    return f'<span class="sl-tokens" style="{TOKENS_STYLE}">{"".join(spans)}</span>'


def token_heatmaps_html(
    tokens: Sequence[Sequence[str]], scores: Sequence[Any], *, caption: str | None = None, **options: Any
) -> str:
    """Several texts' heatmaps (:func:`token_heatmap_html`, each on its own scale), one per line, with a caption.

    Example
    -------
    >>> html = token_heatmaps_html([["a", "b"], ["c"]], [[1.0, 0.0], [-2.0]], caption="gradient <1>")
    >>> html.count('class="sl-tokens"'), "gradient &lt;1&gt;" in html
    (2, True)
    """
    if len(tokens) != len(scores):
        raise ValueError(f"got {len(tokens)} token lists and {len(scores)} score lists; give one score list per text")
    lines = [f"<div>{token_heatmap_html(t, s, **options)}</div>" for t, s in zip(tokens, scores, strict=True)]
    title = "" if caption is None else f'<div style="font-weight: 600">{html.escape(caption)}</div>'
    return f'<div class="sl-token-heatmaps">{title}{"".join(lines)}</div>'


def _scores(tokens: Sequence[str], scores: Any) -> list[float]:
    """``scores`` as floats, one per token; ``ValueError`` for a count that differs or a non-finite score."""
    if isinstance(tokens, str) or not all(isinstance(token, str) for token in tokens):
        raise TypeError("tokens must be a sequence of token strings, e.g. TextAttribution.tokens[i]")
    values = [float(v) for v in (scores.detach().cpu().flatten() if isinstance(scores, torch.Tensor) else scores)]
    if len(values) != len(tokens):
        raise ValueError(f"got {len(values)} scores for {len(tokens)} tokens; give one score per token")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("the scores contain NaN or Inf; a heatmap of them is meaningless")
    return values


def _piece(token: str, marked: bool) -> tuple[str, bool]:
    """What a token shows and whether it joins the previous token's word (no space before it).

    Example
    -------
    >>> _piece("##ization", False), _piece("Ġcat", True), _piece("s", True), _piece("cat", False)
    (('ization', True), ('cat', False), ('s', True), ('cat', False))
    """
    if token.startswith(CONTINUATION) and len(token) > len(CONTINUATION):
        return token[len(CONTINUATION) :], True
    if marked:
        starts = token.startswith(WORD_STARTS)
        return (token[1:] if starts else token), not starts
    return token, False
