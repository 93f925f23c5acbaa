"""Layer-wise relevance propagation (Bach et al. 2015; seeds 000, 004) and Deep Taylor (Montavon et al. 2017).

The relevance put in at the output, ``R_k = y_k · ∂s/∂y_k`` for the explained
score ``s`` of the model output ``y``, flows back through every operation by
the rules of :mod:`saliencelab.lrp`; the attribution is the relevance that
reaches the input. For a class target this is ``f(x)_target`` at that logit
alone; for a callable target that selects linearly (a sum of segmentation
logits over a mask, a weighted sum of outputs) it is each selected output's
share, and the total is the score. A nonlinear callable (a probability, a
norm) gets its first-order split over the outputs, which sums to
``Σ_k y_k ∂s/∂y_k``, not to ``s``. ``.delta`` is the conservation error
``|Σ_i R_i − Σ_k R_k|``: zero up to rounding with ``bias="ignore"`` and
conserving rules, the bias's share otherwise.
"""

from __future__ import annotations

import contextlib

import torch

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.targets import Target, reported_target
from saliencelab.lrp.composites import COMPOSITES, Composite, standard_composites
from saliencelab.lrp.engine import RelevanceMode, module_names, tracking_modules
from saliencelab.lrp.rules import RULES, STABILIZER, rule
from saliencelab.methods.base import Method

BIASES = ("absorb", "ignore")
BATCH_NORMS = ("rule", "merge")


@register
class LRP(Method):
    """Layer-wise relevance propagation with one rule for every linear operation, or a composite.

    Parameters
    ----------
    model:
        The model to explain (eval mode; explain logits, not probabilities).
    rule:
        The rule of every linear operation when no ``composite`` is given: one
        of ``epsilon`` (default), ``zplus``, ``alpha_beta``, ``gamma``, ``zbox``,
        ``flat``, ``wsquare``, ``pass``; its parameters are ``epsilon``,
        ``alpha``/``beta``, ``gamma``, ``low``/``high``.
    composite:
        A :class:`~saliencelab.lrp.Composite` or the name of a standard one:
        ``epsilon_plus``, ``epsilon_alpha2_beta1``, ``epsilon_gamma_box``
        (bounds from ``low``/``high``), ``epsilon_plus_flat``,
        ``epsilon_alpha2_beta1_flat``.
    bias:
        ``"absorb"`` (default): biases, and constants added to activations, take
        their share of the relevance; ``"ignore"``: they are left out of the
        denominators, so relevance is conserved (the seeds' formula).
    batch_norm:
        ``"rule"`` (default): every batch norm ``s·x + t`` has its own rule, the
        shift ``t`` a bias like any other; ``"merge"``: a batch norm applied
        straight to a dense layer's or convolution's output is merged into it
        (weights ``s·w``, bias ``s·b + t``) and the layer's rule sees the merged
        layer, as Zennit's canonizer does (other batch norms keep their rule; a
        layer output used by anything besides its batch norm is an error).
    stabilizer:
        Added with the sign of the denominator in every rule but epsilon
        (default 1e-6, Zennit's); conservation holds up to about
        ``stabilizer / |z|``, so lower it (e.g. 1e-12, float64) to check it.

    Averages, sums and batch norm share relevance in proportion to their
    inputs' contributions, sums of activations (residual ``h + y``) split it in
    proportion to the summands, elementwise nonlinearities pass it on and max
    pooling routes it to the winner.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> _ = torch.manual_seed(1)
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    >>> x = torch.randn(2, 3, dtype=torch.float64)
    >>> a = sl.LRP(model, rule="epsilon", epsilon=1e-9, bias="ignore", stabilizer=1e-12)(x, target=0)
    >>> torch.allclose(a.values.sum(1), model(x)[:, 0])  # relevance is conserved
    True
    """

    name = "lrp"
    description = (
        "Layer-wise relevance propagation: epsilon, z+, alpha-beta, gamma, z^B, flat, w^2 rules and composites"
    )
    source = "Bach et al. 2015; Montavon et al. 2019; seeds 000, 004"

    def __init__(
        self,
        model,
        *,
        rule: str = "epsilon",
        composite: str | Composite | None = None,
        bias: str = "absorb",
        batch_norm: str = "rule",
        epsilon: float = 1e-6,
        alpha: float = 2.0,
        beta: float = 1.0,
        gamma: float = 0.25,
        low: float | torch.Tensor | None = None,
        high: float | torch.Tensor | None = None,
        stabilizer: float = STABILIZER,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        if not stabilizer > 0:
            raise ValueError(f"stabilizer must be a positive number; got {stabilizer}")
        self.stabilizer = stabilizer
        if bias not in BIASES:
            raise ValueError(f"bias must be one of {BIASES}; got {bias!r}")
        self.bias = bias
        if batch_norm not in BATCH_NORMS:
            raise ValueError(f"batch_norm must be one of {BATCH_NORMS}; got {batch_norm!r}")
        self.merge_batch_norm = batch_norm == "merge"
        self.composite = self._composite(rule, composite, epsilon, alpha, beta, gamma, low, high)

    @staticmethod
    def _composite(name, composite, epsilon, alpha, beta, gamma, low, high) -> Composite:
        if isinstance(composite, Composite):
            return composite
        if composite is not None:
            standard = standard_composites(low, high)
            if composite not in standard:
                need = " (epsilon_gamma_box needs low= and high=)" if composite == "epsilon_gamma_box" else ""
                raise ValueError(f"unknown composite {composite!r}{need}; choose one of {COMPOSITES} or a Composite")
            return standard[composite]
        if name not in RULES:
            raise ValueError(f"unknown LRP rule {name!r}; choose one of {RULES}")
        params = {
            "epsilon": {"epsilon": epsilon},
            "alpha_beta": {"alpha": alpha, "beta": beta},
            "gamma": {"gamma": gamma},
            "zbox": {"low": low, "high": high},
        }.get(name, {})
        return Composite(default=rule(name, **params))

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        for parameter in self.model.parameters() if isinstance(self.model, torch.nn.Module) else ():
            parameter.requires_grad_(False)
        composite = self.prepare(inputs)
        values = torch.empty_like(inputs)
        scores = torch.empty(inputs.shape[0], dtype=inputs.dtype, device=inputs.device)
        bound_chunks: list[Target] = []
        names = module_names(self.model)

        def run(rows: slice) -> None:
            x = inputs[rows].detach().clone().requires_grad_(True)
            mode = RelevanceMode(
                composite,
                self.bias,
                method=self.name,
                names=names,
                stabilizer=self.stabilizer,
                merge_batch_norm=self.merge_batch_norm,
            )
            with torch.enable_grad():
                modules = tracking_modules(mode) if self.composite.names_layers else contextlib.nullcontext()
                with modules, mode:
                    output = self.forward(x)
                bound = target.rows(torch.arange(rows.start, rows.stop)).bind(output)
                seed = output_relevance(output, bound.scores(output))
                if output.requires_grad:
                    (relevance,) = torch.autograd.grad(output, x, seed)
                else:
                    relevance = torch.zeros_like(x)
            values[rows] = relevance
            scores[rows] = seed.reshape(seed.shape[0], -1).sum(1)
            bound_chunks.append(bound)

        self.run_chunked(inputs, run)
        resolved = reported_target(bound_chunks)
        delta = (values.reshape(values.shape[0], -1).sum(1) - scores).abs()
        return Attribution(
            values,
            delta,
            self.name,
            resolved,
            {"bias": self.bias, "batch_norm": "merge" if self.merge_batch_norm else "rule"},
        )

    def prepare(self, inputs: torch.Tensor) -> Composite:
        """The composite for this batch (Deep Taylor fills in its bounds here)."""
        return self.composite


def output_relevance(output: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """The relevance put in at the model output: ``y ⊙ ∂s/∂y``, the score ``s`` split over the outputs ``y``.

    A class target gives ``y_c`` at the target class and zero elsewhere; any
    linear selection gives each selected output its share of ``s``.

    Example
    -------
    >>> y = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    >>> output_relevance(y, y[:, 0] + 2 * y[:, 2])
    tensor([[1., -0., 6.]])
    """
    if not score.requires_grad:
        return torch.zeros_like(output)
    (gradient,) = torch.autograd.grad(score.sum(), output, retain_graph=True, allow_unused=True)
    if gradient is None:
        return torch.zeros_like(output)
    return output.detach() * gradient


@register
class DeepTaylor(LRP):
    """Deep Taylor decomposition: z⁺ on hidden layers, z^B on the input layer (Montavon et al. 2017; seeds 000, 001).

    ``low``/``high`` bound the input domain of z^B (default: the smallest and
    largest value of the batch). Biases are ignored, as the derivation assumes;
    on bias-free ReLU networks with inputs in ``[0, 1]`` the relevances are
    non-negative and sum to the score.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False)).double()
    >>> _ = model[2].weight.data.abs_()  # a positive output
    >>> x = torch.rand(2, 3, dtype=torch.float64)
    >>> a = sl.DeepTaylor(model, low=0.0, high=1.0, stabilizer=1e-12)(x)
    >>> bool(torch.allclose(a.values.sum(1), model(x)[:, 0]))  # relevance is conserved
    True
    """

    name = "deep_taylor"
    description = "Deep Taylor decomposition: z+ on hidden layers, z^B with the data's bounds on the input layer"
    source = "Montavon et al. 2017; seeds 000, 001"

    def __init__(
        self, model, *, low=None, high=None, stabilizer: float = STABILIZER, memory_budget: int | None = None
    ) -> None:
        super().__init__(model, rule="zplus", bias="ignore", stabilizer=stabilizer, memory_budget=memory_budget)
        self.low, self.high = low, high

    def prepare(self, inputs: torch.Tensor) -> Composite:
        low = inputs.min().item() if self.low is None else self.low
        high = inputs.max().item() if self.high is None else self.high
        return Composite(first=rule("zbox", low=low, high=high), default=rule("zplus"))
