"""Data sources of a run: what to explain, read chunk by chunk in a fixed order.

A run splits its data set into chunks of ``batch_size`` consecutive samples;
chunk ``k`` holds samples ``k * batch_size`` up to the next chunk. Every source
reads a chunk by position (random access), never by iterating, so recomputing
chunk ``k`` after an interruption reads exactly the samples it read before.

Sources: a ``torch.utils.data.Dataset`` (map-style), a ``DataLoader`` (its
dataset and ``collate_fn``, batched by the run; a shuffling or custom sampler is
refused), a folder of images (:func:`folder`, read with the command line's
image loading of :mod:`saliencelab.io`) and a zoo data set name (``"digits"``:
its test split; ``"digits:train"``, ``"digits:all"``).

A sample is a tensor, a tuple of tensors (``model(*inputs)``), a dict of tensors
(``model(**inputs)``), or one of these with a label: ``(inputs, label)`` with an
integer label, or a dict with a ``"label"`` (or ``"labels"``) entry. In a dict,
``attention_mask``, ``token_type_ids`` and ``position_ids`` go to the model as
they are and are not attributed (token ids with their mask).

Example
-------
>>> import torch
>>> source = as_source(torch.utils.data.TensorDataset(torch.ones(5, 3), torch.tensor([0, 1, 0, 1, 1])))
>>> len(source), source.classes
(5, None)
>>> chunk = source.chunk(1, batch_size=2)
>>> chunk.inputs["input"].shape, chunk.labels.tolist(), chunk.start
(torch.Size([2, 3]), [0, 1], 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, SequentialSampler, default_collate

FORWARDED = ("attention_mask", "token_type_ids", "position_ids")
"""Dict entries passed to the model as they are, never attributed."""
LABEL_KEYS = ("label", "labels")
ZOO_SPLITS = ("test", "train", "all")
ZOO_CLASSES: dict[str, list[str]] = {
    "digits": [str(d) for d in range(10)],
    "cluttered_digits": [str(d) for d in range(10)],
    "watermarked_digits": [str(d) for d in range(10)],
    "lfw_faces": ["non-face", "face"],
    "breast_cancer": ["malignant", "benign"],
}
"""Class names of the zoo's data sets, in label order."""


@dataclass(frozen=True)
class Chunk:
    """Consecutive samples of a data set, ready for the model.

    Attributes
    ----------
    index:
        The chunk's number ``k``.
    start:
        The data set index of its first sample.
    inputs:
        Every input by name, first dimension = samples: ``"input"`` for a model
        that takes one tensor, ``"input_0"``, ``"input_1"``... for several
        positional ones, the keys of a dict.
    labels:
        int64 labels ``(n,)``, or None when the data has none.
    kind:
        How the model takes the inputs: ``"tensor"``, ``"tuple"`` or ``"dict"``.
    attributed:
        The names of the inputs that are attributed (the others are passed on).

    Example
    -------
    >>> chunk = Chunk(0, 0, {"input": torch.ones(2, 3)}, None, "tensor", ("input",))
    >>> chunk.size, chunk.model_inputs().shape, chunk.forward_args()
    (2, torch.Size([2, 3]), None)
    """

    index: int
    start: int
    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor | None
    kind: str
    attributed: tuple[str, ...]

    @property
    def size(self) -> int:
        """The number of samples."""
        return next(iter(self.inputs.values())).shape[0]

    def model_inputs(self) -> Any:
        """The attributed inputs in the model's structure: a tensor, a tuple or a dict."""
        if self.kind == "tensor":
            return self.inputs["input"]
        if self.kind == "tuple":
            return tuple(self.inputs[name] for name in self.attributed)
        return {name: self.inputs[name] for name in self.attributed}

    def forward_args(self) -> dict[str, torch.Tensor] | None:
        """The inputs passed on unattributed, as keywords; None when there are none."""
        extra = {name: value for name, value in self.inputs.items() if name not in self.attributed}
        return extra or None


class Source:
    """A data set read chunk by chunk; subclasses say how to read samples ``[start, stop)``.

    Example
    -------
    >>> source = as_source(torch.zeros(3, 2))
    >>> [source.chunk(k, batch_size=2).size for k in range(source.chunks(2))]
    [2, 1]
    """

    classes: list[str] | None = None
    description: dict[str, Any] = {}

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, start: int, stop: int) -> Any:
        """Samples ``[start, stop)`` collated as one batch (a tensor, tuple or dict, maybe with labels)."""
        raise NotImplementedError

    def chunks(self, batch_size: int) -> int:
        """How many chunks of ``batch_size`` samples the data set makes."""
        return -(-len(self) // batch_size)

    def chunk(self, index: int, batch_size: int) -> Chunk:
        """Chunk ``index``: samples ``index * batch_size`` up to ``(index + 1) * batch_size``."""
        start = index * batch_size
        stop = min(start + batch_size, len(self))
        if not 0 <= start < stop:
            raise IndexError(f"chunk {index} is outside a data set of {len(self)} samples in chunks of {batch_size}")
        inputs, labels, kind, attributed = split_batch(self.read(start, stop))
        return Chunk(index, start, inputs, labels, kind, attributed)


class DatasetSource(Source):
    """A map-style dataset, collated by ``collate`` (default: torch's ``default_collate``)."""

    def __init__(self, dataset: Dataset, collate: Any = None, what: str = "Dataset") -> None:
        if isinstance(dataset, IterableDataset):
            raise TypeError(
                f"an IterableDataset cannot be read by position, so an interrupted run could not recompute a chunk; "
                f"give a map-style {what} (with __getitem__ and __len__)"
            )
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"the {what} has no length; a run needs len(dataset) to split it into chunks")
        self.dataset, self.collate = dataset, collate or default_collate
        self.description = {"source": what, "type": type(dataset).__qualname__}

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, start: int, stop: int) -> Any:
        return self.collate([self.dataset[i] for i in range(start, stop)])


class TensorSource(Source):
    """Tensors already in memory: inputs (a tensor, tuple or dict) and optional labels."""

    def __init__(self, inputs: Any, labels: torch.Tensor | None = None, classes: list[str] | None = None,
                 description: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.inputs, self.labels, self.classes = inputs, labels, classes
        self.description = description or {"source": "tensors"}
        self.n = _length(inputs)
        if labels is not None and len(labels) != self.n:
            raise ValueError(f"{len(labels)} labels for {self.n} samples; give one label per sample")

    def __len__(self) -> int:
        return self.n

    def read(self, start: int, stop: int) -> Any:
        part = _rows(self.inputs, start, stop)
        return part if self.labels is None else (part, self.labels[start:stop])


class FolderSource(Source):
    """Images in a folder, read as ``saliencelab explain`` reads them (:func:`saliencelab.io.load_inputs`).

    Files directly in the folder have no label; images in subfolders are
    labelled by their subfolder, the classes being the subfolders' sorted names.
    """

    def __init__(self, path: str | Path, model: Any, *, grey: bool | None = None,
                 size: tuple[int, int] | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:  # fmt: skip
        from saliencelab.io.inputs import IMAGE_SUFFIXES

        root = Path(path)
        if not root.is_dir():
            raise ValueError(f"data folder {root} does not exist; give a folder of images or a zoo data set name")
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise ValueError(f"data folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        nested = [p for p in images if p.parent != root]
        if nested and len(nested) != len(images):
            raise ValueError(
                f"data folder {root} mixes images at its top level with images in subfolders; put every image in a "
                "class subfolder (labelled runs) or all at the top level (unlabelled)"
            )
        self.classes = sorted({p.relative_to(root).parts[0] for p in nested}) or None
        self.paths, self.root, self.model = images, root, model
        self.reading = {"grey": grey, "size": size, "mean": mean, "std": std}
        listed = {key: list(value) if isinstance(value, Sequence) else value for key, value in self.reading.items()}
        self.description = {"source": "folder", "path": str(root), "files": len(images), **listed}

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, start: int, stop: int) -> Any:
        from saliencelab.io.inputs import load_inputs

        paths = self.paths[start:stop]
        loaded = load_inputs(paths, self.model, **self.reading)
        shapes = {tuple(item.inputs.shape[1:]) for item in loaded}
        if len(shapes) > 1:
            raise ValueError(
                f"the images of {self.root} have different sizes {sorted(shapes)}; give size=(H, W) "
                "(--size H W on the command line) to resize them all"
            )
        images = torch.cat([item.inputs for item in loaded])
        if self.classes is None:
            return images
        labels = torch.tensor([self.classes.index(p.relative_to(self.root).parts[0]) for p in paths])
        return images, labels


def folder(path: str | Path, model: Any, *, grey: bool | None = None, size: tuple[int, int] | None = None,
           mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> FolderSource:  # fmt: skip
    """A folder of images as a run's data, with the command line's reading options.

    Images are read in grey or RGB as the model's first convolution takes them
    (``grey`` overrides), resized to ``size`` ``(H, W)`` and normalised by
    ``mean`` and ``std``. Images in subfolders are labelled by subfolder.

    Example
    -------
    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("a", "b"):
    ...     (root / name).mkdir()
    ...     Image.new("L", (8, 8), 255).save(root / name / "x.png")
    >>> source = folder(root, torch.nn.Conv2d(1, 2, 3))
    >>> len(source), source.classes, source.chunk(0, 2).labels.tolist()
    (2, ['a', 'b'], [0, 1])
    """
    return FolderSource(path, model, grey=grey, size=size, mean=mean, std=std)


def zoo_source(name: str) -> TensorSource:
    """A zoo data set as a run's data: ``"NAME"`` (its test split), ``"NAME:train"`` or ``"NAME:all"`` (train, test).

    Example
    -------
    >>> source = zoo_source("digits")
    >>> len(source), source.classes[:3], len(zoo_source("digits:all"))
    (450, ['0', '1', '2'], 1797)
    """
    from saliencelab import zoo

    base, _, split = name.partition(":")
    split = split or "test"
    if split not in ZOO_SPLITS:
        raise ValueError(f"unknown split {split!r} in {name!r}; use NAME, NAME:train or NAME:all")
    if base not in zoo.available_datasets():
        raise ValueError(
            f"unknown data {name!r}: not a folder, and not a zoo data set ({', '.join(zoo.available_datasets())})"
        )
    x_train, y_train, x_test, y_test = zoo.dataset(base)
    x, y = {"test": (x_test, y_test), "train": (x_train, y_train),
            "all": (torch.cat([x_train, x_test]), torch.cat([y_train, y_test]))}[split]  # fmt: skip
    return TensorSource(x, y, ZOO_CLASSES.get(base), {"source": "zoo", "name": base, "split": split})


def as_source(data: Any, model: Any = None) -> Source:
    """The run's :class:`Source` for ``data``: a Source, Dataset, DataLoader, tensors, folder path or zoo name.

    Example
    -------
    >>> len(as_source("digits")), len(as_source((torch.ones(4, 2), torch.zeros(4, 3))))
    (450, 4)
    >>> loader = DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)), shuffle=True)
    >>> as_source(loader)
    Traceback (most recent call last):
    ...
    ValueError: the DataLoader shuffles: a run reads samples in their data set order, ...
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, DataLoader):
        return _loader_source(data)
    if isinstance(data, Dataset):
        return DatasetSource(data)
    if isinstance(data, (str, Path)):
        if Path(data).is_dir():
            return folder(data, model)
        return zoo_source(str(data))
    if isinstance(data, (torch.Tensor, tuple, list, Mapping)):
        return TensorSource(data)
    raise TypeError(
        f"data must be a Dataset, a DataLoader, tensors, a folder of images or a zoo data set name; "
        f"got {type(data).__name__}"
    )


def _loader_source(loader: DataLoader) -> DatasetSource:
    """A DataLoader's dataset and collate function; its own batching is replaced by the run's chunks."""
    if isinstance(loader.dataset, IterableDataset):
        return DatasetSource(loader.dataset, what="DataLoader's dataset")  # raises, naming the problem
    if not isinstance(loader.sampler, SequentialSampler):
        shuffles = isinstance(loader.sampler, torch.utils.data.RandomSampler)
        raise ValueError(
            f"the DataLoader {'shuffles' if shuffles else f'draws with a {type(loader.sampler).__name__}'}: a run "
            "reads samples in their data set order, chunk by chunk, so that an interrupted run can recompute any "
            "chunk; pass a DataLoader with shuffle=False and no sampler, or the dataset itself"
        )
    if loader.batch_sampler is not None and type(loader.batch_sampler) is not torch.utils.data.BatchSampler:
        raise ValueError("the DataLoader has a custom batch_sampler; a run batches by itself: pass the dataset")
    return DatasetSource(loader.dataset, loader.collate_fn, what="DataLoader")


def split_batch(batch: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, str, tuple[str, ...]]:
    """A collated batch as ``(inputs by name, labels or None, kind, attributed names)``.

    Example
    -------
    >>> inputs, labels, kind, attributed = split_batch(((torch.ones(2, 3), torch.ones(2, 1)), torch.tensor([1, 0])))
    >>> list(inputs), labels.tolist(), kind, attributed
    (['input_0', 'input_1'], [1, 0], 'tuple', ('input_0', 'input_1'))
    >>> ids = {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 4), "label": [0, 1]}
    >>> split_batch(ids)[2:]
    ('dict', ('input_ids',))
    """
    labels = None
    if isinstance(batch, Mapping):
        found = [key for key in LABEL_KEYS if key in batch]
        if found:
            labels = batch[found[0]]
            batch = {key: value for key, value in batch.items() if key != found[0]}
    elif isinstance(batch, (tuple, list)) and len(batch) == 2 and _is_labels(batch[1], _length(batch[0])):
        batch, labels = batch
    if isinstance(batch, torch.Tensor):
        inputs, kind, attributed = {"input": batch}, "tensor", ("input",)
    elif isinstance(batch, (tuple, list)) and len(batch) == 1 and isinstance(batch[0], torch.Tensor):
        inputs, kind, attributed = {"input": batch[0]}, "tensor", ("input",)  # TensorDataset of inputs only
    elif isinstance(batch, (tuple, list)):
        inputs = {f"input_{i}": _tensor(part, f"input {i}") for i, part in enumerate(batch)}
        kind, attributed = "tuple", tuple(inputs)
    elif isinstance(batch, Mapping):
        inputs = {str(key): _tensor(value, repr(key)) for key, value in batch.items()}
        kind, attributed = "dict", tuple(name for name in inputs if name not in FORWARDED)
    else:
        raise TypeError(
            f"a sample must be a tensor, a tuple or dict of tensors, or (inputs, label); got {type(batch).__name__}"
        )
    if not attributed:
        raise ValueError(f"the samples hold only {', '.join(inputs)}, which are passed on, not attributed")
    sizes = {name: value.shape[0] if value.ndim else 0 for name, value in inputs.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the inputs of a batch have different numbers of samples: {sizes}")
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.is_floating_point() or labels.shape != (next(iter(sizes.values())),):
            raise ValueError(
                f"labels must be one integer class per sample; got {labels.dtype} of shape {tuple(labels.shape)}"
            )
        labels = labels.long()
    return inputs, labels, kind, attributed


def _is_labels(value: Any, n: int | None) -> bool:
    """Whether ``value`` is one integer per sample: a label column, not an input."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        value = torch.tensor(value)
    return isinstance(value, torch.Tensor) and value.shape == (n,) and not value.is_floating_point()


def _tensor(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"the input {name} is a {type(value).__name__}; every input must be a tensor")
    return value


def _length(inputs: Any) -> int | None:
    """The number of samples of a tensor, or of the first tensor of a tuple or dict."""
    if isinstance(inputs, torch.Tensor):
        return inputs.shape[0] if inputs.ndim else None
    if isinstance(inputs, Mapping):
        inputs = list(inputs.values())
    if isinstance(inputs, (tuple, list)) and inputs and isinstance(inputs[0], torch.Tensor):
        return _length(inputs[0])
    return None


def _rows(inputs: Any, start: int, stop: int) -> Any:
    """Samples ``[start, stop)`` of a tensor, tuple or dict of tensors."""
    if isinstance(inputs, torch.Tensor):
        return inputs[start:stop]
    if isinstance(inputs, Mapping):
        return {key: value[start:stop] for key, value in inputs.items()}
    return tuple(value[start:stop] for value in inputs)
