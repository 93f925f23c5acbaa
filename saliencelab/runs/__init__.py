"""Data-set runs: explain a whole data set into a store (Zarr + Parquet) and read it back.

- :func:`run` (``sl.run``): every method and per-sample check on every sample,
  chunk by chunk, resumable after any interruption (:mod:`saliencelab.runs.store`);
- :func:`load_run` (``sl.load_run``): the stored :class:`Run`, its table as a
  DataFrame and its inputs and maps as lazy Zarr arrays;
- :func:`folder`: a folder of images with the command line's reading options;
- :func:`compute_chunk`: the work of one chunk, what every engine runs.

Zarr and pyarrow (``pip install "saliencelab[runs]"``) are imported only when a
store is opened.

Example
-------
>>> import tempfile
>>> import saliencelab as sl
>>> path = tempfile.mkdtemp() + "/faces.zarr"
>>> run = sl.run(sl.zoo.load("lfw_cnn"), "lfw_faces", methods=["gradient"], checks=["deletion"], store=path)
>>> run.classes, float(run.table["correct"].mean())
(['non-face', 'face'], 1.0)
"""

from saliencelab.runs.api import Run, load_run, run
from saliencelab.runs.data import Chunk, Source, as_source, folder
from saliencelab.runs.store import RunStore, StoreExistsError
from saliencelab.runs.work import Job, chunk_seed, compute_chunk

__all__ = [
    "Chunk",
    "Job",
    "Run",
    "RunStore",
    "Source",
    "StoreExistsError",
    "as_source",
    "chunk_seed",
    "compute_chunk",
    "folder",
    "load_run",
    "run",
]
