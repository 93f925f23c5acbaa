"""Turning the user's ``baseline`` into reference inputs.

A baseline is a tensor broadcastable to the inputs, a number, a named preset
(``"zeros"``, ``"min"``, ``"mean"``, ``"blur"``, ``"uniform"``), a callable
``inputs -> tensor``, or a batch of K references (:func:`references`) for
methods that average over a reference distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from saliencelab.core.structure import InputStructure

PRESETS = ("zeros", "min", "mean", "blur", "uniform")


class References:
    """Marks a batch of K reference inputs, shape ``(K, *feature_shape)``.

    Methods that take one baseline per sample average over the K references when
    given this (Integrated Gradients with several baselines, DeepSHAP); Expected
    Gradients and GradientSHAP draw from them. With ``per_sample=True`` the
    tensor has shape ``(N, K, *feature_shape)``: K references for each sample
    (e.g. shuffles of each sequence, see :mod:`saliencelab.genomics`).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> refs = sl.references(torch.zeros(5, 3))
    >>> refs.tensor.shape
    torch.Size([5, 3])
    """

    def __init__(self, tensor: torch.Tensor, per_sample: bool = False) -> None:
        least = 2 if per_sample else 1
        shape = "(N, K, *feature_shape)" if per_sample else "(K, *feature_shape)"
        if not isinstance(tensor, torch.Tensor) or tensor.ndim < least:
            raise ValueError(f"references must be a tensor of shape {shape} with K >= 1")
        _require_references(tensor, f"shape {shape} with K >= 1")
        self.tensor = tensor
        self.per_sample = per_sample


def references(tensor: torch.Tensor, per_sample: bool = False) -> References:
    """Wrap a batch of K reference inputs (see :class:`References`).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> sl.references(torch.rand(4, 1, 8, 8)).tensor.shape[0]
    4
    """
    return References(tensor, per_sample)


BaselineSpec = torch.Tensor | float | int | str | Callable[[torch.Tensor], torch.Tensor] | References | None


@dataclass(frozen=True)
class ReferenceSet:
    """Reference inputs for a batch: ``tensor`` has shape ``(Nb, K, *feature_shape)``.

    ``Nb`` is 1 when all samples share the references and N when each sample has
    its own; K is the number of references per sample.

    Example
    -------
    >>> refs = ReferenceSet(torch.zeros(1, 3, 2))
    >>> refs.k, refs.rows(torch.tensor([0, 4]), torch.tensor([2, 1])).shape
    (3, torch.Size([2, 2]))
    """

    tensor: torch.Tensor

    @property
    def k(self) -> int:
        return self.tensor.shape[1]

    def rows(self, sample_index: torch.Tensor, reference_index: torch.Tensor) -> torch.Tensor:
        """Reference ``reference_index[r]`` of sample ``sample_index[r]`` for each row r."""
        per_sample = sample_index if self.tensor.shape[0] > 1 else torch.zeros_like(sample_index)
        return self.tensor[per_sample, reference_index]

    def of_samples(self, sample_index: torch.Tensor) -> ReferenceSet:
        """The references of the samples ``sample_index`` only."""
        return ReferenceSet(self.tensor[sample_index]) if self.tensor.shape[0] > 1 else self


def pack_references(parts: Sequence[torch.Tensor], structure: InputStructure) -> BaselineSpec:
    """Resolved references of several inputs, each ``(Nb, K, *shape)``, packed like the inputs.

    One reference per sample (K = 1) becomes a tensor ``(Nb, D)``; K references
    become :class:`References`, per sample when any input has its own.

    Example
    -------
    >>> from saliencelab.core.structure import InputStructure
    >>> structure = InputStructure.of((torch.ones(2, 3), torch.ones(2, 1)))
    >>> pack_references([torch.zeros(1, 1, 3), torch.full((2, 1, 1), 5.0)], structure)
    tensor([[0., 0., 0., 5.],
            [0., 0., 0., 5.]])
    """
    counts = {part.shape[1] for part in parts}
    if len(counts - {1}) > 1:
        raise ValueError(f"the inputs' baselines hold different numbers of references {sorted(counts)}; give each K")
    k = max(counts)
    rows = max(part.shape[0] for part in parts)
    dtype = structure.packed_dtype()
    packed = torch.cat(
        [part.expand(rows, k, *part.shape[2:]).reshape(rows, k, -1).to(dtype) for part in parts], dim=2
    )
    if k == 1:
        return packed[:, 0]
    return References(packed, per_sample=True) if rows > 1 else References(packed[0])


def resolve_baseline(
    baseline: BaselineSpec,
    inputs: torch.Tensor,
    *,
    seed: int = 0,
    distribution: bool = False,
) -> ReferenceSet:
    """Resolve ``baseline`` into a :class:`ReferenceSet` for ``inputs``.

    Parameters
    ----------
    baseline:
        See the module docstring. ``None`` means ``"zeros"`` unless ``distribution``.
    inputs:
        The batch being explained, shape ``(N, *feature_shape)``.
    seed:
        Seed of the ``"uniform"`` preset.
    distribution:
        True for methods that draw from a reference distribution: then a tensor
        with the inputs' number of dimensions is a batch of K references.

    Example
    -------
    >>> x = torch.tensor([[1.0, 3.0], [2.0, 6.0]])
    >>> resolve_baseline("min", x).tensor.squeeze(1)
    tensor([[1., 1.],
            [2., 2.]])
    >>> resolve_baseline(0.5, x).tensor.shape  # shared by all samples
    torch.Size([1, 1, 2])
    """
    if baseline is None:
        if distribution:
            raise ValueError(
                "this method draws references from a distribution: pass baseline= a batch of "
                "reference inputs, e.g. baseline=X_train[:100] (shape (K, *feature_shape))"
            )
        baseline = "zeros"
    if isinstance(baseline, References):
        if baseline.per_sample:
            return ReferenceSet(_check_per_sample_references(baseline.tensor, inputs))
        return ReferenceSet(_check_references(baseline.tensor, inputs).unsqueeze(0))
    if isinstance(baseline, str):
        return ReferenceSet(_preset(baseline, inputs, seed).unsqueeze(1))
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        dtype = inputs.dtype if inputs.is_floating_point() else torch.get_default_dtype()
        return ReferenceSet(_per_sample(torch.tensor(float(baseline), dtype=dtype), inputs).unsqueeze(1))
    if callable(baseline) and not isinstance(baseline, torch.Tensor):
        produced = baseline(inputs)
        if isinstance(produced, References):
            return resolve_baseline(produced, inputs, seed=seed)
        if not isinstance(produced, torch.Tensor):
            raise ValueError(f"the baseline callable must return a tensor; it returned {type(produced).__name__}")
        return ReferenceSet(_per_sample(produced, inputs).unsqueeze(1))
    if isinstance(baseline, torch.Tensor):
        if distribution and baseline.ndim == inputs.ndim:
            return ReferenceSet(_check_references(baseline, inputs).unsqueeze(0))
        return ReferenceSet(_per_sample(baseline, inputs).unsqueeze(1))
    raise TypeError(
        f"baseline must be a tensor, a number, one of {PRESETS}, a callable or sl.references(...); "
        f"got {type(baseline).__name__}"
    )


def _require_references(tensor: torch.Tensor, expected: str) -> None:
    """Reject an empty batch of references (K = 0); ``expected`` says what to pass instead.

    Example
    -------
    >>> _require_references(torch.zeros(0, 3), "shape (K, 3) with K >= 1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the reference batch is empty (shape (0, 3)); pass at least one reference input: ...
    """
    if tensor.numel() == 0:
        raise ValueError(
            f"the reference batch is empty (shape {tuple(tensor.shape)}); pass at least one reference input: "
            f"{expected}, e.g. baseline=X_train[:100]"
        )


def _per_sample(baseline: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """The baseline as ``(1, *features)`` when all samples share it, else ``(N, *features)``."""
    _require_references(baseline, f"a tensor broadcastable to the inputs' shape {tuple(inputs.shape)}")
    baseline = _finite(baseline.to(device=inputs.device, dtype=inputs.dtype), "baseline")
    try:
        shape = torch.broadcast_shapes(baseline.shape, inputs.shape)
    except RuntimeError:
        shape = None
    if shape != inputs.shape:
        raise ValueError(
            f"a baseline of shape {tuple(baseline.shape)} does not broadcast to the inputs' shape "
            f"{tuple(inputs.shape)}; pass a tensor broadcastable to the inputs, or "
            "sl.references(tensor) for a batch of K reference inputs of shape (K, *feature_shape)"
        )
    shared = baseline.ndim < inputs.ndim or baseline.shape[0] == 1
    return baseline.expand((1, *inputs.shape[1:]) if shared else inputs.shape)


def _check_references(refs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    _require_references(refs, f"shape (K, {', '.join(map(str, inputs.shape[1:]))}) with K >= 1")
    refs = _finite(refs.to(device=inputs.device, dtype=inputs.dtype), "references")
    if refs.shape[1:] != inputs.shape[1:]:
        raise ValueError(
            f"references of shape {tuple(refs.shape)} do not match the inputs' feature shape "
            f"{tuple(inputs.shape[1:])}; references must have shape (K, {', '.join(map(str, inputs.shape[1:]))})"
        )
    return refs


def _check_per_sample_references(refs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    _require_references(refs, f"shape ({inputs.shape[0]}, K, {', '.join(map(str, inputs.shape[1:]))}) with K >= 1")
    refs = _finite(refs.to(device=inputs.device, dtype=inputs.dtype), "references")
    if refs.shape[0] != inputs.shape[0] or refs.shape[2:] != inputs.shape[1:]:
        raise ValueError(
            f"per-sample references of shape {tuple(refs.shape)} do not match the inputs of shape "
            f"{tuple(inputs.shape)}; they must have shape ({inputs.shape[0]}, K, "
            f"{', '.join(map(str, inputs.shape[1:]))})"
        )
    return refs


def _finite(tensor: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(tensor).all():
        raise ValueError(f"the {what} contain NaN or Inf values; replace them with finite numbers")
    return tensor


def _reduce_dims(inputs: torch.Tensor) -> tuple[int, ...]:
    """Per-sample statistics are taken per channel for (N, C, ...) inputs, else over all features."""
    start = 2 if inputs.ndim >= 3 else 1
    return tuple(range(start, inputs.ndim))


def _preset(name: str, inputs: torch.Tensor, seed: int) -> torch.Tensor:
    dims = _reduce_dims(inputs)
    if name == "zeros":
        return inputs.new_zeros((1, *inputs.shape[1:]))
    if name == "min":
        return inputs.amin(dim=dims, keepdim=True).expand_as(inputs)
    if name == "mean":
        return inputs.mean(dim=dims, keepdim=True).expand_as(inputs)
    if name == "uniform":
        low = inputs.amin(dim=tuple(range(1, inputs.ndim)), keepdim=True)
        high = inputs.amax(dim=tuple(range(1, inputs.ndim)), keepdim=True)
        generator = torch.Generator(device=inputs.device).manual_seed(seed)
        noise = torch.rand(inputs.shape[1:], generator=generator, device=inputs.device, dtype=inputs.dtype)
        return low + (high - low) * noise
    if name == "blur":
        return gaussian_blur(inputs)
    raise ValueError(f"unknown baseline preset {name!r}; the presets are {', '.join(PRESETS)}")


def gaussian_blur(inputs: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """Blur each channel of ``(N, C, *spatial)`` inputs with a Gaussian over the spatial dims.

    ``sigma`` defaults to an eighth of the smallest spatial size (at least 1 pixel),
    which removes the detail of the image but keeps its coarse layout.

    Example
    -------
    >>> x = torch.zeros(1, 1, 9, 9); x[0, 0, 4, 4] = 1.0
    >>> blurred = gaussian_blur(x, sigma=1.0)
    >>> round(float(blurred.sum()), 4), float(blurred.max()) < 1.0
    (1.0, True)
    """
    if inputs.ndim < 3:
        raise ValueError(f"the 'blur' baseline needs inputs of shape (N, C, *spatial); got {tuple(inputs.shape)}")
    spatial = inputs.shape[2:]
    if sigma is None:
        sigma = max(1.0, min(spatial) / 8)
    out = inputs
    for axis, size in enumerate(spatial):
        radius = min(int(3 * sigma), size - 1)
        offsets = torch.arange(-radius, radius + 1, device=inputs.device, dtype=inputs.dtype)
        kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
        kernel = kernel / kernel.sum()
        moved = out.movedim(2 + axis, -1)
        flat = moved.reshape(-1, 1, size)
        padded = F.pad(flat, (radius, radius), mode="reflect") if radius > 0 else flat
        blurred = F.conv1d(padded, kernel.view(1, 1, -1)).reshape(moved.shape)
        out = blurred.movedim(-1, 2 + axis)
    return out
