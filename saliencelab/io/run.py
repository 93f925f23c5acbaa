"""Explaining loaded inputs with several methods and writing every result."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import saliencelab as sl
from saliencelab.core import registry
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.guard import preserved
from saliencelab.io.errors import BadOptionError, InputShapeError, UnsupportedModelError, first_line
from saliencelab.io.inputs import IMAGE_SUFFIXES, LoadedInput
from saliencelab.io.outputs import folder_names, write_attribution


@dataclass(frozen=True)
class Row:
    """One method on one input file.

    Attributes
    ----------
    method, input:
        The method's name and the input file's name.
    target:
        The class explained for each sample, or None for a model with one output.
    seconds:
        Wall time of the attribution alone (not of writing it).
    delta:
        The largest completeness error over the samples, or None for a method without one.
    files:
        What was written.
    """

    method: str
    input: str
    target: list[int] | None
    seconds: float
    delta: float | None
    files: list[Path]


def explain_inputs(
    model: torch.nn.Module,
    inputs: Sequence[LoadedInput],
    methods: Sequence[str],
    out: str | Path,
    *,
    target: int | None = None,
    baseline: BaselineSpec = None,
    options: dict[str, dict[str, Any]] | None = None,
    formats: Sequence[str] = ("npy",),
) -> Iterator[Row]:
    """Explain every input with every method; an iterator that writes each result and gives its :class:`Row`.

    Results go to ``out/<input stem>/<method>.*`` (:func:`write_attribution`).
    Before it returns, every input is run through the model
    (:func:`check_model_takes`), so that an input the model cannot take fails
    before any method starts. ``baseline`` goes to the methods that take one; it
    is an error when none does.

    Example
    -------
    >>> import tempfile
    >>> from saliencelab.io.models import load_model
    >>> model = load_model("zoo:digits_cnn")
    >>> x = sl.zoo.dataset("digits")[2][:1]
    >>> loaded = LoadedInput(Path("digit.npy"), x, x)
    >>> row = next(explain_inputs(model, [loaded], ["gradient_x_input"], tempfile.mkdtemp(), target=0))
    >>> row.method, row.target, [f.name for f in row.files]
    ('gradient_x_input', [0], ['gradient_x_input.npy', 'gradient_x_input.png'])
    """
    options = options or {}
    takes_baseline = {m: registry.get(m).takes_baseline for m in methods}
    if baseline is not None and not any(takes_baseline.values()):
        raise BadOptionError(f"--baseline was given but none of {', '.join(methods)} takes a baseline")
    for loaded in inputs:
        check_model_takes(model, loaded)
    names = folder_names([loaded.path for loaded in inputs])
    jobs = [(loaded, Path(out) / name, m) for loaded, name in zip(inputs, names, strict=True) for m in methods]
    return (
        _run(model, loaded, m, folder, target, baseline if takes_baseline[m] else None, options.get(m, {}), formats)
        for loaded, folder, m in jobs
    )


def _run(
    model: torch.nn.Module,
    loaded: LoadedInput,
    method: str,
    folder: Path,
    target: int | None,
    baseline: BaselineSpec,
    options: dict[str, Any],
    formats: Sequence[str],
) -> Row:
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.to(loaded.inputs.dtype)
    start = time.perf_counter()
    result = _explain(model, loaded, method, target, baseline, options)
    seconds = time.perf_counter() - start
    files = write_attribution(folder, method, result.values, loaded.display, formats)
    return Row(method, loaded.path.name, _targets(result.target), seconds, _largest(result.delta), files)


def check_model_takes(model: torch.nn.Module, loaded: LoadedInput) -> None:
    """An :class:`InputShapeError` saying the input's shape and what to change, if the model cannot take it.

    The model also runs on the batch twice over, since methods feed it batches of
    many sizes (an exported program with a fixed batch size fails there).

    Example
    -------
    >>> loaded = LoadedInput(Path("big.png"), torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))
    >>> check_model_takes(sl.zoo.load("digits_cnn"), loaded)
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.InputShapeError: the model cannot take big.png as a batch of shape (1, 1, 16, 16): ...
    """
    x = loaded.inputs
    hint = (
        "Resize it with --size H W, or choose the channels with --grey / --rgb"
        if loaded.path.suffix.lower() in IMAGE_SUFFIXES
        else "Save it with the shape the model takes, (N, C, H, W)"
    )
    with preserved(model), torch.no_grad():
        try:
            model(x)
        except Exception as error:  # whatever the model raises, the user needs the input's shape, not a traceback
            raise InputShapeError(
                f"the model cannot take {loaded.path.name} as a batch of shape {tuple(x.shape)}: "
                f"{first_line(error)}. {hint}"
            ) from None
        try:
            model(torch.cat([x, x]))
        except Exception as error:  # as above
            raise InputShapeError(
                f"the model takes a batch of {x.shape[0]} but not of {2 * x.shape[0]} ({first_line(error)}); "
                "methods run batches of many sizes: export it with a dynamic batch dimension (torch.export.Dim)"
            ) from None


def _explain(
    model: torch.nn.Module,
    loaded: LoadedInput,
    method: str,
    target: int | None,
    baseline: BaselineSpec,
    options: dict[str, Any],
) -> sl.Attribution:
    try:
        return sl.explain(model, loaded.inputs, method=method, target=target, baseline=baseline, **options)
    except sl.UnsupportedOperationError as error:
        raise UnsupportedModelError(f"{method} cannot explain this model: {error}") from None
    except (ValueError, TypeError) as error:
        raise BadOptionError(f"{method} on {loaded.path.name}: {error}") from None


def _targets(target: Any) -> list[int] | None:
    return target.tolist() if isinstance(target, torch.Tensor) else None


def _largest(delta: torch.Tensor | None) -> float | None:
    return None if delta is None else float(delta.max())
