"""Turning the user's ``target`` into per-sample scores to explain.

A target is an ``int`` (one class for every sample), a sequence or tensor of
ints (one class per sample), a callable ``output -> (N,)`` (regression,
segmentation, multi-label, embeddings), or ``None`` (the argmax class).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from saliencelab.engine.intercept import unintercepted

TargetFn = Callable[[torch.Tensor], torch.Tensor]
TargetSpec = int | Sequence[int] | torch.Tensor | TargetFn | None


@dataclass(frozen=True)
class Target:
    """A target prepared for a batch of N samples.

    ``classes`` holds one class index per sample, ``fn`` a callable target, and
    ``argmax`` marks a target still to be read off the model's output. Neither set
    means the model already returns one score per sample. :meth:`bind` checks the
    target against an output and fixes the argmax; :meth:`scores` then selects the
    score of each row. ``sample`` (set by :meth:`rows` for a callable) names the
    sample each row explains, so that errors about a row's score name its sample.

    Example
    -------
    >>> t = prepare_target([2, 0], n=2).bind(torch.zeros(2, 3))
    >>> t.scores(torch.arange(6.0).reshape(2, 3))
    tensor([2., 3.])
    """

    classes: torch.Tensor | None = None
    fn: TargetFn | None = None
    argmax: bool = False
    sample: torch.Tensor | None = None

    def rows(self, sample_index: torch.Tensor) -> Target:
        """The target of rows that repeat samples: row ``r`` explains sample ``sample_index[r]``."""
        if self.fn is not None:
            index = sample_index.cpu()
            return Target(fn=self.fn, sample=index if self.sample is None else self.sample[index])
        if self.classes is None:
            return self
        return Target(classes=self.classes[sample_index.to(self.classes.device)])

    def bind(self, output: torch.Tensor) -> Target:
        """Check the target against the model's output for these rows; resolve the argmax."""
        _check_output(output)
        if self.fn is not None:
            return self
        if self.argmax:
            if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
                return Target()
            _check_indexable(output, "target=None (the argmax class)")
            return Target(classes=output.detach().argmax(dim=1))
        if self.classes is None:
            if output.ndim > 2 or (output.ndim == 2 and output.shape[1] != 1):
                raise ValueError(f"the model output has shape {tuple(output.shape)}; pass a target")
            return self
        _check_indexable(output, "a class target")
        n_classes = output.shape[1]
        classes = self.classes.tolist()  # one copy, then Python: no tensor operation per check
        if classes and (min(classes) < 0 or max(classes) >= n_classes):
            first = next(c for c in classes if not 0 <= c < n_classes)
            raise ValueError(
                f"target {first} is out of range for a model with {n_classes} outputs; "
                f"valid class indices are 0..{n_classes - 1}"
            )
        return Target(classes=self.classes.to(output.device))

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        """The scalar score of each row of ``output`` that the bound target selects, shape ``(rows,)``."""
        _check_output(output)
        rows = output.shape[0]
        if self.fn is not None:
            scores = self.fn(output)
            if not isinstance(scores, torch.Tensor) or scores.shape != (rows,):
                got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
                raise ValueError(
                    f"the target callable must map the model output of shape {tuple(output.shape)} "
                    f"to one score per sample, shape ({rows},); it returned {got}"
                )
            return self._finite(scores)
        if self.argmax:
            raise RuntimeError("bind the target to the model output before selecting scores")
        if self.classes is None:
            return output.reshape(rows)
        return output.gather(1, self.classes.to(output.device).unsqueeze(1)).squeeze(1)

    def _finite(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` of a callable target, if all finite; else an error naming the samples."""
        with unintercepted():  # a check of the scores, not an operation of the model
            finite = torch.isfinite(scores)
        if bool(finite.all()):
            return scores
        bad = (~finite).nonzero().flatten().cpu()
        samples = bad if self.sample is None else self.sample[bad]
        raise ValueError(
            f"the target callable returned NaN or Inf scores for samples {sorted(set(samples.tolist()))}; "
            "attributions of a non-finite score are meaningless: make the target finite for these inputs "
            "(e.g. clamp probabilities before taking logs)"
        )

    def public(self) -> torch.Tensor | TargetFn | None:
        """What :class:`~saliencelab.Attribution` reports as ``target``."""
        return self.fn if self.fn is not None else self.classes


def reported_target(chunks: list[Target]) -> torch.Tensor | TargetFn | None:
    """What :class:`~saliencelab.Attribution` reports for a batch whose chunks were bound one by one.

    Example
    -------
    >>> reported_target([Target(classes=torch.tensor([1])), Target(classes=torch.tensor([0]))])
    tensor([1, 0])
    """
    if chunks[0].classes is not None:
        return chunks[0].classes if len(chunks) == 1 else torch.cat([chunk.classes for chunk in chunks])
    return chunks[0].public()


def prepare_target(target: TargetSpec | Target, n: int) -> Target:
    """Check the form of the user's ``target`` for a batch of ``n`` samples.

    Raises ``TypeError`` for a target of the wrong type and ``ValueError`` for the
    wrong number of targets; the class range is checked by :meth:`Target.bind`.

    Example
    -------
    >>> prepare_target(3, n=2).classes
    tensor([3, 3])
    """
    if isinstance(target, Target):
        return target
    if callable(target) and not isinstance(target, torch.Tensor):
        return Target(fn=target)
    if target is None:
        return Target(argmax=True)
    return Target(classes=_as_class_tensor(target, n))


def _check_output(output: object) -> None:
    if not isinstance(output, torch.Tensor):
        raise ValueError(
            f"the model returned a {type(output).__name__}, not a tensor; wrap the model so that "
            "it returns one tensor of scores, e.g. lambda x: model(x)['logits']"
        )
    if output.ndim == 0:
        raise ValueError("the model returned a scalar; it must return one output per sample (N, ...)")


def resolve_target(target: TargetSpec | Target, output: torch.Tensor) -> Target:
    """Prepare ``target`` and bind it to the model's ``output`` for the whole batch.

    Example
    -------
    >>> logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]])
    >>> resolve_target(None, logits).classes
    tensor([1, 0])
    >>> resolve_target(2, logits).classes
    tensor([2, 2])
    """
    _check_output(output)
    return prepare_target(target, output.shape[0]).bind(output)


def _as_class_tensor(target: object, n: int) -> torch.Tensor:
    if isinstance(target, bool) or isinstance(target, float):
        raise TypeError(f"target must be an int, a sequence of ints, a callable or None; got {target!r}")
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.long)
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise TypeError(f"a target tensor must hold integer class indices; got dtype {target.dtype}")
        classes = target.reshape(-1).long() if target.ndim <= 1 else None
        if classes is None:
            raise ValueError(f"a target tensor must have shape (N,); got {tuple(target.shape)}")
    elif isinstance(target, Sequence) and not isinstance(target, str):
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            raise TypeError(f"a target sequence must hold ints; got {list(target)!r}")
        classes = torch.tensor(list(target), dtype=torch.long)
    else:
        raise TypeError(f"target must be an int, a sequence of ints, a callable or None; got {type(target).__name__}")
    if classes.numel() == 1:
        return classes.expand(n).clone()
    if classes.numel() != n:
        raise ValueError(f"got {classes.numel()} targets for {n} samples; give one target per sample or one int")
    return classes


def _check_indexable(output: torch.Tensor, what: str) -> None:
    if output.ndim != 2:
        raise ValueError(
            f"{what} selects a class from a model output of shape (N, C), but the model returned "
            f"shape {tuple(output.shape)}; pass a callable target that maps the output to one "
            "score per sample, e.g. target=lambda out: out[:, 3].sum(dim=(1, 2))"
        )
