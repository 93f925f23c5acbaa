"""Several inputs and extra forward arguments: one flat batch for the methods, the user's structure for the model.

A model may take a tensor, several tensors (``model(*inputs)``) or keywords
(``model(**inputs)``), plus arguments that are not attributed (Captum's
``additional_forward_args``). The methods work on one batch: :class:`InputStructure`
packs the attributed parts side by side as ``(N, D)`` (each part flattened) and
unpacks results into the same structure; :class:`StructuredModel` is the model
the methods call, which splits a packed batch into the parts and adds the extra
arguments.

An extra argument that is a tensor whose first dimension is the batch size
belongs to the samples: when a method evaluates several rows per sample (the
steps of a path, noisy copies, perturbations), each row gets the argument of its
sample. The methods say which sample each row belongs to (:func:`rows_of`); a
model call without that answer is an error, never a guess.

Example
-------
>>> import torch
>>> inputs = (torch.ones(2, 3), torch.zeros(2, 1, 2))
>>> structure = InputStructure.of(inputs)
>>> flat = structure.pack(inputs)
>>> flat.shape, [tuple(p.shape) for p in structure.unpack(flat)]
(torch.Size([2, 5]), [(2, 3), (2, 1, 2)])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch

_ROWS: ContextVar[torch.Tensor | None] = ContextVar("saliencelab_rows", default=None)

Structured = torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor]


@contextmanager
def rows_of(samples: torch.Tensor | None) -> Iterator[None]:
    """Within the block, in this thread, the model calls evaluate rows of these samples (``samples[r]`` for row r).

    Inside another such block (a method that runs another on rows of its own, as
    SmoothGrad does on noisy copies), ``samples`` index the outer rows, and the
    samples are those of the outer rows. ``None``: the rows are unknown.

    Example
    -------
    >>> with rows_of(torch.tensor([0, 0, 1])):
    ...     current_rows().tolist()
    [0, 0, 1]
    >>> with rows_of(torch.tensor([4, 5])), rows_of(torch.tensor([1, 1, 0])):
    ...     current_rows().tolist()
    [5, 5, 4]
    """
    outer = _ROWS.get()
    if outer is not None and samples is not None:
        samples = outer[samples.to(outer.device)]
    token = _ROWS.set(samples)
    try:
        yield
    finally:
        _ROWS.reset(token)


def current_rows() -> torch.Tensor | None:
    """The samples of the rows being evaluated (see :func:`rows_of`), or ``None`` when the caller did not say.

    Example
    -------
    >>> current_rows() is None
    True
    """
    return _ROWS.get()


@dataclass(frozen=True)
class Part:
    """One attributed input: its key (position or name), its shape without the batch, its dtype."""

    key: int | str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def size(self) -> int:
        """Features per sample."""
        return int(torch.Size(self.shape).numel())


@dataclass(frozen=True)
class InputStructure:
    """How the user's inputs are laid out: ``"tensor"``, ``"sequence"`` (``model(*inputs)``) or ``"mapping"``.

    Example
    -------
    >>> s = InputStructure.of({"image": torch.ones(4, 1, 2, 2), "age": torch.ones(4, 1)})
    >>> s.kind, [p.key for p in s.parts], s.batch
    ('mapping', ['image', 'age'], 4)
    """

    kind: str
    parts: tuple[Part, ...]
    batch: int
    fallback: torch.dtype = torch.float32
    """The dtype integer inputs (token ids) are packed in when no input is floating: the model's."""

    @classmethod
    def of(cls, inputs: object, fallback: torch.dtype = torch.float32) -> InputStructure:
        """The structure of ``inputs``, checked: tensors only, at least one, one batch size for all."""
        if isinstance(inputs, torch.Tensor):
            items, kind = [(0, inputs)], "tensor"
        elif isinstance(inputs, Mapping):
            items, kind = list(inputs.items()), "mapping"
            if not all(isinstance(key, str) for key, _ in items):
                raise TypeError("a dict of inputs needs string keys: the model is called model(**inputs)")
        elif isinstance(inputs, (tuple, list)):
            items, kind = list(enumerate(inputs)), "sequence"
        else:
            raise TypeError(
                f"inputs must be a tensor, a tuple or list of tensors (model(*inputs)) or a dict of tensors "
                f"(model(**inputs)); got {type(inputs).__name__}"
            )
        if not items:
            raise ValueError("inputs are empty: give at least one tensor to attribute")
        for key, value in items:
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"input {key!r} is a {type(value).__name__}, not a tensor; pass values that are not "
                    "attributed with forward_args="
                )
            if value.ndim == 0:
                raise ValueError(f"input {key!r} is a scalar; every input needs a batch dimension first, (N, ...)")
        sizes = {value.shape[0] for _, value in items}
        if len(sizes) != 1:
            shapes = ", ".join(f"{key!r}: {tuple(value.shape)}" for key, value in items)
            raise ValueError(f"the inputs disagree on the batch size (first dimension): {shapes}")
        parts = tuple(Part(key, tuple(value.shape[1:]), value.dtype) for key, value in items)
        return cls(kind, parts, sizes.pop(), fallback)

    @property
    def packed(self) -> bool:
        """Whether the methods see a packed ``(N, D)`` batch (several inputs) rather than the tensor itself."""
        return self.kind != "tensor"

    @property
    def integers(self) -> bool:
        """Whether some input holds integers (token ids): the methods see them as floats, the model as integers."""
        return any(not part.dtype.is_floating_point for part in self.parts)

    def tensors(self, inputs: Structured) -> list[torch.Tensor]:
        """The parts of ``inputs`` (which has this structure) in order."""
        if self.kind == "tensor":
            return [inputs]
        if self.kind == "mapping":
            return [inputs[part.key] for part in self.parts]
        return list(inputs)

    def pack(self, inputs: Structured, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The parts side by side, each flattened: ``(N, D)`` in ``dtype`` (default: :meth:`packed_dtype`)."""
        dtype = dtype or self.packed_dtype()
        if not self.packed:
            return inputs.to(dtype) if self.integers else inputs
        return torch.cat([part.reshape(part.shape[0], -1).to(dtype) for part in self.tensors(inputs)], dim=1)

    def packed_dtype(self) -> torch.dtype:
        """The widest floating dtype of the parts (:attr:`fallback` when none is floating)."""
        floating = [part.dtype for part in self.parts if part.dtype.is_floating_point]
        if not floating:
            return self.fallback
        widest = floating[0]
        for dtype in floating[1:]:
            widest = torch.promote_types(widest, dtype)
        return widest

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A packed batch ``(rows, D)`` as the parts, each in its shape and dtype (integers rounded back)."""
        if not self.packed:
            pieces = [flat]
        else:
            pieces = flat.split([part.size for part in self.parts], dim=1)
        out = []
        for part, piece in zip(self.parts, pieces, strict=True):
            piece = piece.reshape(piece.shape[0], *part.shape)
            if not part.dtype.is_floating_point:
                piece = piece.detach().round()
            out.append(piece.to(part.dtype))
        return out

    def unpack(self, flat: torch.Tensor) -> Structured:
        """A packed result as the user's structure (a tuple for a sequence), each part in its shape."""
        if not self.packed:
            return flat
        pieces = [
            piece.reshape(piece.shape[0], *part.shape)
            for part, piece in zip(self.parts, flat.split([p.size for p in self.parts], dim=1), strict=True)
        ]
        if self.kind == "mapping":
            return {part.key: piece for part, piece in zip(self.parts, pieces, strict=True)}
        return tuple(pieces)

    def arrange(self, values: Sequence[Any]) -> Structured:
        """One value per part (in order) in the user's structure."""
        if self.kind == "tensor":
            return values[0]
        if self.kind == "mapping":
            return {part.key: value for part, value in zip(self.parts, values, strict=True)}
        return tuple(values)

    def pack_masks(self, masks: list[object]) -> torch.Tensor:
        """Group ids given per input (each ``shape``, ``(1, *shape)`` or ``(N, *shape)``) packed like the inputs.

        Groups are shared across inputs by id: the same id in two inputs is one group.

        Example
        -------
        >>> s = InputStructure.of((torch.ones(2, 2), torch.ones(2, 1, 2)))
        >>> s.pack_masks([torch.tensor([0, 1]), torch.tensor([[[1, 2]]])]).tolist()
        [[0, 1, 1, 2]]
        """
        pieces = []
        for part, mask in zip(self.parts, masks, strict=True):
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"feature masks given per input must be tensors; input {part.key!r} has {mask!r}")
            if tuple(mask.shape) == part.shape:
                mask = mask.unsqueeze(0)
            if tuple(mask.shape[1:]) != part.shape or mask.shape[0] not in (1, self.batch):
                raise ValueError(
                    f"the feature mask of input {part.key!r} has shape {tuple(mask.shape)}; give {part.shape}, "
                    f"(1, *{part.shape}) or ({self.batch}, *{part.shape})"
                )
            pieces.append(mask)
        rows = max(mask.shape[0] for mask in pieces)
        return torch.cat([mask.expand(rows, *mask.shape[1:]).reshape(rows, -1) for mask in pieces], dim=1)

    def parts_of(self, spec: object) -> list[object] | None:
        """``spec`` split per part when it has this structure (a tuple, list or dict like the inputs), else ``None``."""
        if not self.packed:
            return None
        if self.kind == "mapping" and isinstance(spec, Mapping):
            if set(spec) != {part.key for part in self.parts}:
                raise ValueError(
                    f"a dict given per input needs the inputs' keys {[p.key for p in self.parts]}; got {list(spec)}"
                )
            return [spec[part.key] for part in self.parts]
        if self.kind == "sequence" and isinstance(spec, (tuple, list)):
            if len(spec) != len(self.parts):
                count = len(self.parts)
                raise ValueError(f"a tuple given per input needs one entry per input ({count}); got {len(spec)}")
            return list(spec)
        return None


@dataclass(frozen=True)
class ForwardArgs:
    """Extra model arguments that are not attributed: positional ``args`` and keyword ``kwargs``.

    Example
    -------
    >>> extra = ForwardArgs.of({"mask": torch.ones(2, 3)}, batch=2)
    >>> extra.per_sample, list(extra.kwargs)
    (True, ['mask'])
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    batch: int

    @classmethod
    def of(cls, forward_args: object, batch: int) -> ForwardArgs:
        """Captum's ``additional_forward_args``: a tuple (positional), a dict (keywords), or one value."""
        if forward_args is None:
            return cls((), {}, batch)
        if isinstance(forward_args, Mapping):
            if not all(isinstance(key, str) for key in forward_args):
                raise TypeError("forward_args given as a dict needs string keys: they are keyword arguments")
            return cls((), dict(forward_args), batch)
        if isinstance(forward_args, (tuple, list)):
            return cls(tuple(forward_args), {}, batch)
        return cls((forward_args,), {}, batch)

    def _aligned(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == self.batch

    @property
    def per_sample(self) -> bool:
        """Whether any argument is a tensor with one row per sample (its rows follow the evaluated rows)."""
        return any(self._aligned(value) for value in (*self.args, *self.kwargs.values()))

    def for_rows(self, rows: torch.Tensor | None, method: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments for a call on rows of the samples ``rows``: per-sample tensors indexed, others as given."""
        if not self.per_sample:
            return self.args, self.kwargs
        if rows is None:
            raise NotImplementedError(
                f"{method} evaluated the model without saying which sample each row belongs to, so forward "
                "arguments with one row per sample cannot follow them; pass them without a batch dimension, or use "
                "a method that supports them (gradient, gradient_x_input, integrated_gradients, deeplift, lrp, the "
                "perturbation methods)"
            )

        def pick(value: Any) -> Any:
            return value[rows.to(value.device)] if self._aligned(value) else value

        return tuple(pick(v) for v in self.args), {key: pick(v) for key, v in self.kwargs.items()}


class StructuredModel:
    """The model as the methods call it: one batch in (packed for several inputs), the user's call inside.

    Example
    -------
    >>> import torch
    >>> model = lambda a, b, scale=1.0: (a.sum(1) + b.sum(1, keepdim=True).squeeze(1))[:, None] * scale
    >>> inputs = (torch.ones(2, 3), torch.ones(2, 2))
    >>> structure = InputStructure.of(inputs)
    >>> wrapped = StructuredModel(model, structure, ForwardArgs.of({"scale": 2.0}, 2), "demo")
    >>> wrapped(structure.pack(inputs)).tolist()
    [[10.0], [10.0]]
    """

    def __init__(self, model: Any, structure: InputStructure, extra: ForwardArgs, method: str) -> None:
        self.model, self.structure, self.extra, self.method = model, structure, extra, method

    @property
    def needs_rows(self) -> bool:
        """Whether each call must say which sample its rows belong to (see :func:`rows_of`)."""
        return self.extra.per_sample

    def __call__(self, batch: torch.Tensor) -> Any:
        args, kwargs = self.extra.for_rows(current_rows(), self.method)
        parts = self.structure.split(batch)
        if self.structure.kind == "mapping":
            named = {part.key: value for part, value in zip(self.structure.parts, parts, strict=True)}
            clash = set(named) & set(kwargs)
            if clash:
                raise ValueError(f"forward_args repeats the inputs {sorted(clash)}; give each argument once")
            return self.model(*args, **named, **kwargs)
        return self.model(*parts, *args, **kwargs)
