"""The report's checks on text: token heatmaps per method, token deletion and insertion against random orders.

:func:`analyse_text` explains each text with each method through
:func:`saliencelab.text.explain` (one text per call, so each may have its own
target: similarity to its own other sentence), and scores every map with
:func:`saliencelab.evaluate.tokens.token_deletion` and
:func:`~saliencelab.evaluate.tokens.token_insertion` next to ``rankings`` seeded
random token orders of the same text. The result is an :class:`Analysis` whose
inputs are the texts' token ids, so the verdicts of
:mod:`saliencelab.report.checks` (deletion, insertion, completeness) and the
report read it as they read images and table rows: its inputs and maps hold
each text's tokens from column 0 (then padding). Model randomisation is not run
on text.

Example
-------
>>> import saliencelab as sl
>>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
>>> texts, others = ["A man plays a guitar.", "The cat sleeps."], ["Someone makes music.", "A kitten naps."]
>>> result = analyse_text(model, tokenizer, texts, methods={"gradient": {}},
...                       targets=[sl.text.similarity(other) for other in others], title="pairs", progress=False)
>>> result.tokens[1], result.methods["gradient"].deletion.curve.shape
(['[CLS]', 'the', 'cat', 'sleeps', '.', '[SEP]'], torch.Size([2, 7]))
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from saliencelab import text
from saliencelab.core import registry
from saliencelab.core.degenerate import checked_by_caller, degenerate_maps
from saliencelab.evaluate.faithfulness import Curve
from saliencelab.evaluate.tokens import random_token_scores, token_deletion, token_insertion
from saliencelab.report.analysis import Analysis, MethodResult
from saliencelab.report.thresholds import Thresholds


def analyse_text(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    methods: Mapping[str, Mapping[str, Any]],
    targets: Sequence[Any],
    title: str,
    description: str = "",
    row_labels: Sequence[str] | None = None,
    score_name: str = "target score",
    steps: int | None = None,
    rankings: int = 8,
    thresholds: Thresholds | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Analysis:
    """Explain each text with each method, and run token deletion and insertion against random token orders.

    Parameters
    ----------
    model, tokenizer:
        A Hugging Face model (left exactly as it was) and its fast tokenizer.
    texts:
        The texts, explained one per call.
    methods:
        Method name to its options for :func:`saliencelab.text.explain`.
    targets:
        One target per text (e.g. ``sl.text.similarity(other)``), as for :func:`saliencelab.text.explain`.
    title, description, row_labels:
        Text for the report (row labels default to the texts).
    score_name:
        What the targets score, for the curves' axis (e.g. ``"cosine similarity"``).
    steps:
        Steps of every deletion and insertion curve (default: the longest text's tokens, at most 100).
    rankings:
        Seeded random token orders of each text that the curves are compared with.
    thresholds, seed:
        As for :func:`saliencelab.report.analyse`.

    See the module's example.
    """
    texts = list(texts)
    if isinstance(targets, str) or len(targets) != len(texts):
        raise ValueError(f"targets: give one target per text ({len(texts)} texts), e.g. sl.text.similarity(other)")
    if isinstance(rankings, bool) or not isinstance(rankings, int) or rankings < 2:
        raise ValueError(f"rankings must be an int of at least 2 (random token orders per text); got {rankings!r}")
    labels = list(row_labels) if row_labels is not None else texts
    if len(labels) != len(texts):
        raise ValueError(f"row_labels has {len(labels)} labels for {len(texts)} texts; give one per text")
    batch = text.encode_batch(model, tokenizer, texts)
    real = batch.mask.bool()
    ids = [row[keep].cpu() for row, keep in zip(batch.ids, real, strict=True)]
    movable = [~row[keep].cpu() for row, keep in zip(batch.fixed, real, strict=True)]  # each text's replaceable tokens
    tokens = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ids]
    if steps is None:
        steps = min(100, max(int(keep.sum()) for keep in movable))
    result = Analysis(
        title,
        description,
        _left_aligned(ids, tokenizer.pad_token_id),
        torch.full((len(texts),), -1),
        labels,
        rankings=rankings,
        thresholds=thresholds or Thresholds(),
        tokens=tokens,
        special_tokens=tuple(tokenizer.all_special_tokens),
        score_name=score_name,
    )
    curves = _Curves(model, tokenizer, texts, targets, steps)
    orders = [random_token_scores([text_tokens] * rankings, seed + index) for index, text_tokens in enumerate(tokens)]
    result.random_deletion, result.random_insertion = curves.ranking_major(orders, rankings)
    bar = tqdm(methods.items(), desc=f"{title}: methods", disable=not progress, leave=False)
    for name, options in bar:
        bar.set_postfix_str(name)
        with checked_by_caller():  # the verdicts fail constant maps, with the reason: no warning
            result.methods[name] = _run_method(curves, movable, name, dict(options), seed)
    return result


class _Curves:
    """The texts, their targets and the steps that every curve of one analysis shares."""

    def __init__(self, model: Any, tokenizer: Any, texts: list[str], targets: Sequence[Any], steps: int) -> None:
        self.model, self.tokenizer, self.texts, self.targets, self.steps = model, tokenizer, texts, targets, steps

    def of(self, index: int, scores: Sequence[torch.Tensor], copies: int = 1) -> tuple[Curve, Curve]:
        """Deletion and insertion curves of text ``index`` (``copies`` times, one ranking each) ranked by ``scores``."""
        shared = {"target": self.targets[index], "steps": self.steps}
        texts = [self.texts[index]] * copies
        return (
            token_deletion(self.model, self.tokenizer, texts, scores, **shared),
            token_insertion(self.model, self.tokenizer, texts, scores, **shared),
        )

    def ranking_major(self, orders: list[list[torch.Tensor]], rankings: int) -> tuple[Curve, Curve]:
        """The curves of ``rankings`` orders of every text, ranking-major: row ``k·N + i`` is order ``k`` of text i."""
        per_text = [self.of(index, scores, rankings) for index, scores in enumerate(orders)]
        deletion, insertion = (
            Curve(torch.stack([pair[kind].curve for pair in per_text], 1).flatten(0, 1), per_text[0][kind].fractions)
            for kind in (0, 1)
        )
        return deletion, insertion


def _left_aligned(rows: list[torch.Tensor], fill: float) -> torch.Tensor:
    """``rows`` of different lengths as one tensor, each from column 0, padded with ``fill`` on the right.

    Example
    -------
    >>> _left_aligned([torch.tensor([1, 2]), torch.tensor([3])], 0).tolist()
    [[1, 2], [3, 0]]
    """
    return torch.nn.utils.rnn.pad_sequence([row.cpu() for row in rows], batch_first=True, padding_value=fill)


def _run_method(
    curves: _Curves, movable: list[torch.Tensor], name: str, options: dict[str, Any], seed: int
) -> MethodResult:
    if "seed" in registry.option_names(registry.get(name)):
        options.setdefault("seed", seed)
    seconds, per_text, deltas = 0.0, [], []
    for index, sentence in enumerate(curves.texts):
        began = time.perf_counter()
        explained = text.explain(
            curves.model, curves.tokenizer, sentence, method=name, target=curves.targets[index], **options
        )
        seconds += time.perf_counter() - began
        per_text.append(explained.token_scores[0].detach().double().cpu())
        deltas.append(explained.attribution.delta)
    maps = _left_aligned(per_text, 0.0)
    degenerate = torch.cat([degenerate_maps(row[keep][None]) for row, keep in zip(per_text, movable, strict=True)])
    pairs = [curves.of(index, [scores]) for index, scores in enumerate(per_text)]
    deletion = Curve(torch.cat([pair[0].curve for pair in pairs]), pairs[0][0].fractions)
    insertion = Curve(torch.cat([pair[1].curve for pair in pairs]), pairs[0][1].fractions)
    delta = None
    if all(d is not None for d in deltas):  # relative to the largest |score|: the curves' first points
        delta = float(torch.cat([d.detach().cpu().double() for d in deltas]).max()) / max(
            float(deletion.curve[:, 0].abs().max()), 1e-12
        )
    return MethodResult(maps, seconds, degenerate, delta=delta, deletion=deletion, insertion=insertion)
