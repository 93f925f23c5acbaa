"""Token deletion and insertion: does removing the tokens an explanation ranks first change the target most?

The text counterpart of :func:`saliencelab.evaluate.deletion` and
:func:`~saliencelab.evaluate.insertion` (Petsiuk et al. 2018): each text's real
tokens are ranked by their (signed) scores and replaced by the reference token
of :func:`saliencelab.text.explain` (deletion: most attributed first), or put
back into the reference text (insertion), in ``steps`` equal steps. The
reference is ``sl.text``'s: the pad id (or ``baseline``) for every token, the
special tokens (``[CLS]``, ``[SEP]``, ...) and padding kept, the attention mask
unchanged. Step ``k`` of a text with ``n`` real tokens replaces its first
``k·n // steps`` tokens, so every curve runs from the text to its reference
whatever its length, and the curves of texts of different lengths share their
x-axis (the fraction of the text's tokens). The target is scored as it is
explained (a similarity, a log-probability, a class logit), without softmax.

Every perturbed text is a row of one batched, budgeted evaluation without
autograd (:func:`saliencelab.evaluate.faithfulness.score_rows`); ties in a
ranking go to the earlier token, so the curves are deterministic.

Example
-------
>>> import saliencelab as sl
>>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
>>> target = sl.text.similarity("A cat")
>>> curve = token_deletion(model, tokenizer, "A cat sat", [[0.0, 0.5, 1.0, -1.0, 0.0]], target=target)
>>> curve.curve.shape, round(float(curve.curve[0, 0]), 3)  # 3 steps: 'cat', 'a', 'sat' replaced in turn
(torch.Size([1, 4]), 0.778)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from saliencelab.core.guard import preserved
from saliencelab.core.structure import ForwardArgs, InputStructure, StructuredModel
from saliencelab.core.targets import prepare_target
from saliencelab.evaluate.faithfulness import DEFAULT_STEPS, Curve, Scorer, rank, score_rows
from saliencelab.methods.perturbation.scoring import clean_scores
from saliencelab.text import TextAttribution, encode_batch, scored_model

__all__ = ["random_token_scores", "token_deletion", "token_insertion"]

TokenScores = TextAttribution | Sequence[Any]
"""A :class:`~saliencelab.text.TextAttribution`, or one sequence of scores per text, one score per real token."""


def token_deletion(
    model: nn.Module,
    tokenizer: Any,
    texts: str | Sequence[str],
    scores: TokenScores,
    *,
    target: Any = None,
    steps: int | None = None,
    baseline: int | torch.Tensor | None = None,
    memory_budget: int | None = None,
) -> Curve:
    """The target's score as each text's most attributed tokens are replaced by the reference: lower AUC is better.

    Parameters
    ----------
    model, tokenizer, texts, target, baseline:
        As for :func:`saliencelab.text.explain` (the texts and the target that
        were explained; ``baseline`` the reference token, default the pad id).
    scores:
        What ranks the tokens: the :class:`~saliencelab.text.TextAttribution` of
        those texts, or one sequence of scores per text, one per token of
        ``TextAttribution.tokens`` (special tokens included; they are never replaced).
    steps:
        Equal steps from the text to its reference (default: the longest text's
        real tokens, at most 100).
    memory_budget:
        Bytes for one chunk of perturbed texts (default 1 GiB).

    Returns
    -------
    Curve
        ``.curve`` ``(N, steps + 1)``, from the text to its reference, ``.auc`` ``(N,)``.

    Example
    -------
    >>> import saliencelab as sl
    >>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
    >>> target = sl.text.similarity("A man plays music.")
    >>> r = sl.text.explain(model, tokenizer, "A man is playing a guitar.", target=target, steps=16)
    >>> ours = token_deletion(model, tokenizer, "A man is playing a guitar.", r, target=target).auc
    >>> chance = token_deletion(model, tokenizer, "A man is playing a guitar.", random_token_scores(r.tokens),
    ...                         target=target).auc
    >>> bool(ours < chance)
    True
    """
    return _token_curve(model, tokenizer, texts, scores, target, steps, baseline, memory_budget, insert=False)


def token_insertion(
    model: nn.Module,
    tokenizer: Any,
    texts: str | Sequence[str],
    scores: TokenScores,
    *,
    target: Any = None,
    steps: int | None = None,
    baseline: int | torch.Tensor | None = None,
    memory_budget: int | None = None,
) -> Curve:
    """The target's score as each text's most attributed tokens are put back into its reference: higher AUC is better.

    The first point is the reference text (every real token replaced), the last
    the text itself. Parameters as in :func:`token_deletion`.

    Example
    -------
    >>> import saliencelab as sl
    >>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
    >>> curve = token_insertion(model, tokenizer, "A cat", [[0.0, 1.0, 2.0, 0.0]], target=sl.text.similarity("A cat"))
    >>> round(float(curve.curve[0, -1]), 4)  # the text itself
    1.0
    """
    return _token_curve(model, tokenizer, texts, scores, target, steps, baseline, memory_budget, insert=True)


def random_token_scores(tokens: Sequence[Sequence[str]], seed: int = 0) -> list[torch.Tensor]:
    """Uniform random scores for each text's tokens, from ``seed``: a random ranking, the control of the curves.

    Example
    -------
    >>> [scores.shape for scores in random_token_scores([["a", "b"], ["c"]], seed=1)]
    [torch.Size([2]), torch.Size([1])]
    """
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(len(text), generator=generator, dtype=torch.float64) for text in tokens]


def _token_curve(
    model: nn.Module,
    tokenizer: Any,
    texts: str | Sequence[str],
    scores: TokenScores,
    target: Any,
    steps: int | None,
    baseline: int | torch.Tensor | None,
    memory_budget: int | None,
    *,
    insert: bool,
) -> Curve:
    batch = encode_batch(model, tokenizer, texts, baseline)
    ids, reference, movable = batch.ids, batch.reference, ~batch.fixed
    padded = _padded(scores, batch.mask.bool())
    order = rank(padded.masked_fill(~movable, -torch.inf))  # the special tokens and padding come last
    units = movable.sum(dim=1)
    if not bool((units > 0).all()):
        empty = (units == 0).nonzero()[:, 0].tolist()
        raise ValueError(f"texts {empty} have no token to replace (special tokens only); give texts with words")
    steps = _check_steps(steps, int(units.max()))
    counts = torch.arange(steps + 1, device=ids.device)[None, :] * units[:, None] // steps  # (N, steps + 1)
    scored, class_target = scored_model(model, tokenizer, target, batch)
    name = "token insertion" if insert else "token deletion"
    caller = StructuredModel(scored, InputStructure.of(ids), ForwardArgs.of(batch.forward_args, len(ids)), name)
    scorer = Scorer(caller, "logit", memory_budget)
    with preserved(model):
        _, bound = clean_scores(scorer, ids, prepare_target(class_target, len(ids)))

        def perturbed(sample: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
            chosen = order[sample] < counts[sample, step][:, None]
            text, replaced = ids[sample], reference[sample]
            return torch.where(chosen, text, replaced) if insert else torch.where(chosen, replaced, text)

        curve = score_rows(scorer, ids, bound, steps + 1, perturbed, False, name)
    return Curve(curve, torch.linspace(0, 1, steps + 1, dtype=torch.float64, device=curve.device))


def _padded(scores: TokenScores, real: torch.Tensor) -> torch.Tensor:
    """Each text's token scores at its real tokens' columns of the padded batch ``(N, T)``, float64."""
    per_text = scores.token_scores if isinstance(scores, TextAttribution) else scores
    if isinstance(per_text, torch.Tensor) or len(per_text) != len(real):
        count = f"a tensor of shape {tuple(per_text.shape)}" if isinstance(per_text, torch.Tensor) else len(per_text)
        raise ValueError(f"scores: got {count} for {len(real)} texts; give one sequence of token scores per text")
    rows = [torch.as_tensor(row, dtype=torch.float64).flatten().to(real.device) for row in per_text]
    lengths = real.sum(dim=1).tolist()
    if [len(row) for row in rows] != lengths:
        raise ValueError(
            f"scores have {[len(row) for row in rows]} values per text, the texts {lengths} tokens (special tokens "
            "included): give one score per token of TextAttribution.tokens, for the same texts"
        )
    if not all(bool(torch.isfinite(row).all()) for row in rows):
        raise ValueError("the scores contain NaN or Inf values; a ranking of them is meaningless")
    padded = torch.zeros(real.shape, dtype=torch.float64, device=real.device)
    padded[real] = torch.cat(rows)
    return padded


def _check_steps(steps: int | None, longest: int) -> int:
    if steps is None:
        return min(DEFAULT_STEPS, longest)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int (equal steps from each text to its reference); got {steps!r}")
    return steps
