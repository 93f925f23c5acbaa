"""Layer-wise relevance propagation (Bach et al. 2015) and Deep Taylor (Montavon et al. 2017).

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
from saliencelab.lrp.attention import has_attention
from saliencelab.lrp.composites import Composite, standard_composite
from saliencelab.lrp.engine import RelevanceMode, module_names
from saliencelab.lrp.rules import STABILIZER, ZBox, ZPlus, rule
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
        ``alpha``/``beta``, ``gamma``, ``low``/``high``. An option the chosen
        rule or composite does not use is a ``TypeError``.
    composite:
        A :class:`~saliencelab.lrp.Composite` (its rules: built in, or your own
        :class:`~saliencelab.lrp.RelevanceRule`) or the name of a standard one:
        ``epsilon_plus``, ``epsilon_alpha2_beta1``, ``epsilon_plus_flat``,
        ``epsilon_alpha2_beta1_flat``, ``transformer`` (they take ``epsilon``,
        the dense layers' ε) and ``epsilon_gamma_box`` (``epsilon``, ``gamma``
        and the bounds ``low``/``high``). ``transformer`` is AttnLRP (Achtibat
        et al. 2024): it adds rules for softmax, products of two activations,
        layer and RMS norm and fused attention (:mod:`saliencelab.lrp.attention`);
        it is the default, when neither ``rule`` nor ``composite`` is given, for
        a model with an attention module (``nn.MultiheadAttention`` or a module
        class whose name contains "Attention"). The softmax rule does not
        conserve relevance: ``.delta`` reports the gap. A composite that names layers by dotted name needs
        the model to be an ``nn.Module``; one keyed by module class also works
        on a function that calls modules (``lambda x: net(x)["logits"]``).
    bias:
        ``"absorb"`` (default): biases, and constants added to activations, take
        their share of the relevance; ``"ignore"``: they are left out of the
        denominators, so relevance is conserved (the basic rule of Bach et al. 2015).
    batch_norm:
        ``"rule"`` (default): every batch norm ``s·x + t`` has its own rule, the
        shift ``t`` a bias like any other; ``"merge"``: a batch norm applied
        straight to a dense layer's, convolution's or transposed convolution's
        output is merged into it (weights ``s·w``, bias ``s·b + t``) and the
        layer's rule sees the merged layer, as Zennit's canonizer does (other
        batch norms keep their rule; a layer output used by anything besides its
        batch norm is an error).
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

    structured_inputs = True
    layer_attribution = True

    name = "lrp"
    description = (
        "Layer-wise relevance propagation: epsilon, z+, alpha-beta, gamma, z^B, flat, w^2 rules, composites, AttnLRP"
    )
    source = "Bach et al. 2015; Montavon et al. 2019; Achtibat et al. 2024"

    def __init__(
        self,
        model,
        *,
        rule: str | None = None,
        composite: str | Composite | None = None,
        bias: str = "absorb",
        batch_norm: str = "rule",
        epsilon: float | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        gamma: float | None = None,
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
        options = {"epsilon": epsilon, "alpha": alpha, "beta": beta, "gamma": gamma, "low": low, "high": high}
        if rule is None and composite is None and has_attention(model):
            composite = "transformer"
        self.composite = chosen_composite(rule, composite, {k: v for k, v in options.items() if v is not None})
        if self.composite.dotted_names and not isinstance(model, torch.nn.Module):
            raise ValueError(
                f"the composite names layers {self.composite.dotted_names}, but the model is a "
                f"{type(model).__name__}, not an nn.Module, so its layers have no dotted names; pass the "
                "nn.Module itself, or key the composite by module class (nn.Conv2d) or by 'dense'/'conv'"
            )

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        values = torch.empty_like(inputs)
        scores = torch.empty(inputs.shape[0], dtype=inputs.dtype, device=inputs.device)
        bound_chunks: list[Target] = []
        names = module_names(self.model) if self.composite.names_layers else {}

        def run(rows: slice) -> None:
            mode = RelevanceMode(
                self.composite,
                bias=self.bias,
                method=self.name,
                names=names,
                stabilizer=self.stabilizer,
                merge_batch_norm=self.merge_batch_norm,
            )
            x = mode.mark(inputs[rows].detach().clone().requires_grad_(True))
            with torch.enable_grad():
                layers = mode.watching_layers() if self.composite.names_layers else contextlib.nullcontext()
                with layers, mode:
                    output = self.forward(x, torch.arange(rows.start, rows.stop))
                bound = target.rows(torch.arange(rows.start, rows.stop)).bind(output)
                seed = output_relevance(output, bound.scores(output))
                relevance = None
                if mode.depends(output):
                    (relevance,) = torch.autograd.grad(output, x, seed, allow_unused=True)
            values[rows] = torch.zeros_like(x) if relevance is None else relevance
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


def chosen_composite(name: str | None, composite: str | Composite | None, options: dict) -> Composite:
    """The composite that ``rule=``, ``composite=`` and the rule options given ask for.

    Every option is used or refused: a ``TypeError`` names an option that the
    chosen rule or standard composite does not take, or that comes with a
    :class:`~saliencelab.lrp.Composite` (whose rules carry their own parameters).

    Example
    -------
    >>> chosen_composite(None, "epsilon_plus", {"epsilon": 0.1}).layers["dense"]
    Epsilon(epsilon=0.1)
    >>> chosen_composite("epsilon", None, {"gamma": 0.5})
    Traceback (most recent call last):
    ...
    TypeError: the epsilon rule takes ['epsilon']; got ['gamma']
    """
    if composite is not None and name is not None:
        raise TypeError(f"pass rule= or composite=, not both; got rule={name!r} and composite={composite!r}")
    if isinstance(composite, Composite):
        if options:
            raise TypeError(
                f"a Composite carries its rules' parameters; it does not use {sorted(options)} "
                "(set them in its rules, e.g. rule('epsilon', epsilon=0.1))"
            )
        return composite
    if composite is not None:
        return standard_composite(composite, **options)
    return Composite(default=rule(name or "epsilon", **options))


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
    """Deep Taylor decomposition: z⁺ on hidden layers, z^B on the input layer (Montavon et al. 2017).

    ``low``/``high`` bound the input domain of z^B (numbers, or tensors
    broadcastable to one sample; default: each sample's own smallest and largest
    value, so a sample's map does not depend on the rest of the batch). Biases
    are ignored, as the derivation assumes; on bias-free ReLU networks with
    inputs in ``[0, 1]`` the relevances are non-negative and sum to the score.

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
    description = "Deep Taylor decomposition: z+ on hidden layers, z^B with each sample's bounds on the input layer"
    source = "Montavon et al. 2017"

    def __init__(
        self, model, *, low=None, high=None, stabilizer: float = STABILIZER, memory_budget: int | None = None
    ) -> None:
        composite = Composite(first=ZBox(low, high), default=ZPlus())
        super().__init__(model, composite=composite, bias="ignore", stabilizer=stabilizer, memory_budget=memory_budget)
