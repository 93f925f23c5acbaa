"""Path methods: Integrated Gradients, Expected Gradients and GradientSHAP.

Integrated Gradients (Sundararajan et al. 2017)::

    IG_i(x) = (x_i − x'_i) · ∫₀¹ ∂f(x' + α(x − x'))/∂x_i dα

computed with a quadrature rule whose weights sum to one. Completeness,
``Σ_i IG_i = f(x) − f(x')``, holds up to the quadrature error, which ``.delta``
reports per sample and ``tolerance=`` drives below a chosen relative error.

Expected Gradients (Erion et al. 2021) and GradientSHAP (Lundberg & Lee 2017)
average ``(x − x') · ∂f(x' + α(x − x'))/∂x`` over references x' drawn from a
background distribution and α ~ U(0, 1): a Monte-Carlo estimate of IG averaged
over the references.
"""

from __future__ import annotations

import warnings

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec, ReferenceSet, resolve_baseline
from saliencelab.core.registry import register
from saliencelab.core.sampling import generator, noise_scale, normal_draws
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count, check_seed
from saliencelab.methods.adaptive import adaptive_trapezoid
from saliencelab.methods.base import Method
from saliencelab.methods.quadrature import INTEGRATIONS, quadrature, refinement

PATH_ROW_COPIES = 10
"""Tensors of an input row's size that a path or sampling method holds per row on top of the
model's activations: the sample, its reference, their difference, the point, the scale, the
gradient, the scaled gradient, and working space."""

NOISE_ROW_COPIES = 3
"""What input noise adds per row: the noise, its scaled copy and the noisy sample."""


def _feature_view(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape per-row scalars ``(rows,)`` to broadcast over ``(rows, *features)``."""
    return values.reshape(-1, *([1] * (ndim - 1)))


def _sum_features(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).sum(dim=1)


class _ReferenceMethod(Method):
    """A method whose attributions are measured against reference inputs."""

    structured_inputs = True
    layer_attribution = True

    takes_baseline = True

    def reference_scores(
        self, refs: ReferenceSet, target: Target, n: int, which: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each sample's target score at its references ``which`` (default: all), shape ``(n, len(which))``."""
        which = torch.arange(refs.k) if which is None else which
        sample = torch.arange(n).repeat_interleave(len(which))
        if refs.tensor.shape[0] == 1 and not getattr(self.model, "needs_rows", False):
            output = self.outputs(refs.tensor[0, which])[torch.arange(len(which)).repeat(n)]
        else:
            output = self.outputs(refs.rows(sample, which.repeat(n)), sample)
        return self.target_scores(output, target.rows(sample)).reshape(n, len(which))


@register
class IntegratedGradients(_ReferenceMethod):
    """Integrated Gradients along the straight path from the baseline to the input.

    Parameters
    ----------
    model:
        The model to explain.
    steps:
        Quadrature points on the path (the starting number of the fixed rules
        when ``tolerance`` is set; the number of points of ``adaptive`` without it).
    integration:
        One of ``riemann_left``, ``riemann_right``, ``riemann_middle``,
        ``riemann_trapezoid``, ``gauss_legendre`` (exact for polynomials of
        degree < 2·steps, so few steps suffice on smooth paths) or ``adaptive``
        (a trapezoid rule that bisects the intervals whose error, measured from
        the scores at their ends, is largest; see
        :mod:`saliencelab.methods.adaptive`). Default: ``gauss_legendre``, or
        ``adaptive`` when ``tolerance`` is set. ``adaptive`` keeps every point's
        gradient until the end (points × the input's size per sample) and takes
        one reference per sample.
    tolerance:
        If set, each sample's quadrature is refined until its relative
        completeness error ``delta / |f(x) − f(x')|`` is within it (or the next
        refinement would pass ``max_steps``, with a warning). ``adaptive``
        starts from 5 points and adds points where the error is; the fixed
        Riemann rules keep every gradient already computed (left, right and
        trapezoid double their intervals, the midpoint rule triples them);
        Gauss-Legendre starts again with twice the points. ``info["steps"]``
        reports the points used per sample, and ``adaptive`` adds
        ``info["error_bound"]``, the sum of its intervals' absolute errors
        relative to ``|f(x) − f(x')|`` (an upper bound of the relative
        completeness error that cancellation between intervals cannot hide).
    max_steps:
        Upper limit for ``tolerance``.
    seed:
        Seed of the ``"uniform"`` baseline preset.
    memory_budget:
        Bytes for activations and gradients; the steps run in chunks under it.

    With ``baseline=sl.references(refs)`` the attribution is averaged over the K
    references and ``delta`` is measured against their mean output.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    >>> a = sl.IntegratedGradients(model, steps=32)(torch.randn(2, 3))
    >>> bool((a.delta < 1e-4).all())
    True
    """

    name = "integrated_gradients"
    description = "Integrated Gradients: gradients integrated along the path from a baseline"
    source = "Sundararajan et al. 2017"
    quick_options = {"steps": 8}

    def __init__(
        self,
        model,
        *,
        steps: int = 50,
        integration: str | None = None,
        tolerance: float | None = None,
        max_steps: int = 1024,
        seed: int = 0,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        integration = integration or ("gauss_legendre" if tolerance is None else "adaptive")
        if integration not in (*INTEGRATIONS, "adaptive"):
            raise ValueError(f"unknown integration {integration!r}; choose one of {', '.join(INTEGRATIONS)}, adaptive")
        quadrature(steps, integration if integration != "adaptive" else "riemann_trapezoid")  # checks steps
        if tolerance is not None and not tolerance > 0:
            raise ValueError(f"tolerance must be a positive relative error; got {tolerance}")
        if tolerance is not None and integration != "adaptive" and max_steps < steps:
            raise ValueError(f"max_steps ({max_steps}) must be at least steps ({steps})")
        self.steps = steps
        self.integration = integration
        self.tolerance = tolerance
        self.max_steps = max_steps
        self.seed = check_seed(seed)

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        n = inputs.shape[0]
        refs = resolve_baseline(baseline, inputs, seed=self.seed)
        f_x, target = self.scores(inputs, target)
        difference = f_x - self.reference_scores(refs, target, n).mean(dim=1)
        if self.integration == "adaptive":
            return self._adaptive(inputs, target, refs, f_x, difference)
        values = self._integrate(inputs, target, refs, *quadrature(self.steps, self.integration))
        delta = (_sum_features(values) - difference).abs()
        steps_used = torch.full((n,), self.steps)
        if self.tolerance is None:
            return Attribution(values, delta, self.name, target.public(), {"steps": steps_used})
        allowed = self.tolerance * _error_scale(difference, f_x)
        todo = (delta > allowed).nonzero().flatten()
        steps = self.steps
        while len(todo):
            steps, keep, alphas, weights = refinement(steps, self.integration)
            if steps > self.max_steps:
                break
            added = self._integrate(inputs[todo], target.rows(todo), refs.of_samples(todo), alphas, weights)
            values[todo] = keep * values[todo] + added
            delta[todo] = (_sum_features(values[todo]) - difference[todo]).abs()
            steps_used[todo] = steps
            todo = todo[delta[todo] > allowed[todo]]
        if len(todo):
            warnings.warn(
                f"integrated_gradients reached max_steps={self.max_steps} without the relative "
                f"completeness error {self.tolerance} for samples {todo.tolist()}; raise max_steps",
                stacklevel=3,
            )
        return Attribution(values, delta, self.name, target.public(), {"steps": steps_used})

    def _adaptive(
        self, inputs: torch.Tensor, target: Target, refs: ReferenceSet, f_x: torch.Tensor, difference: torch.Tensor
    ) -> Attribution:
        """Integrated Gradients with :func:`adaptive_trapezoid`, one path per sample."""
        if refs.k != 1:
            raise ValueError(
                f"integration='adaptive' refines one path per sample; got {refs.k} references per sample. "
                "Use a fixed rule (integration='gauss_legendre') with several references."
            )
        n = inputs.shape[0]
        starts = refs.rows(torch.arange(n), torch.zeros(n, dtype=torch.long))  # each sample's one reference
        directions = inputs - starts

        def evaluate(sample: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            alpha = _feature_view(alphas.to(inputs.device, inputs.dtype), inputs.ndim)
            points = starts[sample] + alpha * directions[sample]
            grads, scores = torch.empty_like(points), torch.empty(len(sample), dtype=inputs.dtype, device=inputs.device)

            def run(rows: slice) -> None:
                grad, _, score = self.gradients_and_scores(points[rows], target.rows(sample[rows]), sample[rows])
                grads[rows], scores[rows] = grad, score

            self.run_chunked(points, run)
            return grads, scores

        scale = _error_scale(difference, f_x)
        allowed = None if self.tolerance is None else self.tolerance * scale
        limit = self.steps if self.tolerance is None else self.max_steps
        result = adaptive_trapezoid(evaluate, directions, limit, allowed)
        values = directions * result.integrals
        delta = (_sum_features(values) - difference).abs()
        if allowed is not None and bool((delta > allowed).any()):
            todo = (delta > allowed).nonzero().flatten().tolist()
            warnings.warn(
                f"integrated_gradients reached max_steps={self.max_steps} without the relative "
                f"completeness error {self.tolerance} for samples {todo}; raise max_steps",
                stacklevel=4,
            )
        info = {"steps": result.points, "error_bound": result.error_bound.to(scale) / scale}
        return Attribution(values, delta, self.name, target.public(), info)

    def _integrate(
        self, inputs: torch.Tensor, target: Target, refs: ReferenceSet, alphas: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """``Σ_k w_k (x − x') ⊙ ∇f(x' + α_k (x − x'))``, averaged over the references."""
        steps = len(alphas)
        alphas = alphas.to(inputs.device, inputs.dtype)
        weights = (weights / refs.k).to(inputs.device, inputs.dtype)
        per_sample = refs.k * steps

        def make_rows(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            sample, reference, step = row // per_sample, (row // steps) % refs.k, row % steps
            x, start = inputs[sample], refs.rows(sample, reference)
            difference = x - start
            alpha = _feature_view(alphas[step], x.ndim)
            return start + alpha * difference, sample, _feature_view(weights[step], x.ndim) * difference

        values = torch.zeros_like(inputs)
        return self.accumulate_gradients(inputs.shape[0] * per_sample, make_rows, target, values, own=PATH_ROW_COPIES)


def _error_scale(difference: torch.Tensor, f_x: torch.Tensor) -> torch.Tensor:
    """The denominator of the relative completeness error, kept away from zero."""
    return torch.maximum(difference.abs(), 1e-6 * torch.clamp(f_x.abs(), min=1.0))


@register
class ExpectedGradients(_ReferenceMethod):
    """Expected Gradients: IG averaged over references from a distribution (Erion et al. 2021).

    Each of ``samples`` draws takes a reference x' from ``baseline`` (a batch of
    K reference inputs, e.g. training data), a point α ~ U(0, 1) on the path and,
    if ``noise > 0``, Gaussian noise with σ = noise · (value range of the sample)
    added to the input (SmoothGrad-style local smoothing, as in GradientSHAP).
    The draws are shared by every sample of the batch, so a sample's attribution
    depends only on that sample and ``seed``. ``delta`` compares the sum with
    ``f(x)`` minus the mean output at the drawn references.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 1)
    >>> x, refs = torch.randn(2, 3), torch.randn(20, 3)
    >>> a = sl.ExpectedGradients(model, samples=10)(x, baseline=refs)
    >>> bool((a.delta < 1e-5).all())
    True
    """

    name = "expected_gradients"
    draws_references = True
    description = "Expected Gradients: Integrated Gradients in expectation over a reference distribution"
    source = "Erion et al. 2021"
    quick_options = {"samples": 4}

    def __init__(
        self,
        model,
        *,
        samples: int = 50,
        noise: float = 0.0,
        seed: int = 0,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        noise_scale(torch.zeros(1, 1), noise)
        self.samples = check_count(samples, "samples")
        self.noise = noise
        self.seed = check_seed(seed)

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        n, draws = inputs.shape[0], self.samples
        refs = resolve_baseline(baseline, inputs, seed=self.seed, distribution=self.draws_references)
        rng = generator(self.seed, inputs.device)
        chosen = torch.randint(refs.k, (draws,), generator=rng, device=inputs.device).cpu()
        alphas = torch.rand(draws, generator=rng, device=inputs.device, dtype=inputs.dtype)
        sigma = self.noise_scale(inputs, self.noise)
        f_x, target = self.scores(inputs, target)
        used, position = torch.unique(chosen, return_inverse=True)
        f_refs = self.reference_scores(refs, target, n, used)[:, position].mean(dim=1)

        def make_rows(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            draw, sample = row // n, row % n  # draw by draw: each chunk draws its noise once
            x = inputs[sample]
            if self.noise > 0:
                drawn, which = torch.unique(draw, return_inverse=True)
                eps = normal_draws(self.seed, drawn, tuple(inputs.shape[1:]), inputs.device, inputs.dtype)
                x = x + sigma[sample] * eps[which]
            start = refs.rows(sample, chosen[draw])
            difference = x - start
            point = start + _feature_view(alphas[draw], x.ndim) * difference
            return point, sample, difference / draws

        own = PATH_ROW_COPIES + (NOISE_ROW_COPIES if self.noise > 0 else 0)
        values = self.accumulate_gradients(n * draws, make_rows, target, torch.zeros_like(inputs), own=own)
        delta = (_sum_features(values) - (f_x - f_refs)).abs()
        return Attribution(values, delta, self.name, target.public(), {"references": chosen})


@register
class GradientShap(ExpectedGradients):
    """GradientSHAP: the SHAP name for Expected Gradients with optional input noise.

    Same estimator as :class:`ExpectedGradients` (Lundberg & Lee 2017; Captum's
    ``GradientShap`` with ``stdevs`` = ``noise`` × value range); ``noise`` adds
    Gaussian noise to the input before each draw.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 1)
    >>> x = torch.randn(2, 3)
    >>> a = sl.GradientShap(model, samples=8)(x, baseline=torch.zeros(4, 3))
    >>> torch.allclose(a.values, x * model.weight.detach())  # a linear model: SHAP values are exact
    True
    """

    name = "gradient_shap"
    description = "GradientSHAP: SHAP values approximated by expected gradients with input noise"
    source = "Lundberg & Lee 2017"
    quick_options = {"samples": 4}
