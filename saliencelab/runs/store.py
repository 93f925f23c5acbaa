"""The run store: a Zarr (v3) group on a local path or an fsspec URL, with a Parquet table and chunk markers.

Layout (``/work/notes``' store contract)::

    zarr.json                      group attributes "saliencelab": format, n, batch_size, methods,
                                   classes, input_names, options_hash, provenance
    inputs/<name>                  (N, ...) chunked (B, ...) along the samples
    maps/<method>/<name>           (N, ...) float32, chunked (B, ...), zstd
    table/part-<k:06d>.parquet     the table rows of chunk k
    done/<k:06d>                   empty, written when chunk k's arrays and table part are written

A chunk counts as done only once its marker exists, and the marker is written
last: a run stopped at any point (even by SIGKILL) leaves chunks with a marker
complete, and the others are computed again. Array chunks are whole Zarr
chunks, written atomically by Zarr's local store; the table part is written
to a temporary name and renamed on a local disk (one ``put`` elsewhere).
Temporary files a stopped writer left behind are deleted when the run resumes.

Example
-------
>>> import tempfile, numpy as np, pandas as pd
>>> path = tempfile.mkdtemp() + "/run.zarr"
>>> layout = {"inputs/input": ((3, 2), "float32"), "maps/gradient/input": ((3, 2), "float32")}
>>> store = RunStore.create(path, {"n": 3, "batch_size": 2, "options_hash": "abc"}, layout, chunk_rows=2)
>>> store.write_chunk(0, 0, {"inputs/input": np.ones((2, 2)), "maps/gradient/input": np.ones((2, 2))},
...                   pd.DataFrame({"index": [0, 1]}))
>>> store.done_chunks(), RunStore(path).table()["index"].tolist()
({0}, [0, 1])
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

FORMAT = 1
ATTRS = "saliencelab"
EXTRA = "runs"


def require(module: str) -> Any:
    """Import ``module`` (zarr, pyarrow), or say which extra to install.

    Example
    -------
    >>> require("json").dumps([1])
    '[1]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"runs need {module.split('.')[0]}: pip install \"saliencelab[{EXTRA}]\" (zarr>=3 and pyarrow)"
        ) from None


class StoreExistsError(FileExistsError):
    """A store exists at the path and the run may not write into it (other options, or not a run store)."""


class RunStore:
    """A run store at ``url`` (a local path or an fsspec URL such as ``memory://run.zarr`` or ``s3://bucket/run``).

    Example
    -------
    >>> RunStore("memory://nothing.zarr").exists()
    False
    """

    def __init__(self, url: str | os.PathLike) -> None:
        fsspec = require("fsspec")
        self.url = os.fspath(url)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "file" in _protocols(self.fs)

    def exists(self) -> bool:
        """Whether anything is at the store's path."""
        return bool(self.fs.exists(self.root))

    def is_run(self) -> bool:
        """Whether the path holds a Zarr group with run attributes."""
        path = f"{self.root}/zarr.json"
        if not self.fs.exists(path):
            return False
        try:
            return ATTRS in json.loads(self.fs.cat_file(path)).get("attributes", {})
        except (ValueError, AttributeError):
            return False

    @property
    def group(self) -> Any:
        """The Zarr group (opened on first use)."""
        if not hasattr(self, "_group"):
            zarr = require("zarr")
            self._group = zarr.open_group(self.url, mode="r+" if self.exists() else "r")
        return self._group

    @property
    def attrs(self) -> dict[str, Any]:
        """The group's ``saliencelab`` attributes."""
        return dict(self.group.attrs[ATTRS])

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Replace the group's ``saliencelab`` attributes (one atomic write of ``zarr.json``)."""
        self.group.attrs[ATTRS] = _plain(attrs)

    @classmethod
    def create(
        cls,
        url: str | os.PathLike,
        attrs: Mapping[str, Any],
        layout: Mapping[str, tuple[tuple[int, ...], str]],
        chunk_rows: int,
    ) -> RunStore:
        """A new store: the group with ``attrs`` first, then every array of ``layout`` (path -> (shape, dtype)).

        Arrays of float maps are filled with NaN until written; inputs with 0.
        """
        zarr = require("zarr")
        store = cls(url)
        group = zarr.open_group(store.url, mode="w", attributes={ATTRS: _plain(attrs)})
        store.require_arrays(layout, chunk_rows, group)
        store._group = group
        return store

    def require_arrays(self, layout: Mapping[str, tuple[tuple[int, ...], str]], chunk_rows: int,
                       group: Any = None) -> None:  # fmt: skip
        """Create the arrays of ``layout`` that are missing (a run stopped while creating them)."""
        zarr = require("zarr")
        group = self.group if group is None else group
        for path, (shape, dtype) in layout.items():
            if path in group:
                continue
            fill = np.nan if path.startswith("maps/") else 0
            group.create_array(path, shape=shape, dtype=dtype, chunks=(chunk_rows, *shape[1:]),
                               compressors=zarr.codecs.ZstdCodec(level=3), fill_value=fill)  # fmt: skip

    def remove(self) -> None:
        """Delete the store, if it is a run store (or an empty folder); refuse any other folder."""
        if not self.exists():
            return
        if not self.is_run() and self.fs.ls(self.root):
            raise StoreExistsError(
                f"{self.url} exists and is not a run store; it was left as it is. Choose another store path"
            )
        self.fs.rm(self.root, recursive=True)
        self.__dict__.pop("_group", None)

    def sweep_partial(self) -> None:
        """Delete the temporary ``*.partial`` files that a writer stopped mid-write left behind (local stores)."""
        if self.local:
            for path in self.fs.glob(f"{self.root}/**/*.partial"):
                self.fs.rm_file(path)

    def done_chunks(self) -> set[int]:
        """The chunks whose marker exists."""
        folder = f"{self.root}/done"
        if not self.fs.exists(folder):
            return set()
        return {int(name.rsplit("/", 1)[-1]) for name in self.fs.ls(folder, detail=False)
                if name.rsplit("/", 1)[-1].isdigit()}  # fmt: skip

    def write_chunk(self, index: int, start: int, arrays: Mapping[str, np.ndarray], rows: pd.DataFrame) -> None:
        """Write chunk ``index`` (samples from ``start``): every array, the table part, then the marker."""
        for path, values in arrays.items():
            self.group[path][start : start + len(values)] = values
        self._put(f"table/part-{index:06d}.parquet", _parquet_bytes(rows))
        self._put(f"done/{index:06d}", b"")

    def table(self, chunks: set[int] | None = None) -> pd.DataFrame:
        """The table of the done chunks (or of ``chunks``), sorted by ``index``."""
        pa, pq = require("pyarrow"), require("pyarrow.parquet")
        chunks = sorted(self.done_chunks() if chunks is None else chunks)
        parts = [pq.read_table(pa.BufferReader(self.fs.cat_file(f"{self.root}/table/part-{k:06d}.parquet")))
                 for k in chunks]  # fmt: skip
        if not parts:
            return pd.DataFrame({"index": pd.Series(dtype="int64")})
        frame = pa.concat_tables(parts).to_pandas()
        return frame.sort_values("index", kind="stable").reset_index(drop=True)

    def _put(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``path`` in the store: locally to a temporary name renamed into place."""
        full = f"{self.root}/{path}"
        if not self.local:
            self.fs.pipe_file(full, data)
            return
        os.makedirs(os.path.dirname(full), exist_ok=True)
        temporary = f"{full}.{os.getpid()}.partial"
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, full)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _parquet_bytes(rows: pd.DataFrame) -> bytes:
    """The rows as Parquet (the pandas dtypes kept in its metadata)."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), buffer)
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    """``value`` as JSON data (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the run's attributes")


def open_for_run(
    url: str | os.PathLike,
    attrs: Mapping[str, Any],
    layout: Mapping[str, tuple[tuple[int, ...], str]],
    chunk_rows: int,
    *,
    resume: bool,
    overwrite: bool,
) -> RunStore:
    """The store a run writes into: new, resumed (same ``options_hash``), or replaced (``overwrite``).

    An existing run store with other options, an existing one without
    ``resume``, and an existing path that is not a run store are refused with
    :class:`StoreExistsError`, unless ``overwrite`` (which never deletes a
    folder that is not a run store).

    Example
    -------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/run.zarr"
    >>> layout = {"inputs/input": ((2, 1), "float32")}
    >>> _ = open_for_run(path, {"options_hash": "a"}, layout, 2, resume=True, overwrite=False)
    >>> open_for_run(path, {"options_hash": "b"}, layout, 2, resume=True, overwrite=False)
    Traceback (most recent call last):
    ...
    saliencelab.runs.store.StoreExistsError: ... holds a run with other options ...
    """
    store = RunStore(url)
    if store.exists() and overwrite:
        store.remove()
    if not store.exists():
        return RunStore.create(url, attrs, layout, chunk_rows)
    if not store.is_run():
        raise StoreExistsError(f"{store.url} exists and is not a run store; choose another store path")
    if store.attrs.get("options_hash") != attrs["options_hash"]:
        raise StoreExistsError(
            f"{store.url} holds a run with other options (model, data, methods, checks, seed, batch size or "
            "target differ); pass overwrite=True (--overwrite) to replace it, or choose another store path"
        )
    if not resume:
        raise StoreExistsError(
            f"{store.url} already holds this run; pass resume=True to finish it, or overwrite=True to start again"
        )
    store.sweep_partial()
    store.require_arrays(layout, chunk_rows)
    return store


def parameter_hash(model: Any) -> str | None:
    """sha256 over the names, shapes, dtypes and bytes of the model's parameters and buffers; None for a function.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> before = parameter_hash(model)
    >>> with torch.no_grad():
    ...     model.bias += 1
    >>> parameter_hash(model) == before
    False
    """
    import hashlib

    import torch

    if not isinstance(model, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def canonical(value: Any) -> Any:
    """``value`` as JSON data for hashing and provenance: tensors by content hash, modules and functions by name.

    Example
    -------
    >>> import torch
    >>> canonical({"steps": 8, "baseline": torch.zeros(2), "layer": torch.nn.ReLU()})["baseline"]["shape"]
    [2]
    """
    import hashlib

    import torch

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = value.detach().cpu().contiguous().numpy() if isinstance(value, torch.Tensor) else value
        return {"tensor": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
                "shape": list(array.shape), "dtype": str(value.dtype)}  # fmt: skip
    if isinstance(value, torch.nn.Module):
        return {"module": type(value).__qualname__, "parameters": parameter_hash(value)}
    return {"object": getattr(value, "__qualname__", type(value).__qualname__),
            "module": getattr(value, "__module__", None)}  # fmt: skip


def options_hash(options: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``options`` (sorted keys).

    Example
    -------
    >>> options_hash({"a": 1, "b": [2]}) == options_hash({"b": [2], "a": 1})
    True
    """
    import hashlib

    text = json.dumps(canonical(options), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def environment() -> dict[str, Any]:
    """Versions and the machine, for a run's provenance.

    Example
    -------
    >>> sorted(environment()["machine"])
    ['cpu_count', 'platform', 'processor', 'python']
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    import saliencelab

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "versions": {"saliencelab": saliencelab.__version__, "torch": torch.__version__, "zarr": installed("zarr"),
                     "pyarrow": installed("pyarrow"), "numpy": np.__version__},  # fmt: skip
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version()},  # fmt: skip
    }
