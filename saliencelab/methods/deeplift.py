"""DeepLIFT (Shrikumar et al. 2017) and DeepSHAP (Lundberg & Lee 2017).

DeepLIFT explains ``f(x) − f(x′)`` by contributions ``C_i = m_i · (x_i − x′_i)``
whose multipliers follow the chain rule through the linear rule, and the Rescale
or RevealCancel rule at each nonlinearity. Here the differences from the
reference are propagated through every operation the model calls (see
:mod:`saliencelab.engine.difference`), with the multipliers detached, and one
backward pass gives ``m``. Summation-to-delta, ``Σ_i C_i = f(x) − f(x′)``, then
holds exactly up to rounding on any model the rules cover; ``.delta`` reports the
gap per sample against a plain forward pass of the reference. Operations without
an exact rule raise :class:`~saliencelab.UnsupportedOperationError`.

DeepSHAP averages DeepLIFT over a background distribution of references.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec, ReferenceSet, resolve_baseline
from saliencelab.core.registry import register
from saliencelab.core.targets import Target
from saliencelab.engine.difference import Difference, DifferenceMode, Settings, attach, difference_of, split
from saliencelab.engine.difference.mode import Precision
from saliencelab.errors import NonFiniteResultError
from saliencelab.methods.path import _ReferenceMethod, _sum_features

RULE_NAMES = ("rescale", "reveal_cancel")

Combine = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``(multipliers, inputs, references) -> scores`` for one row per (sample, reference)."""


def contributions(multipliers: torch.Tensor, inputs: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """DeepLIFT's contribution scores ``m ⊙ (x − x′)``."""
    return multipliers * (inputs - refs)


@register
class DeepLift(_ReferenceMethod):
    """DeepLIFT with the Rescale or RevealCancel rule, exact summation-to-delta on any graph.

    Parameters
    ----------
    model:
        The model to explain (in eval mode: batch norm and dropout must not use
        batch statistics or randomness).
    rule:
        ``"rescale"`` (default) or ``"reveal_cancel"`` for the nonlinearities.
    mean_normalize:
        The softmax adjustment of Shrikumar et al. 2017: explain the target logit
        minus the mean of all logits, i.e. contributions to the target minus their
        mean over the classes. Needs a class target on an ``(N, C)`` output of logits.
    combine:
        ``(multipliers, inputs, references) -> scores`` averaged over the
        references instead of the contributions ``m ⊙ (x − x′)``; e.g.
        :func:`saliencelab.genomics.hypothetical_contributions`. ``delta`` is
        then ``None``.
    threshold:
        A difference ``|Δz| <= threshold · (1 + |z′|)`` counts as zero and takes
        the derivative at the middle of the step instead of ``Δy/Δz``. Default:
        the square root of the machine epsilon of the inputs' dtype (3.5e-4 for
        float32, 1.5e-8 for float64).
    memory_budget:
        Bytes for activations and gradients; the (sample, reference) pairs run in
        chunks under it.

    The baseline is a tensor, a number, a preset (default ``"zeros"``), a
    callable, or ``sl.references(batch)`` to average over K references per sample
    (which is DeepSHAP). Elementwise nonlinearities (ReLU, LeakyReLU, ELU, GELU,
    SiLU, sigmoid, tanh, softplus, exp, ...), linear operations, convolutions,
    batch norm in eval mode, average and max pooling, maxima and minima,
    products of two input-dependent tensors, softmax and log-softmax along a
    non-batch dimension, and data movement all have exact rules; layer norm,
    group norm, RMS norm, vector norms and ``F.normalize``, ``addmm`` /
    ``baddbmm`` and scaled dot-product attention (masks, causal, grouped
    queries) run as their definitions in those operations, so vision
    transformers and the Hugging Face text models (BERT, GPT-2, LLaMA and
    their relatives, eager or SDPA attention) are exact too.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    >>> x, ref = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    >>> a = sl.DeepLift(model.double())(x, target=1, baseline=ref)
    >>> gap = a.values.sum(1) - (model(x) - model(ref))[:, 1]
    >>> bool(gap.abs().max() < 1e-12)
    True
    """

    name = "deeplift"
    description = "DeepLIFT: contributions to f(x) - f(x') by the Rescale or RevealCancel rule"
    source = "Shrikumar et al. 2017"

    def __init__(
        self,
        model,
        *,
        rule: str = "rescale",
        mean_normalize: bool = False,
        threshold: float | None = None,
        combine: Combine | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        if rule not in RULE_NAMES:
            raise ValueError(f"rule must be one of {RULE_NAMES}; got {rule!r}")
        if threshold is not None and not threshold >= 0:
            raise ValueError(f"threshold must be a non-negative number; got {threshold}")
        self.rule = rule
        self.mean_normalize = mean_normalize
        self.threshold = threshold
        self.combine = combine or contributions

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        refs = resolve_baseline(baseline, inputs, distribution=self.draws_references)
        return self._average(inputs, target, refs)

    def _average(self, inputs: torch.Tensor, target: Target, refs: ReferenceSet) -> Attribution:
        """Average ``combine(m, x, x′)`` over every reference of every sample."""
        n, k = inputs.shape[0], refs.k
        values = torch.zeros_like(inputs)
        f_x = torch.zeros(n, dtype=inputs.dtype, device=inputs.device)
        classes = torch.full((n,), -1, dtype=torch.long, device=inputs.device)
        bound: list[Target] = []
        precision = Precision(inputs.dtype)  # the model may run parts of itself in a coarser dtype

        def run(rows: slice) -> None:
            row = torch.arange(rows.start, rows.stop)
            sample, which = row // k, row % k
            x, ref = inputs[sample], refs.rows(sample, which)
            multipliers, scores, chunk_target = self._finite_multipliers(
                x, ref, target.rows(sample), sample, precision
            )
            values.index_add_(0, sample.to(values.device), self.combine(multipliers, x, ref) / k)
            f_x[sample] = scores.to(f_x.dtype)
            if chunk_target.classes is not None:
                classes[sample] = chunk_target.classes
            bound.append(chunk_target)

        passes = 10 if self.rule == "reveal_cancel" else 6
        self.run_chunked(inputs, run, n * k, passes=passes)
        resolved = Target(classes=classes) if bound[0].classes is not None else bound[0]
        f_refs = self.reference_scores(refs, resolved, n).mean(dim=1)
        _require_finite(self.name, f_x, f_refs)
        delta = None
        if self.combine is contributions:
            delta = (_sum_features(values) - (f_x - f_refs)).abs()
            _warn_if_inexact(delta, f_x - f_refs, f_x, precision.eps)
        return Attribution(values, delta, self.name, resolved.public(), {"rule": self.rule, "references": k})

    def _finite_multipliers(
        self,
        inputs: torch.Tensor,
        refs: torch.Tensor,
        target: Target,
        sample: torch.Tensor,
        precision: Precision | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Target]:
        """:meth:`multipliers`, or a :class:`~saliencelab.NonFiniteResultError` naming the operation where one is
        NaN or Inf.

        ``sample`` is each row's sample index, for the message.
        """
        multipliers, scores, bound = self.multipliers(inputs, refs, target, sample, precision=precision)
        finite = torch.isfinite(multipliers.flatten(1)).all(dim=1)
        if bool(finite.all()):
            return multipliers, scores, bound
        rows = (~finite).nonzero().flatten()
        where = f"for samples {sorted(set(sample[rows.cpu()].tolist()))}"
        try:
            self.multipliers(inputs[rows], refs[rows], target.rows(rows.cpu()), sample[rows.cpu()], check_finite=True)
        except NonFiniteResultError as error:
            raise NonFiniteResultError(f"{error} ({where})") from None
        raise NonFiniteResultError(
            f"{self.name}: the multipliers {where} are NaN or Inf although every difference from the reference is "
            f"finite: their product through the layers leaves the range of {inputs.dtype}; explain in float64"
        )

    def multipliers(
        self,
        inputs: torch.Tensor,
        refs: torch.Tensor,
        target: Target,
        samples: torch.Tensor | None = None,
        *,
        check_finite: bool = False,
        precision: Precision | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, Target]:
        """DeepLIFT multipliers of each row's target score for ``inputs`` against ``refs`` (same shape).

        Returns the multipliers, the target scores at ``inputs`` and the target
        bound to the output. ``check_finite`` raises :class:`~saliencelab.errors.NonFiniteResultError`
        at the first operation whose difference is NaN or Inf.
        """
        threshold = self.threshold if self.threshold is not None else torch.finfo(inputs.dtype).eps ** 0.5
        settings = Settings(reveal_cancel=self.rule == "reveal_cancel", threshold=threshold)
        mode = DifferenceMode(settings, method=self.name, check_finite=check_finite, precision=precision)
        difference = (inputs - refs).detach().requires_grad_(True)
        start = attach(inputs.detach().clone(), Difference(refs.detach(), *split(difference, settings)))
        with torch.enable_grad():
            with mode:
                output = self.forward(start, samples)
            bound = target.bind(output)
            with mode:
                scores = self.target_scores(output, bound)
            diff = difference_of(scores)
            if diff is None or not diff.delta.requires_grad:
                return torch.zeros_like(inputs), scores.detach(), bound
            (grad,) = torch.autograd.grad(diff.delta.sum(), difference, allow_unused=True)
        return (torch.zeros_like(inputs) if grad is None else grad), scores.detach(), bound

    def target_scores(self, output: torch.Tensor, target: Target) -> torch.Tensor:
        """The target logit, minus the mean logit when ``mean_normalize``."""
        scores = target.scores(output)
        if not self.mean_normalize:
            return scores
        if target.classes is None or output.ndim != 2:
            raise ValueError(
                "mean_normalize=True explains a class logit minus the mean logit: it needs a class target "
                f"(an int, one int per sample, or None) and a model output of shape (N, C); got output shape "
                f"{tuple(output.shape)}" + (" and a callable target" if target.fn is not None else "")
            )
        return scores - output.mean(dim=1)


def _require_finite(method: str, f_x: torch.Tensor, f_refs: torch.Tensor) -> None:
    """A :class:`~saliencelab.NonFiniteResultError` if the scores at either end are NaN or Inf.

    (The attributions themselves are checked for every method by ``Method.__call__``.)
    """
    for what, tensor, hint in (
        ("the model's output at the inputs", f_x, "check the model and the inputs"),
        ("the model's output at the references", f_refs, "check the model and the references"),
    ):
        finite = torch.isfinite(tensor.flatten(1) if tensor.ndim > 1 else tensor.unsqueeze(1)).all(dim=1)
        if not bool(finite.all()):
            samples = (~finite).nonzero().flatten().tolist()
            raise NonFiniteResultError(f"{method}: {what} is NaN or Inf for samples {samples}; {hint}")


def _warn_if_inexact(delta: torch.Tensor, change: torch.Tensor, f_x: torch.Tensor, eps: float) -> None:
    """Summation-to-delta is exact up to rounding; a larger gap means part of the model escaped the rules.

    ``eps`` is the machine epsilon of the coarsest dtype the differences passed through (a float64
    model that runs its softmax in float32 is exact only to float32's rounding). Written so that a NaN
    gap counts as inexact too (``NaN <= allowed`` is false).
    """
    allowed = 1e4 * eps * torch.maximum(change.abs(), f_x.abs().clamp(min=1.0))
    bad = (~(delta <= allowed)).nonzero().flatten()
    if len(bad):
        warnings.warn(
            f"deeplift: the contributions miss f(x) - f(x') by up to {float(delta.max()):.3g} for samples "
            f"{bad.tolist()}, more than rounding explains: part of the model ran outside torch operations "
            "(e.g. a NumPy round trip or .item()) or cut its input off with .detach(), and was treated as a constant",
            stacklevel=4,
        )


@register
class DeepShap(DeepLift):
    """DeepSHAP: DeepLIFT averaged over a background distribution of references.

    ``baseline`` is the background, a batch of K reference inputs (e.g. 100
    training samples) shared by every sample; each sample's attribution is the
    mean of its DeepLIFT contributions against every reference, and ``delta``
    compares their sum with ``f(x)`` minus the mean output on the background.
    Every (sample, reference) pair is evaluated, in chunks under the memory
    budget: pass a subset of the background for speed.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> x, background = torch.randn(2, 3), torch.randn(16, 3)
    >>> a = sl.DeepShap(model)(x, baseline=background)
    >>> bool((a.delta < 1e-5).all()), a.info["references"]
    (True, 16)
    """

    name = "deepshap"
    draws_references = True
    description = "DeepSHAP: DeepLIFT averaged over a background distribution of references"
    source = "Lundberg & Lee 2017"
