"""Explaining loaded inputs with several methods and writing every result."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

import saliencelab as sl
from saliencelab.core import registry
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.guard import preserved
from saliencelab.core.targets import prepare_target
from saliencelab.io.errors import BadOptionError, InputShapeError, UnsupportedModelError, first_line
from saliencelab.io.inputs import IMAGE_SUFFIXES, LoadedInput
from saliencelab.io.outputs import check_output_folder, folder_names, staged_folder, write_attribution
from saliencelab.methods.base import Method, checked_output


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
        What was written, where it is once the run has finished (see :func:`explain_inputs`).
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

    Results go to ``out/<input stem>/<method>.*`` (:func:`write_attribution`),
    all or nothing: they are written in a hidden staging folder and moved into
    ``out`` when the last method on the last input has run
    (:func:`~saliencelab.io.outputs.staged_folder`); a method that fails, or an
    iterator not run to its end, leaves ``out`` as it was. Before it returns,
    ``out`` is checked to be writable (:func:`~saliencelab.io.outputs.check_output_folder`)
    and every input is run through the model (:func:`check_model_takes`), so that
    these fail before any method starts. ``baseline`` goes to the methods that
    take one; it is an error when none does.

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
    explainers = {method: _build(model, method, options.get(method, {})) for method in methods}
    takes_baseline = {method: explainer.takes_baseline for method, explainer in explainers.items()}
    if baseline is not None and not any(takes_baseline.values()):
        raise BadOptionError(f"--baseline was given but none of {', '.join(methods)} takes a baseline")
    check_output_folder(out)
    for loaded in inputs:
        check_model_takes(model, loaded, target)
    names = folder_names([loaded.path for loaded in inputs])
    jobs = [
        (explainers[m], loaded, name, baseline if takes_baseline[m] else None)
        for loaded, name in zip(inputs, names, strict=True)
        for m in methods
    ]
    return _run_staged(jobs, Path(out), target, formats)


def _run_staged(
    jobs: Sequence[tuple[Method, LoadedInput, str, BaselineSpec]],
    out: Path,
    target: int | None,
    formats: Sequence[str],
) -> Iterator[Row]:
    """Run each job into a staging folder, giving each row with the paths its files will have in ``out``."""
    with staged_folder(out) as stage:
        for explainer, loaded, name, baseline in jobs:
            row = _run(explainer, loaded, stage / name, target, baseline, formats)
            yield replace(row, files=[out / file.relative_to(stage) for file in row.files])


def _build(model: torch.nn.Module, method: str, options: dict[str, Any]) -> Method:
    cls = registry.get(method)
    with method_errors(method):
        registry.check_options(cls, options)
        return cls(model, **options)


@contextlib.contextmanager
def method_errors(method: str, where: str = "") -> Iterator[None]:
    """Turn a method's errors into the user errors of :mod:`saliencelab.io.errors`.

    An operation without a rule is an :class:`UnsupportedModelError`; a
    ``ValueError`` or ``TypeError`` (an option, a target, a baseline the method
    rejects) a :class:`BadOptionError` that names the method and ``where``.

    Example
    -------
    >>> with method_errors("occlusion", "cat.png"):
    ...     raise ValueError("window must be positive")
    Traceback (most recent call last):
    ...
    saliencelab.io.errors.BadOptionError: occlusion on cat.png: window must be positive
    """
    try:
        yield
    except sl.UnsupportedOperationError as error:
        raise UnsupportedModelError(f"{method} cannot explain this model: {error}") from None
    except (ValueError, TypeError) as error:
        raise BadOptionError(f"{method}{f' on {where}' if where else ''}: {error}") from None


def _run(
    explainer: Method,
    loaded: LoadedInput,
    folder: Path,
    target: int | None,
    baseline: BaselineSpec,
    formats: Sequence[str],
) -> Row:
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.to(loaded.inputs.dtype)
    start = time.perf_counter()
    with method_errors(explainer.name, loaded.path.name):
        result = explainer(loaded.inputs, target=target, baseline=baseline)
    seconds = time.perf_counter() - start
    files = write_attribution(folder, explainer.name, result.values, loaded.display, formats)
    return Row(explainer.name, loaded.path.name, _targets(result.target), seconds, _largest(result.delta), files)


def check_model_takes(model: torch.nn.Module, loaded: LoadedInput, target: int | None = None) -> None:
    """An :class:`InputShapeError` saying the input's shape and what to change, if the model cannot take it.

    The model also runs on the batch twice over, since methods feed it batches of
    many sizes (an exported program with a fixed batch size fails there). A
    ``target`` that the model's output has no class for is a :class:`BadOptionError`.

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
            output = model(x)
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
    try:
        prepare_target(target, x.shape[0]).bind(checked_output(output, x.shape[0]))
    except ValueError as error:
        raise BadOptionError(f"--target {target} on {loaded.path.name}: {error}") from None


def _targets(target: Any) -> list[int] | None:
    return target.tolist() if isinstance(target, torch.Tensor) else None


def _largest(delta: torch.Tensor | None) -> float | None:
    return None if delta is None else float(delta.max())
