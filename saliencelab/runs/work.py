"""The work of one chunk: every method's maps and the per-sample table rows.

:func:`compute_chunk` is what every engine runs (the local loop, Ray workers):
it takes everything as arguments and keeps no state, and all of its randomness
comes from ``(seed, chunk index)`` (:func:`chunk_seed`), so computing chunk
``k`` twice gives the same bytes.

Per method and sample the rows hold the checks that apply:
``completeness_error`` (the method's ``delta``; NaN for a method without a
reference), ``degenerate`` (:func:`~saliencelab.core.degenerate.degenerate_maps`),
``deletion_auc`` and ``insertion_auc`` (:func:`saliencelab.evaluate.deletion`,
:func:`saliencelab.evaluate.insertion`; images and table rows of one input) and
``sparseness`` (:func:`saliencelab.evaluate.sparseness`, over every attributed value).
With a tokenizer, a ``tokens`` column holds each sample's token strings
(:func:`token_strings`).

Example
-------
>>> import torch
>>> from saliencelab.runs.data import as_source
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 2))
>>> chunk = as_source(torch.ones(4, 3)).chunk(0, batch_size=4)
>>> maps, rows = compute_chunk(model, chunk, {"gradient": {}}, {"sparseness": {}}, seed=0, chunk_index=0)
>>> maps["gradient"]["input"].shape, list(rows.columns)[-2:]
((4, 3), ['gradient.degenerate', 'gradient.sparseness'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from saliencelab.core import registry
from saliencelab.core.degenerate import checked_by_caller, degenerate_maps
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import substream_seed
from saliencelab.methods.base import checked_output
from saliencelab.runs.data import Chunk

CHECKS = ("completeness", "deletion", "insertion", "sparseness")
"""The per-sample checks a run can add to its table (the degenerate flag is always there)."""
TARGETS = ("prediction", "label")
CURVE_OPTIONS = ("steps", "baseline", "score", "aggregate", "memory_budget")
"""The options of the deletion and insertion checks (those of :func:`saliencelab.evaluate.deletion`)."""


def chunk_seed(seed: int, chunk_index: int) -> int:
    """The seed of chunk ``chunk_index`` of a run seeded with ``seed``.

    Example
    -------
    >>> chunk_seed(0, 3) == chunk_seed(0, 3), chunk_seed(0, 3) != chunk_seed(0, 4)
    (True, True)
    """
    return substream_seed(seed, chunk_index)


def compute_chunk(
    model: Any,
    chunk_inputs: Chunk,
    methods: Mapping[str, Mapping[str, Any]],
    checks: Mapping[str, Mapping[str, Any]],
    seed: int,
    chunk_index: int,
    *,
    target: str | int = "prediction",
    tokenizer: Any = None,
) -> tuple[dict[str, dict[str, np.ndarray]], pd.DataFrame]:
    """Every method's maps of one chunk and its table rows.

    Parameters
    ----------
    model:
        The model; left exactly as it was.
    chunk_inputs:
        The chunk (:meth:`saliencelab.runs.data.Source.chunk`).
    methods:
        Method name -> options (those of :func:`saliencelab.explain`, ``baseline`` and ``layer`` included).
        A method that takes ``seed`` gets ``chunk_seed(options.get("seed", seed), chunk_index)``.
    checks:
        Check name (:data:`CHECKS`) -> options; ``deletion`` and ``insertion`` take :data:`CURVE_OPTIONS`.
    seed, chunk_index:
        Every random draw of the chunk comes from these two.
    target:
        ``"prediction"`` (each sample's argmax class), ``"label"`` or a class index.
    tokenizer:
        A Hugging Face tokenizer: the rows get each sample's ``tokens`` (:func:`token_strings`).

    Returns
    -------
    maps:
        Method -> attributed input name -> float32 array with the input's shape
        (token ids: one value per token; CAM maps broadcast to the input's channels).
    rows:
        One row per sample: ``index``, ``label``, ``prediction``, ``score``, ``target``, ``correct``,
        ``tokens`` with a tokenizer, and the ``"<method>.<check>"`` columns.

    Example
    -------
    >>> from saliencelab.runs.data import Chunk
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    >>> chunk = Chunk(0, 10, {"input": torch.tensor([[1.0, 3.0]])}, torch.tensor([1]), "tensor", ("input",))
    >>> maps, rows = compute_chunk(model, chunk, {"gradient_x_input": {}}, {}, seed=0, chunk_index=0)
    >>> maps["gradient_x_input"]["input"].tolist(), rows[["index", "prediction", "score", "correct"]].values.tolist()
    ([[0.0, 6.0]], [[10, 1, 6.0, True]])
    """
    with preserved(model):
        output = _outputs(model, chunk_inputs)
    prediction = output.argmax(dim=1)
    targets = _targets(target, prediction, chunk_inputs.labels)
    rows = _sample_rows(chunk_inputs, output, prediction, targets)
    if tokenizer is not None:
        rows["tokens"] = token_strings(chunk_inputs, tokenizer)
    maps = {}
    for name, options in methods.items():
        maps[name], columns = _method(model, chunk_inputs, name, options, checks, targets, seed, chunk_index)
        for check, values in columns.items():
            rows[f"{name}.{check}"] = values
    return maps, pd.DataFrame(rows)


def _outputs(model: Any, chunk: Chunk) -> torch.Tensor:
    """The model's outputs ``(n, classes)`` on the chunk, without gradients."""
    inputs, extra = chunk.model_inputs(), chunk.forward_args() or {}
    with torch.no_grad():
        if chunk.kind == "tensor":
            output = model(inputs, **extra)
        elif chunk.kind == "tuple":
            output = model(*inputs, **extra)
        else:
            output = model(**inputs, **extra)
    output = checked_output(output, chunk.size)
    if output.ndim != 2:
        raise ValueError(
            f"a run explains classifiers with outputs (N, classes); the model returned shape {tuple(output.shape)}"
        )
    return output.detach().float()


def _targets(target: str | int, prediction: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The class explained for each sample."""
    if target == "prediction":
        return prediction
    if target == "label":
        if labels is None:
            raise ValueError("target='label' needs labelled data; the samples have no labels")
        return labels.to(prediction.device)
    return torch.full_like(prediction, int(target))


def _sample_rows(chunk: Chunk, output: torch.Tensor, prediction: torch.Tensor, targets: torch.Tensor) -> dict:
    """The columns every run has: index, label, prediction, score, target, correct."""
    n = chunk.size
    if bool(((targets < 0) | (targets >= output.shape[1])).any()):
        raise ValueError(f"a target is outside the model's {output.shape[1]} classes: {targets.tolist()}")
    labels = chunk.labels
    return {
        "index": np.arange(chunk.start, chunk.start + n, dtype=np.int64),
        "label": pd.array(labels.tolist() if labels is not None else [None] * n, dtype="Int64"),
        "prediction": prediction.cpu().numpy().astype(np.int64),
        "score": output.gather(1, targets[:, None].to(output.device))[:, 0].cpu().double().numpy(),
        "target": targets.cpu().numpy().astype(np.int64),
        "correct": pd.array((prediction.cpu() == labels).tolist() if labels is not None else [None] * n,
                            dtype="boolean"),  # fmt: skip
    }


def token_strings(chunk: Chunk, tokenizer: Any) -> list[list[str]]:
    """Each sample's real tokens as strings: its token ids where ``attention_mask`` is not 0 (all without a mask).

    The token ids are the input ``input_ids``, or the one attributed input of
    integers ``(n, L)``. A sample's map keeps all ``L`` positions: its values
    at the mask's non-zero positions belong to these tokens, in order.

    Example
    -------
    >>> class Letters:  # any tokenizer with convert_ids_to_tokens
    ...     def convert_ids_to_tokens(self, ids):
    ...         return ["abcd"[i] for i in ids]
    >>> ids, mask = torch.tensor([[1, 2, 0], [3, 0, 0]]), torch.tensor([[1, 1, 0], [1, 0, 0]])
    >>> inputs = {"input_ids": ids, "attention_mask": mask}
    >>> token_strings(Chunk(0, 0, inputs, None, "dict", ("input_ids",)), Letters())
    [['b', 'c'], ['d']]
    """
    name = token_ids_input(chunk)
    ids = chunk.inputs[name].cpu()
    mask = chunk.inputs.get("attention_mask")
    real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.cpu() != 0
    return [[str(token) for token in tokenizer.convert_ids_to_tokens(row[keep].tolist())]
            for row, keep in zip(ids, real, strict=True)]  # fmt: skip


def token_ids_input(chunk: Chunk) -> str:
    """The name of the chunk's input of token ids: ``input_ids``, or its one attributed input of integers ``(n, L)``.

    Example
    -------
    >>> token_ids_input(Chunk(0, 0, {"input": torch.ones(2, 3)}, None, "tensor", ("input",)))
    Traceback (most recent call last):
    ...
    ValueError: tokenizer= names the tokens of token ids, but no input holds token ids (integers (N, L)); ...
    """
    if "input_ids" in chunk.attributed:
        return "input_ids"
    found = [name for name in chunk.attributed
             if chunk.inputs[name].ndim == 2 and not chunk.inputs[name].is_floating_point()]  # fmt: skip
    if len(found) != 1:
        shapes = ", ".join(f"{k} {tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}"
                           for k, v in chunk.inputs.items())  # fmt: skip
        raise ValueError(
            f"tokenizer= names the tokens of token ids, but no input holds token ids (integers (N, L)); the samples "
            f"have {shapes}. Name the token ids input_ids, or leave tokenizer out"
        )
    return found[0]


def _method(
    model: Any,
    chunk: Chunk,
    name: str,
    options: Mapping[str, Any],
    checks: Mapping[str, Mapping[str, Any]],
    targets: torch.Tensor,
    seed: int,
    chunk_index: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One method's maps of the chunk and its check columns."""
    from saliencelab.api import explain

    options = dict(options)
    baseline = options.pop("baseline", None)
    if "seed" in registry.option_names(registry.get(name)):
        options["seed"] = chunk_seed(options.get("seed", seed), chunk_index)
    options.setdefault("progress", False)
    with checked_by_caller():  # the degenerate column reports constant maps
        result = explain(model, chunk.model_inputs(), name, target=targets, baseline=baseline,
                         forward_args=chunk.forward_args(), **options)  # fmt: skip
    maps = per_input_maps(result.values, chunk)
    flat = torch.cat([torch.from_numpy(m).reshape(chunk.size, -1) for m in maps.values()], dim=1)
    columns: dict[str, np.ndarray] = {}
    if "completeness" in checks:
        delta = result.delta
        columns["completeness_error"] = (
            np.full(chunk.size, math.nan) if delta is None else delta.detach().abs().cpu().double().numpy()
        )
    columns["degenerate"] = degenerate_maps(flat).numpy()
    for curve in ("deletion", "insertion"):
        if curve in checks:
            columns[f"{curve}_auc"] = _curve_auc(model, chunk, curve, checks[curve], flat, maps, targets, seed,
                                                 chunk_index)  # fmt: skip
    if "sparseness" in checks:
        columns["sparseness"] = _sparseness(flat)
    return maps, columns


def per_input_maps(values: Any, chunk: Chunk) -> dict[str, np.ndarray]:
    """A method's values as one float32 array per attributed input, shaped like that input.

    Token ids attributed at their embedding layer ``(n, L, E)`` are summed per
    token (:func:`saliencelab.text.token_scores`); CAM maps ``(n, 1, H, W)`` are
    broadcast to the input's channels.

    Example
    -------
    >>> from saliencelab.runs.data import Chunk
    >>> chunk = Chunk(0, 0, {"input": torch.zeros(2, 3, 4, 4)}, None, "tensor", ("input",))
    >>> per_input_maps(torch.ones(2, 1, 4, 4), chunk)["input"].shape
    (2, 3, 4, 4)
    """
    from saliencelab.text import token_scores

    if isinstance(values, torch.Tensor):
        parts = {chunk.attributed[0]: values} if len(chunk.attributed) == 1 else None
    elif isinstance(values, Mapping):
        parts = dict(values)
    else:
        parts = dict(zip(chunk.attributed, values, strict=True))
    if parts is None:
        raise ValueError(
            f"the method attributed a hidden layer of shape {tuple(values.shape)} for the inputs "
            f"{', '.join(chunk.attributed)}; a run stores one map per input: attribute the inputs, or one input of "
            "token ids at its embedding layer"
        )
    maps = {}
    for name, value in parts.items():
        shape = chunk.inputs[name].shape
        if not chunk.inputs[name].is_floating_point() and value.ndim == len(shape) + 1:
            value = token_scores(value)
        if value.shape != shape:
            try:
                value = value.expand(shape)
            except RuntimeError:
                raise ValueError(
                    f"the map of {name} has shape {tuple(value.shape)}, which does not fit the input's shape "
                    f"{tuple(shape)}; a run stores maps at the input's shape"
                ) from None
        maps[name] = value.detach().to(torch.float32).cpu().contiguous().numpy()
    return maps


def _curve_auc(
    model: Any,
    chunk: Chunk,
    curve: str,
    options: Mapping[str, Any],
    flat: torch.Tensor,
    maps: dict[str, np.ndarray],
    targets: torch.Tensor,
    seed: int,
    chunk_index: int,
) -> np.ndarray:
    """The deletion or insertion AUC of each sample; NaN for a sample whose map is not finite."""
    from saliencelab import evaluate

    x = chunk.inputs[chunk.attributed[0]]
    measure = evaluate.deletion if curve == "deletion" else evaluate.insertion
    finite = torch.isfinite(flat).all(dim=1)
    aucs = np.full(chunk.size, math.nan)
    if bool(finite.any()):
        keep = finite.nonzero()[:, 0]
        attributions = torch.from_numpy(next(iter(maps.values())))[keep]
        result = measure(model, x[keep], attributions, target=targets[keep], seed=chunk_seed(seed, chunk_index),
                         progress=False, **options)  # fmt: skip
        aucs[keep.numpy()] = result.auc.cpu().numpy()
    return aucs


def _sparseness(flat: torch.Tensor) -> np.ndarray:
    """The Gini index of each sample's map (NaN where the map is not finite)."""
    from saliencelab.evaluate import sparseness

    finite = torch.isfinite(flat).all(dim=1)
    values = np.full(flat.shape[0], math.nan)
    if bool(finite.any()):
        values[finite.numpy()] = sparseness(flat[finite]).numpy()
    return values


def check_curves_apply(chunk: Chunk, checks: Mapping[str, Any]) -> None:
    """A ``ValueError`` if deletion or insertion is asked for on inputs they cannot perturb.

    Example
    -------
    >>> chunk = Chunk(0, 0, {"input_ids": torch.ones(1, 4, dtype=torch.long)}, None, "dict", ("input_ids",))
    >>> check_curves_apply(chunk, {"deletion": {}})
    Traceback (most recent call last):
    ...
    ValueError: the deletion check perturbs one input of images (N, C, H, W) or table rows (N, D); ...
    """
    curves = [name for name in ("deletion", "insertion") if name in checks]
    if not curves:
        return
    x = chunk.inputs[chunk.attributed[0]]
    if len(chunk.attributed) != 1 or chunk.forward_args() or x.ndim not in (2, 4) or not x.is_floating_point():
        raise ValueError(
            f"the {' and '.join(curves)} check perturbs one input of images (N, C, H, W) or table rows (N, D); "
            f"these samples have {', '.join(f'{k} {tuple(v.shape)}' for k, v in chunk.inputs.items())}. "
            "Leave it out of checks="
        )


@dataclass(frozen=True)
class Job:
    """Everything an engine needs to compute a run's chunks (:func:`compute_chunk` on each).

    Attributes
    ----------
    model, source:
        The model and the data (:class:`~saliencelab.runs.data.Source`).
    methods, checks:
        Name -> options, as :func:`compute_chunk` takes them.
    seed, batch_size, target:
        The run's seed, chunk size and target.
    tokenizer:
        None, or the tokenizer that names each sample's tokens (a ``tokens`` column).

    Example
    -------
    >>> from saliencelab.runs.data import as_source
    >>> job = Job(torch.nn.Linear(3, 2), as_source(torch.ones(5, 3)), {"gradient": {}}, {}, 0, 2, "prediction")
    >>> maps, rows = job.compute(2)
    >>> rows["index"].tolist()
    [4]
    """

    model: Any
    source: Any
    methods: Mapping[str, Mapping[str, Any]]
    checks: Mapping[str, Mapping[str, Any]]
    seed: int
    batch_size: int
    target: str | int
    tokenizer: Any = None

    def chunk(self, index: int) -> Chunk:
        """The data of chunk ``index``."""
        return self.source.chunk(index, self.batch_size)

    def compute(self, index: int, chunk: Chunk | None = None) -> tuple[dict[str, dict[str, np.ndarray]], pd.DataFrame]:
        """:func:`compute_chunk` on chunk ``index``."""
        chunk = self.chunk(index) if chunk is None else chunk
        return compute_chunk(self.model, chunk, self.methods, self.checks, self.seed, index, target=self.target,
                             tokenizer=self.tokenizer)  # fmt: skip


def chunk_arrays(chunk: Chunk, maps: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The store's arrays of one chunk by path: ``inputs/<name>`` and ``maps/<method>/<name>``.

    Example
    -------
    >>> chunk = Chunk(0, 0, {"input": torch.ones(1, 2)}, None, "tensor", ("input",))
    >>> sorted(chunk_arrays(chunk, {"gradient": {"input": np.zeros((1, 2), np.float32)}}))
    ['inputs/input', 'maps/gradient/input']
    """
    arrays = {f"inputs/{name}": value.detach().cpu().numpy() for name, value in chunk.inputs.items()}
    for method, per_input in maps.items():
        arrays.update({f"maps/{method}/{name}": values for name, values in per_input.items()})
    return arrays
