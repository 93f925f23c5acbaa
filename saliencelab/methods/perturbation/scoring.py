"""Evaluating many perturbed copies of the inputs: batched, budgeted, without autograd.

Every perturbation method reduces to scoring rows: row ``r`` is a perturbed copy
of sample ``sample[r]``. :func:`evaluate_rows` builds the rows chunk by chunk
(``make_rows`` turns row indices into inputs), runs the model on each chunk in
``torch.inference_mode()``, in chunks sized by the method's memory budget, and
writes each row's target score into one float64 vector. The attributions are
computed from that vector only after every chunk has run, so how the rows were
split never changes the order of any sum. A tqdm progress bar follows long runs
on a terminal and stays quiet otherwise (tests, logs, pipes).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from saliencelab.core.targets import Target

if TYPE_CHECKING:
    from saliencelab.methods.base import Method

MakeRows = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``row_index -> (points, sample)``: the perturbed inputs of those rows and the sample each perturbs."""

ROW_COPIES = 4
"""Tensors of an input row's size that building a perturbed row holds on top of the model's
activations: the sample, its baseline, the mask and the perturbed row."""

LONG_RUN = 256
"""Runs of more rows than this show a progress bar on a terminal (``progress=None``)."""


def show_progress(progress: bool | None, total_rows: int) -> bool:
    """Whether to draw a progress bar: as asked, else on a terminal for long runs only.

    Example
    -------
    >>> show_progress(True, 3), show_progress(False, 10**6)
    (True, False)
    """
    if progress is not None:
        return bool(progress)
    return total_rows > LONG_RUN and sys.stderr.isatty()


def evaluate_rows(
    method: Method,
    like: torch.Tensor,
    total_rows: int,
    make_rows: MakeRows,
    target: Target,
    *,
    progress: bool | None = None,
    description: str = "",
) -> torch.Tensor:
    """The target score of every perturbed row, shape ``(total_rows,)``, float64.

    ``like`` is a tensor whose rows have the perturbed inputs' shape (usually the
    inputs; chunks count :data:`ROW_COPIES` of its rows per perturbed row);
    ``target`` must already be bound to the clean outputs (a class per sample, a
    callable, or a single-output model), and row ``r`` is scored for the target
    of sample ``sample[r]``.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from saliencelab.core.targets import Target
    >>> method = sl.Gradient(torch.nn.Linear(2, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = method.model.weight.copy_(torch.tensor([[1.0, 10.0]]))
    >>> x = torch.tensor([[1.0, 1.0]])
    >>> def occlude(row):  # row 0 zeroes feature 0, row 1 zeroes feature 1
    ...     return x * (torch.arange(2) != row[:, None]), torch.zeros_like(row)
    >>> evaluate_rows(method, x, 2, occlude, Target())
    tensor([10.,  1.], dtype=torch.float64)
    """
    scores = torch.empty(total_rows, dtype=torch.float64, device=like.device)
    bar = tqdm(
        total=total_rows,
        desc=description or method.name,
        unit="eval",
        leave=False,
        disable=not show_progress(progress, total_rows),
    )

    def run(rows: slice) -> None:
        index = torch.arange(rows.start, rows.stop, device=like.device)
        with torch.inference_mode():
            points, sample = make_rows(index)
            output = method.forward(points, sample)
            scores[rows] = target.rows(sample).scores(output).to(torch.float64)
        bar.update(rows.stop - rows.start)

    try:
        method.run_chunked(like, run, total_rows, passes=1, own=ROW_COPIES)
    finally:
        bar.close()
    return scores


def clean_outputs(method: Method, inputs: torch.Tensor) -> torch.Tensor:
    """The model's outputs on the unperturbed inputs, in chunks, without autograd.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> clean_outputs(sl.Gradient(torch.nn.Identity()), torch.ones(3, 2)).shape
    torch.Size([3, 2])
    """
    outputs: list[torch.Tensor] = []

    def run(rows: slice) -> None:
        with torch.inference_mode():
            outputs.append(method.forward(inputs[rows], torch.arange(rows.start, rows.stop)))

    method.run_chunked(inputs, run, passes=1)
    return torch.cat(outputs).clone()  # a normal tensor again, usable outside inference mode


def clean_scores(method: Method, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Each sample's target score on the unperturbed inputs (float64) and the target bound to them.

    ``target=None`` is resolved here to each sample's argmax class; the
    perturbed rows are then scored for that class.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from saliencelab.core.targets import prepare_target
    >>> method = sl.Gradient(torch.nn.Identity())
    >>> scores, bound = clean_scores(method, torch.tensor([[0.5, 2.0]]), prepare_target(None, 1))
    >>> scores.tolist(), bound.classes.tolist()
    ([2.0], [1])
    """
    output = clean_outputs(method, inputs)
    bound = target.bind(output)
    return bound.scores(output).to(torch.float64), bound
