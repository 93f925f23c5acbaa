"""Data-set runs: :func:`run` explains a whole data set into a store, :func:`load_run` reads it back as a :class:`Run`.

Example
-------
>>> import tempfile
>>> import saliencelab as sl
>>> model = sl.zoo.load("digits_cnn")
>>> path = tempfile.mkdtemp() + "/digits.zarr"
>>> run = sl.run(model, "digits", methods=["gradient"], checks=["sparseness"], store=path, batch_size=128)
>>> again = sl.load_run(path)
>>> again.n, again.methods, again.maps["gradient"]["input"].shape, list(again.table.columns)[-2:]
(450, ['gradient'], (450, 1, 8, 8), ['gradient.degenerate', 'gradient.sparseness'])
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import os
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from saliencelab.core import registry
from saliencelab.core.validation import check_seed
from saliencelab.runs.data import Chunk, as_source
from saliencelab.runs.store import (
    FORMAT,
    RunStore,
    environment,
    open_for_run,
    options_hash,
    parameter_hash,
)
from saliencelab.runs.work import CHECKS, CURVE_OPTIONS, TARGETS, Job, check_curves_apply, chunk_arrays

ENGINES = ("local", "ray")
CALL_OPTIONS = ("baseline", "layer", "layer_input")
"""Method options that go to the call (:func:`saliencelab.explain`), not to the method's constructor."""

MethodsSpec = str | Sequence[str] | Mapping[str, Mapping[str, Any]]
ChecksSpec = Sequence[str] | Mapping[str, Mapping[str, Any]] | None


def run(
    model: Any,
    data: Any,
    methods: MethodsSpec = ("gradient",),
    checks: ChecksSpec = None,
    store: str | os.PathLike = "run.zarr",
    engine: str = "local",
    batch_size: int = 64,
    resume: bool = True,
    overwrite: bool = False,
    seed: int = 0,
    target: str | int = "prediction",
    classes: Sequence[str] | None = None,
    address: str | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    tokenizer: Any = None,
) -> Run:
    """Explain every sample of ``data`` with every method and check, into a store (Zarr + Parquet).

    Parameters
    ----------
    model:
        A classifier (outputs ``(N, classes)``); left exactly as it was.
    data:
        A map-style ``Dataset``, a ``DataLoader`` without shuffling (its dataset
        and ``collate_fn``; the run batches by ``batch_size``), tensors (a
        tensor, a tuple or dict of them, or ``(inputs, labels)``), a folder of
        images (:func:`saliencelab.runs.folder` for its reading options) or a zoo
        data set name (``"digits"``, ``"digits:all"``...). Samples are read in
        order; see :mod:`saliencelab.runs.data` for the sample structures.
    methods:
        Method names, or name -> options (those of :func:`saliencelab.explain`,
        with ``baseline``, ``layer`` and ``seed``).
    checks:
        Per-sample checks from ``"completeness"``, ``"deletion"``, ``"insertion"``,
        ``"sparseness"``, or name -> options (deletion, insertion: ``steps``,
        ``baseline``, ``score``, ``aggregate``, ``memory_budget``). None: every
        check that applies to the inputs. The degenerate flag is always there.
    store:
        A local path or an fsspec URL (``memory://run.zarr``, ``s3://...``).
    engine:
        ``"local"`` (this process) or ``"ray"``.
    batch_size:
        Samples per chunk: the unit of computing, writing and resuming.
    resume:
        Finish a run stored at ``store`` with the same options (only its
        missing chunks are computed); False refuses an existing store.
    overwrite:
        Replace a run store at ``store`` (never a folder that is not a run store).
    seed:
        Every random draw of chunk ``k`` comes from ``(seed, k)``: methods that
        take ``seed`` get ``chunk_seed(seed, k)`` (or ``chunk_seed`` of their own ``seed`` option).
    target:
        ``"prediction"`` (each sample's argmax class), ``"label"`` or a class index.
    classes:
        Class names in output order (default: the data's, e.g. a zoo data set's or a folder's subfolders).
    address, workers:
        For ``engine="ray"``.
    progress:
        A progress bar with rate and time left (None: on a terminal for long runs).
    tokenizer:
        For token ids: a Hugging Face tokenizer (``convert_ids_to_tokens``); the
        table gets each sample's real tokens (where ``attention_mask`` is not 0)
        as strings in a ``tokens`` column, for the explorer's token heatmaps.

    Returns
    -------
    Run
        The stored run (:func:`load_run`).

    Raises
    ------
    saliencelab.runs.StoreExistsError
        ``store`` holds a run with other options (or ``resume=False``) and
        ``overwrite`` is False, or is not a run store.

    Example
    -------
    >>> import tempfile, torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Softplus(), torch.nn.Linear(8, 3))
    >>> x, y = torch.linspace(-1, 1, 40).view(10, 4), torch.arange(10) % 3
    >>> run = sl.run(model, (x, y), methods={"integrated_gradients": {"tolerance": 1e-4}}, checks=["completeness"],
    ...              store=tempfile.mkdtemp() + "/run.zarr", batch_size=4)
    >>> bool(run.table["integrated_gradients.completeness_error"].max() < 1e-3), run.maps["integrated_gradients"]
    (True, {'input': <Array ... shape=(10, 4) dtype=float32>})
    """
    executor = engine_module(engine)
    source = as_source(data, model)
    if len(source) == 0:
        raise ValueError("the data set is empty; a run needs at least one sample")
    batch_size = _check_batch_size(batch_size)
    job = Job(model, source, normalise_methods(methods), {}, check_seed(seed), batch_size, _check_target(target),
              _check_tokenizer(tokenizer))  # fmt: skip
    first = job.chunk(0)
    job = Job(model, source, job.methods, normalise_checks(checks, first), job.seed, batch_size, job.target,
              job.tokenizer)  # fmt: skip
    settings = _settings(job, first)
    names = classes if classes is not None else source.classes
    attrs = {
        "format": FORMAT,
        "n": len(source),
        "batch_size": batch_size,
        "chunks": source.chunks(batch_size),
        "methods": list(job.methods),
        "checks": list(job.checks),
        "classes": None if names is None else [str(name) for name in names],
        "input_names": list(first.inputs),
        "attributed": list(first.attributed),
        "kind": first.kind,
        "target": job.target,
        "options_hash": options_hash(settings),
        "provenance": {**settings, **environment(), "engine": engine, "sessions": []},
    }
    fresh = overwrite or not RunStore(store).exists()
    started, clock = _now(), time.perf_counter()
    computed = job.compute(0, first) if fresh else None  # a bad option or input fails before any store is made
    first_compute = time.perf_counter() - clock
    chunk_rows = min(batch_size, len(source))  # a store's chunk never holds more rows than the data
    target_store = open_for_run(store, attrs, _layout(first, len(source), job.methods), chunk_rows,
                                resume=resume, overwrite=overwrite)  # fmt: skip
    clock = time.perf_counter()
    if computed is not None:
        target_store.write_chunk(0, first.start, chunk_arrays(first, computed[0]), computed[1])
    first_write = time.perf_counter() - clock
    pending = sorted(set(range(source.chunks(batch_size))) - target_store.done_chunks())
    seconds = executor.execute(job, target_store, pending, progress=progress, address=address, workers=workers)
    if computed is not None:  # chunk 0, computed here, counts in this session
        seconds = {**seconds, "compute_seconds": seconds["compute_seconds"] + first_compute,
                   "write_seconds": seconds["write_seconds"] + first_write}  # fmt: skip
    chunks = len(pending) + (computed is not None)
    stored = target_store.attrs
    stored["provenance"]["sessions"].append({"started": started, "finished": _now(), "chunks": chunks, **seconds})
    stored["provenance"]["started"] = stored["provenance"]["sessions"][0]["started"]
    stored["provenance"]["finished"] = _now()
    target_store.set_attrs(stored)
    return Run(store)


def load_run(path: str | os.PathLike) -> Run:
    """The run stored at ``path`` (a local path or an fsspec URL), read lazily.

    Example
    -------
    >>> load_run("memory://no-such-run.zarr")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no run store at memory://no-such-run.zarr; write one with saliencelab.run(...)
    """
    return Run(path)


class Run:
    """A stored run, read lazily: the table as a DataFrame, inputs and maps as Zarr arrays.

    Attributes
    ----------
    path:
        Where the store is.
    n, methods, classes:
        The number of samples, the method names in order, the class names (or None).
    table:
        One row per sample, sorted by ``index``: ``index``, ``label``, ``prediction``,
        ``score``, ``target``, ``correct`` and ``"<method>.<check>"`` columns; only
        the chunks that are done.
    inputs:
        Input name -> Zarr array ``(N, ...)``.
    maps:
        Method -> input name -> float32 Zarr array ``(N, ...)`` (NaN where not yet computed).
    provenance:
        Versions, machine, model parameter hash, every method's and check's full
        options, seed, batch size, target, data, engine, and each session's times.
    analysis:
        The SpRAy analysis by class, if computed (:mod:`saliencelab.runs.spray`), else None.

    Example
    -------
    >>> import tempfile, torch, saliencelab as sl
    >>> path = tempfile.mkdtemp() + "/run.zarr"
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.eye(2))
    >>> _ = sl.run(model, torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]]), methods=["gradient"], store=path)
    >>> run = Run(path)
    >>> run.n, run.complete, run.table["prediction"].tolist(), run.analysis
    (3, True, [0, 1, 1], None)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._store = RunStore(path)
        if not self._store.is_run():
            raise FileNotFoundError(f"no run store at {self._store.url}; write one with saliencelab.run(...)")
        self._attrs = self._store.attrs
        self._table: tuple[frozenset[int], pd.DataFrame] | None = None

    @property
    def path(self) -> str:
        return self._store.url

    @property
    def n(self) -> int:
        return int(self._attrs["n"])

    @property
    def methods(self) -> list[str]:
        return list(self._attrs["methods"])

    @property
    def classes(self) -> list[str] | None:
        return self._attrs["classes"]

    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self._store.attrs["provenance"])

    @property
    def done(self) -> set[int]:
        """The chunks that are written."""
        return self._store.done_chunks()

    @property
    def complete(self) -> bool:
        """Whether every chunk is written."""
        return len(self.done) == int(self._attrs["chunks"])

    @property
    def table(self) -> pd.DataFrame:
        done = frozenset(self.done)
        if self._table is None or self._table[0] != done:
            self._table = (done, self._store.table(set(done)))
        return self._table[1].copy()

    @property
    def inputs(self) -> dict[str, Any]:
        return {name: self._store.group[f"inputs/{name}"] for name in self._attrs["input_names"]}

    @property
    def maps(self) -> dict[str, dict[str, Any]]:
        return {
            method: {name: self._store.group[f"maps/{method}/{name}"] for name in self._attrs["attributed"]}
            for method in self.methods
        }

    @property
    def analysis(self) -> dict[int, dict[str, Any]] | None:
        from saliencelab.runs.spray import read_analysis

        return read_analysis(self._store.group)

    def __repr__(self) -> str:
        done = f"{len(self.done)}/{self._attrs['chunks']}"
        return f"Run({self.path!r}, n={self.n}, methods={self.methods}, chunks done {done})"


def engine_module(name: str) -> ModuleType:
    """The engine ``name``: a module ``saliencelab.runs.<name>`` with ``execute(job, store, chunks, ...)``.

    Example
    -------
    >>> engine_module("local").__name__
    'saliencelab.runs.local'
    >>> engine_module("spark")
    Traceback (most recent call last):
    ...
    ValueError: unknown engine 'spark'; use one of 'local', 'ray'
    """
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; use one of {', '.join(map(repr, ENGINES))}")
    module = f"saliencelab.runs.{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise NotImplementedError(
            f"engine={name!r} is not available in this version of saliencelab; use engine='local'"
        ) from None


def normalise_methods(methods: MethodsSpec) -> dict[str, dict[str, Any]]:
    """Method name -> options, each name and option checked.

    Example
    -------
    >>> normalise_methods(["gradient", "integrated_gradients"])
    {'gradient': {}, 'integrated_gradients': {}}
    >>> normalise_methods({"gradient": {"steps": 3}})
    Traceback (most recent call last):
    ...
    TypeError: gradient does not take the option(s) steps; its options are: memory_budget
    """
    if isinstance(methods, str):
        methods = [methods]
    chosen = dict(methods) if isinstance(methods, Mapping) else {name: {} for name in methods}
    if not chosen:
        raise ValueError("methods is empty; give at least one method name (saliencelab.available_methods())")
    for name, options in chosen.items():
        cls = registry.get(name)
        if not isinstance(options, Mapping):
            raise TypeError(f"the options of {name} must be a dict; got {type(options).__name__}")
        if "progress" in options:
            raise TypeError(f"{name}: progress is an option of the run (progress=), not of its methods")
        registry.check_options(cls, {k: v for k, v in options.items() if k not in CALL_OPTIONS})
    return {name: dict(options) for name, options in chosen.items()}


def normalise_checks(checks: ChecksSpec, chunk: Chunk) -> dict[str, dict[str, Any]]:
    """Check name -> options; None: every check that applies to ``chunk``'s inputs.

    Insertion on table rows reveals features over zeros (its default, a blurred
    copy, needs images) unless a baseline is given.

    Example
    -------
    >>> import torch
    >>> from saliencelab.runs.data import as_source
    >>> normalise_checks(None, as_source(torch.ones(2, 1, 4, 4)).chunk(0, 2))
    {'completeness': {}, 'deletion': {}, 'insertion': {}, 'sparseness': {}}
    >>> normalise_checks(["insertion"], as_source(torch.ones(2, 3)).chunk(0, 2))
    {'insertion': {'baseline': 'zeros'}}
    >>> normalise_checks(["faithfulness"], as_source(torch.ones(2, 3)).chunk(0, 2))
    Traceback (most recent call last):
    ...
    ValueError: unknown check 'faithfulness'; use any of 'completeness', 'deletion', 'insertion', 'sparseness'
    """
    if checks is None:
        chosen: dict[str, dict[str, Any]] = {name: {} for name in CHECKS}
        try:
            check_curves_apply(chunk, chosen)
        except ValueError:
            chosen = {"completeness": {}, "sparseness": {}}
    else:
        chosen = {name: dict(options) for name, options in checks.items()} if isinstance(checks, Mapping) \
            else {name: {} for name in checks}  # fmt: skip
    for name, options in chosen.items():
        if name not in CHECKS:
            raise ValueError(f"unknown check {name!r}; use any of {', '.join(map(repr, CHECKS))}")
        allowed = CURVE_OPTIONS if name in ("deletion", "insertion") else ()
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no options"
            raise TypeError(f"the {name} check does not take {', '.join(unknown)}; it {takes}")
    check_curves_apply(chunk, chosen)
    if "insertion" in chosen and chunk.inputs[chunk.attributed[0]].ndim == 2:
        chosen["insertion"].setdefault("baseline", "zeros")  # table rows: there is no blur of a row
    return chosen


def full_method_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of method ``name``: its constructor's defaults updated with ``options``.

    Example
    -------
    >>> full_method_options("integrated_gradients", {"steps": 8})["steps"]
    8
    """
    cls = registry.get(name)
    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                if p.kind == p.KEYWORD_ONLY and p.default is not p.empty}  # fmt: skip
    defaults.pop("progress", None)
    return {**defaults, "baseline": None, **options}


def _full_check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of a check: for deletion and insertion, the defaults of :func:`saliencelab.evaluate.deletion`."""
    if name not in ("deletion", "insertion"):
        return dict(options)
    from saliencelab import evaluate

    measure = evaluate.deletion if name == "deletion" else evaluate.insertion
    parameters = inspect.signature(measure).parameters
    return {**{key: parameters[key].default for key in CURVE_OPTIONS}, **options}


def _settings(job: Job, first: Chunk) -> dict[str, Any]:
    """Everything that determines the results: hashed into ``options_hash`` and kept in the provenance."""
    model = job.model
    return {
        "model": {"class": f"{type(model).__module__}.{type(model).__qualname__}",
                  "parameter_hash": parameter_hash(model)},  # fmt: skip
        "data": {**job.source.description, "n": len(job.source),
                 "inputs": {name: {"shape": list(value.shape[1:]), "dtype": str(value.dtype).removeprefix("torch.")}
                            for name, value in first.inputs.items()},
                 "labelled": first.labels is not None,
                 "first_chunk": _content_hash(first)},  # fmt: skip
        "methods": {name: full_method_options(name, options) for name, options in job.methods.items()},
        "checks": {name: _full_check_options(name, options) for name, options in job.checks.items()},
        "seed": job.seed,
        "batch_size": job.batch_size,
        "target": job.target,
        "tokenizer": _tokenizer_settings(job.tokenizer),
    }


def _tokenizer_settings(tokenizer: Any) -> dict[str, Any] | None:
    """The tokenizer's class, name and a hash of its vocabulary: what the ``tokens`` column depends on."""
    if tokenizer is None:
        return None
    vocabulary = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else None
    return {"class": f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}",
            "name": str(getattr(tokenizer, "name_or_path", "")),
            "vocabulary_hash": None if vocabulary is None else options_hash(dict(vocabulary))}  # fmt: skip


def _content_hash(chunk: Chunk) -> str:
    """A hash of the first chunk's inputs and labels: a store of other data with the same shapes is refused."""
    from saliencelab.runs.store import canonical

    return options_hash({"inputs": {k: canonical(v) for k, v in chunk.inputs.items()},
                         "labels": canonical(chunk.labels)})  # fmt: skip


def _layout(first: Chunk, n: int, methods: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every array of the store: path -> (shape, dtype)."""
    layout = {f"inputs/{name}": ((n, *value.shape[1:]), str(value.dtype).removeprefix("torch."))
              for name, value in first.inputs.items()}  # fmt: skip
    for method in methods:
        for name in first.attributed:
            layout[f"maps/{method}/{name}"] = ((n, *first.inputs[name].shape[1:]), "float32")
    return layout


def _check_batch_size(batch_size: object) -> int:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (samples per chunk); got {batch_size!r}")
    return int(batch_size)


def _check_tokenizer(tokenizer: Any) -> Any:
    if tokenizer is not None and not callable(getattr(tokenizer, "convert_ids_to_tokens", None)):
        raise TypeError(
            f"tokenizer must be a Hugging Face tokenizer (with convert_ids_to_tokens); got {type(tokenizer).__name__}"
        )
    return tokenizer


def _check_target(target: object) -> str | int:
    if isinstance(target, str) and target in TARGETS:
        return target
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool) and target >= 0:
        return int(target)
    raise ValueError(f"target must be 'prediction', 'label' or a class index (int >= 0); got {target!r}")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
