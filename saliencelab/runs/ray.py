"""The Ray engine: a run's chunks computed by a pool of Ray actors, each writing its chunks to the shared store.

``sl.run(..., engine="ray")`` hands the chunks that have no done marker to a
pool of actors. Each actor receives the run's :class:`~saliencelab.runs.work.Job`
(the model, the data source, the methods and checks) once, when it starts:
the job is put into Ray's object store once and every actor deserialises it
once, so the model and an in-memory data set are never pickled per chunk. A
folder of images travels as its paths, read by each worker (the folder must be
on a filesystem every worker sees). Each actor computes a chunk with the same
:func:`~saliencelab.runs.work.compute_chunk` as the local engine and writes it
with the same store writer and done marker (:func:`saliencelab.runs.local.run_chunk`),
so the two engines write the same bytes and either can resume the other's store.

Ray is imported only here (``pip install "saliencelab[ray]"``).

- ``address=None``: the Ray this process is already connected to, or else a
  new local Ray with ``workers`` CPUs, shut down when the run ends;
- ``address="auto"`` (the cluster started on this machine with ``ray start``),
  ``"HOST:PORT"`` or ``"ray://HOST:10001"``: connect, and disconnect at the end;
- ``workers``: how many actors (default: the cluster's CPUs divided by ``threads``).

Every actor runs torch on ``threads`` threads (default 1) and reserves as many
CPUs from Ray. One thread per worker is the default because the chunks are
independent: ``k`` single-threaded workers on ``k`` cores keep every core busy
on its own chunk, while torch's default (every core of the machine per process)
would make the workers of one node compete for the same cores; and the
small per-sample kernels of saliency methods gain little from intra-op threads.

The store must be reachable from every worker: a path on a shared filesystem
or an object-store URL (``s3://...``); a ``memory://`` store lives in one
process and is refused.

Example
-------
>>> import tempfile, torch
>>> import saliencelab as sl
>>> sl.run(torch.nn.Linear(3, 2), torch.ones(5, 3), engine="ray", store="memory://ray-example.zarr")
Traceback (most recent call last):
...
ValueError: the store memory://ray-example.zarr lives in this process's memory, which Ray workers cannot reach; ...
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from saliencelab.core.progress import progress_bar
from saliencelab.runs.local import run_chunk
from saliencelab.runs.store import RunStore
from saliencelab.runs.work import Job

EXTRA = "ray"


def execute(
    job: Job,
    store: RunStore,
    chunks: Sequence[int],
    *,
    progress: bool | None = None,
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
) -> dict[str, float]:
    """Compute and write ``chunks`` of ``job`` on a pool of Ray actors; the seconds spent and the workers used.

    Parameters
    ----------
    job, store, chunks:
        The run, its store and the chunks to compute (those without a done marker).
    progress:
        A bar with the samples' rate and the time left, as the local engine's.
    address:
        None (this process's Ray, or a new local one), ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``.
    workers:
        The number of actors (default: the cluster's CPUs divided by ``threads``).
    threads:
        torch threads per actor, and the CPUs each actor reserves.

    Returns
    -------
    dict
        ``compute_seconds`` and ``write_seconds`` summed over the workers, and ``workers``.

    Raises
    ------
    ValueError
        A ``memory://`` store, a bad ``workers`` or ``threads``, or an ``address`` while this process is
        already connected to Ray.
    Exception
        An error inside a worker, re-raised with its own type and message (the worker's traceback chained).

    Example
    -------
    >>> import tempfile, torch
    >>> from saliencelab.runs.data import as_source
    >>> job = Job(torch.nn.Linear(3, 2), as_source(torch.ones(3, 3)), {"gradient": {}}, {}, 0, 2, "prediction")
    >>> execute(job, RunStore(tempfile.mkdtemp() + "/run.zarr"), [], workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be a positive int (Ray actors); got 0
    """
    for name, value in (("workers", workers), ("threads", threads)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            what = "Ray actors" if name == "workers" else "torch threads per worker"
            raise ValueError(f"{name} must be a positive int ({what}); got {value!r}")
    url = worker_url(store)
    ray = _import_ray()
    if ray.is_initialized() and address is not None:
        raise ValueError(
            f"this process is already connected to Ray, so address={address!r} cannot be used; pass "
            "address=None to run on that connection, or call ray.shutdown() first"
        )
    seconds = {"compute_seconds": 0.0, "write_seconds": 0.0, "workers": 0}
    if not chunks:
        return seconds
    connected = _connect(ray, address, workers)
    actors: list[Any] = []
    try:
        size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        job_ref = ray.put(job)  # pickled once; each actor deserialises it once
        worker_class = ray.remote(ChunkWorker).options(num_cpus=threads)
        actors = [worker_class.remote(job_ref, url, threads) for _ in range(min(size, len(chunks)))]
        seconds["workers"] = len(actors)
        total = sum(min(job.batch_size, len(job.source) - k * job.batch_size) for k in chunks)
        with progress_bar("run", total, progress) as advance:
            for rows, compute, write in _results(ray, actors, chunks):
                seconds["compute_seconds"] += compute
                seconds["write_seconds"] += write
                advance(rows)
    finally:
        for actor in actors:
            ray.kill(actor)
        if connected:
            ray.shutdown()
    return seconds


class ChunkWorker:
    """A Ray actor's state: the run's job (received once) and the store; computes and writes one chunk per call.

    Example
    -------
    >>> import tempfile, torch
    >>> from saliencelab.runs.data import as_source
    >>> job = Job(torch.nn.Linear(3, 2), as_source(torch.ones(3, 3)), {"gradient": {}}, {}, 0, 2, "prediction")
    >>> layout = {"inputs/input": ((3, 3), "float32"), "maps/gradient/input": ((3, 3), "float32")}
    >>> store = RunStore.create(tempfile.mkdtemp() + "/run.zarr", {"n": 3}, layout, chunk_rows=2)
    >>> worker = ChunkWorker(job, store.url, threads=torch.get_num_threads())
    >>> worker.compute(1)[0], store.done_chunks()
    (1, {1})
    """

    def __init__(self, job: Job, store_url: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.job, self.store = job, RunStore(store_url)

    def compute(self, index: int) -> tuple[int, float, float]:
        """Compute and write chunk ``index``: its samples, seconds computing, seconds writing."""
        return run_chunk(self.job, self.store, index)


def worker_url(store: RunStore) -> str:
    """The store's address as every worker can open it: local paths made absolute; ``memory://`` refused.

    Example
    -------
    >>> import os
    >>> worker_url(RunStore("runs/digits.zarr")) == os.path.abspath("runs/digits.zarr")
    True
    """
    protocols = (store.fs.protocol,) if isinstance(store.fs.protocol, str) else tuple(store.fs.protocol)
    if "memory" in protocols:
        raise ValueError(
            f"the store {store.url} lives in this process's memory, which Ray workers cannot reach; give a path on "
            "a filesystem every worker sees, or an object-store URL (s3://..., gs://...)"
        )
    return store.root if store.local else store.url


def _results(ray: Any, actors: list[Any], chunks: Sequence[int]) -> Any:
    """Each chunk's ``(samples, compute seconds, write seconds)`` as its actor finishes it; a worker's error raised."""
    waiting, running = list(chunks), {}
    idle = list(actors)
    while waiting or running:
        while idle and waiting:
            actor, index = idle.pop(), waiting.pop(0)
            running[actor.compute.remote(index)] = (actor, index)
        [ready], _ = ray.wait(list(running), num_returns=1)
        actor, index = running.pop(ready)
        idle.append(actor)
        yield _get(ray, ready, index)


def _get(ray: Any, ref: Any, index: int) -> Any:
    """The result of chunk ``index``; a worker's exception re-raised as itself, a dead worker as a RuntimeError."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause if isinstance(error.cause, Exception) else None
        if cause is None:
            raise RuntimeError(f"chunk {index} failed on a Ray worker: {error}") from None
        if hasattr(cause, "add_note"):
            cause.add_note(f"(raised on a Ray worker computing chunk {index}; the chunks written so far are kept)")
        raise cause from error
    except ray.exceptions.RayActorError as error:
        raise RuntimeError(
            f"the Ray worker computing chunk {index} died ({error}); the chunks written so far are kept: run again "
            "to finish the others"
        ) from None


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Connect this process to Ray as ``address`` says; whether it was connected here (and is to disconnect)."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)  # fmt: skip
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    return True


def _import_ray() -> Any:
    """Ray, or an error naming the extra that installs it."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f'engine="ray" needs ray: pip install "saliencelab[{EXTRA}]"') from None
    return ray

