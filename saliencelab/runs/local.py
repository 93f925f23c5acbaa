"""The local engine: the chunks one after another in this process, each written as soon as it is computed.

An engine is a module with :func:`execute`; :func:`saliencelab.run` picks it
by name (``engine="local"``) and gives it the chunks that are not done yet.

Example
-------
>>> import tempfile, torch
>>> import saliencelab as sl
>>> run = sl.run(torch.nn.Linear(3, 2), torch.ones(5, 3), methods=["gradient"], checks=[],
...              store=tempfile.mkdtemp() + "/run.zarr", batch_size=2)
>>> run.n, run.complete
(5, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from saliencelab.core.progress import progress_bar
from saliencelab.runs.store import RunStore
from saliencelab.runs.work import Job, chunk_arrays


def execute(job: Job, store: RunStore, chunks: Sequence[int], *, progress: bool | None = None,
            **engine_options: Any) -> dict[str, float]:  # fmt: skip
    """Compute and write ``chunks`` of ``job`` in order; the seconds spent computing and writing.

    ``progress``: a bar with the samples' rate and the time left (``None``: on
    a terminal, for runs longer than a couple of seconds). The local engine
    takes no other options (``address``, ``workers`` are the Ray engine's).

    Example
    -------
    >>> import tempfile, torch
    >>> from saliencelab.runs.data import as_source
    >>> job = Job(torch.nn.Linear(3, 2), as_source(torch.ones(3, 3)), {"gradient": {}}, {}, 0, 2, "prediction")
    >>> layout = {"inputs/input": ((3, 3), "float32"), "maps/gradient/input": ((3, 3), "float32")}
    >>> store = RunStore.create(tempfile.mkdtemp() + "/run.zarr", {"n": 3}, layout, chunk_rows=2)
    >>> sorted(execute(job, store, [0, 1])), store.done_chunks()
    (['compute_seconds', 'write_seconds'], {0, 1})
    """
    given = sorted(name for name, value in engine_options.items() if value is not None)
    if given:
        raise ValueError(f"the local engine takes no {', '.join(given)}; those are options of engine='ray'")
    seconds = {"compute_seconds": 0.0, "write_seconds": 0.0}
    total = sum(min(job.batch_size, len(job.source) - k * job.batch_size) for k in chunks)
    with progress_bar("run", total, progress) as advance:
        for index in chunks:
            rows, compute, write = run_chunk(job, store, index)
            seconds["compute_seconds"] += compute
            seconds["write_seconds"] += write
            advance(rows)
    return seconds


def run_chunk(job: Job, store: RunStore, index: int) -> tuple[int, float, float]:
    """Compute chunk ``index`` and write it (arrays, table part, then its done marker): what every engine runs.

    Returns the chunk's number of samples and the seconds spent computing and writing.

    Example
    -------
    >>> import tempfile, torch
    >>> from saliencelab.runs.data import as_source
    >>> job = Job(torch.nn.Linear(3, 2), as_source(torch.ones(3, 3)), {"gradient": {}}, {}, 0, 2, "prediction")
    >>> layout = {"inputs/input": ((3, 3), "float32"), "maps/gradient/input": ((3, 3), "float32")}
    >>> store = RunStore.create(tempfile.mkdtemp() + "/run.zarr", {"n": 3}, layout, chunk_rows=2)
    >>> run_chunk(job, store, 1)[0], store.done_chunks()
    (1, {1})
    """
    start = time.perf_counter()
    chunk = job.chunk(index)
    maps, rows = job.compute(index, chunk)
    written = time.perf_counter()
    store.write_chunk(index, chunk.start, chunk_arrays(chunk, maps), rows)
    return chunk.size, written - start, time.perf_counter() - written
