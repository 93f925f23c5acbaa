"""PatternNet and PatternAttribution (Kindermans et al. 2018): the distractor problem.

A linear neuron ``y = wᵀx`` responds to a signal direction ``a`` in its input,
but its weights ``w`` also cancel the distractors, so the gradient ``w`` is not
the signal. The *pattern* ``a`` is estimated from data:

- linear estimator: ``a = cov[x, y] / (wᵀ cov[x, y])``;
- two-component estimator (for ReLU layers): the same, from the samples where
  the neuron is active (``y > 0``) only, since only they pass the ReLU.

PatternNet back-projects the output through the patterns instead of the
weights (ReLUs and max pooling gate as in the gradient): the estimated signal in
input space. PatternAttribution back-projects through ``w ⊙ a``: the signal's
contribution to the output. Both start from the target score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.guard import preserved
from saliencelab.core.registry import register
from saliencelab.core.targets import Target, reported_target
from saliencelab.engine import DATA_MOVEMENT, LINEAR, QUERIES, ROUTING, Call, Interception, Propagate, gate_rules
from saliencelab.errors import UnsupportedOperationError
from saliencelab.methods.base import Method, check_inputs, outside_inference

LAYERS = ("linear", "conv1d", "conv2d")
ESTIMATORS = ("two_component", "linear")


def _rows(name: str, x: torch.Tensor, weight: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    """The inputs each output neuron sees, one row per (sample, position): ``(rows, fan_in)``."""
    if name == "linear":
        return x.reshape(-1, x.shape[-1])
    stride, padding, dilation, groups = (list(args[3:7]) + [None] * 4)[:4]
    stride = kwargs.get("stride", stride or 1)
    padding = kwargs.get("padding", padding or 0)
    dilation = kwargs.get("dilation", dilation or 1)
    if kwargs.get("groups", groups or 1) != 1 or isinstance(padding, str):
        raise UnsupportedOperationError(name, "pattern_net", "patterns need groups=1 and numeric padding")
    if name == "conv1d":
        x, kernel = x.unsqueeze(2), (1, weight.shape[-1])
        stride, padding, dilation = [(1, v if isinstance(v, int) else v[0]) for v in (stride, padding, dilation)]
        padding = (0, padding[1])
    else:
        kernel = weight.shape[-2:]
    patches = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)  # (N, fan_in, L)
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


class _Statistics:
    """Running sums for one layer's patterns, in float64."""

    def __init__(self, fan_out: int, fan_in: int, device: torch.device) -> None:
        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, dtype=torch.float64, device=device)

        self.n, self.x, self.y, self.xy = zeros(()), zeros(fan_in), zeros(fan_out), zeros(fan_out, fan_in)
        self.n_on, self.x_on, self.y_on, self.xy_on = (
            zeros(fan_out),
            zeros(fan_out, fan_in),
            zeros(fan_out),
            zeros(fan_out, fan_in),
        )

    def add(self, rows: torch.Tensor, outputs: torch.Tensor) -> None:
        rows, outputs = rows.double(), outputs.double()
        on = (outputs > 0).double()
        self.n += rows.shape[0]
        self.x += rows.sum(0)
        self.y += outputs.sum(0)
        self.xy += outputs.T @ rows
        self.n_on += on.sum(0)
        self.x_on += on.T @ rows
        self.y_on += (on * outputs).sum(0)
        self.xy_on += (on * outputs).T @ rows

    def pattern(self, weight: torch.Tensor, estimator: str) -> torch.Tensor:
        """The pattern ``a`` of every output neuron, shaped like ``weight``."""
        if estimator == "linear":
            n = self.n.clamp(min=1)
            cov = self.xy / n - torch.outer(self.y / n, self.x / n)
        else:
            n = self.n_on.clamp(min=1).unsqueeze(1)
            cov = self.xy_on / n - (self.y_on.unsqueeze(1) / n) * (self.x_on / n)
        w = weight.reshape(weight.shape[0], -1).double()
        norm = (cov * w).sum(1, keepdim=True)
        pattern = torch.where(norm.abs() > 1e-12, cov / torch.where(norm == 0, 1.0, norm), torch.zeros_like(cov))
        return pattern.reshape(weight.shape).to(weight.dtype)


PASSES = DATA_MOVEMENT | (LINEAR - {"conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}) | ROUTING
"""What passes the signal as the gradient does; ReLUs gate it (however they are written), the layers' patterns
replace their weights, and anything else (other nonlinearities, products of activations) raises."""

HINT = "patterns are estimated for ReLU networks of linear, conv1d and conv2d layers"


class _Collect:
    """Accumulates each layer's statistics during forward passes of the fitting data."""

    def __init__(self, stats: list[_Statistics]) -> None:
        self.stats = stats
        self.position = 0
        self.weights: list[torch.Tensor] = []

    def mode(self, method: str) -> Interception:
        """The interception that records every layer the forward pass runs."""
        rules = gate_rules(lambda grad, gate: grad * gate) | dict.fromkeys(LAYERS, self.record)
        return Interception(rules, method=method, passes=PASSES | QUERIES, hint=HINT)

    def record(self, call: Call) -> torch.Tensor:
        result = call.genuine()
        x, weight, bias = call.args[0], call.argument(1, "weight"), call.argument(2, "bias")
        rows = _rows(call.name, x, weight, call.args, call.kwargs)
        outputs = rows @ weight.reshape(weight.shape[0], -1).T + (0 if bias is None else bias)
        if self.position == len(self.stats):
            self.stats.append(_Statistics(weight.shape[0], rows.shape[1], rows.device))
            self.weights.append(weight.detach())
        self.stats[self.position].add(rows, outputs)
        self.position += 1
        return result


@register
class PatternNet(Method):
    """PatternNet: the estimated signal, back-projected through the fitted patterns.

    Fit the patterns once with :meth:`fit` (or pass ``fit_data=``); they are
    stored in ``patterns`` and reused by every call. ``estimator`` is
    ``"two_component"`` (default; for ReLU layers, the last layer uses the
    linear estimator) or ``"linear"``.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> g = torch.Generator().manual_seed(0)
    >>> y, noise = torch.randn(2000, 1, generator=g), torch.randn(2000, 1, generator=g)
    >>> data = y * torch.tensor([1.0, 0.0]) + noise * torch.tensor([1.0, 1.0])  # signal (1, 0), distractor (1, 1)
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> _ = model.weight.data.copy_(torch.tensor([[1.0, -1.0]]))  # extracts y exactly; the gradient is (1, -1)
    >>> net = sl.PatternNet(model, estimator="linear").fit(data)
    >>> torch.allclose(net.patterns[0], torch.tensor([[1.0, 0.0]]), atol=0.05)
    True
    """

    forward_arguments = False

    name = "pattern_net"
    description = "PatternNet: the signal estimated by fitted patterns, back-projected to the input"
    source = "Kindermans et al. 2018"
    uses_weights = False

    def __init__(
        self,
        model,
        *,
        fit_data: torch.Tensor | None = None,
        estimator: str = "two_component",
        batch_size: int = 256,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, memory_budget=memory_budget)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
        self.estimator = estimator
        self.batch_size = batch_size
        self.patterns: list[torch.Tensor] | None = None
        if fit_data is not None:
            self.fit(fit_data)

    def fit(self, data: torch.Tensor) -> PatternNet:
        """Estimate every layer's pattern from ``data`` (a batch of inputs, e.g. training data)."""
        check_inputs(data)
        with torch.inference_mode(False):  # the patterns must be usable in the backward pass later
            stats, self.weights = self._statistics(outside_inference(data))
            last = len(stats) - 1
            self.patterns = [
                s.pattern(w, "linear" if i == last else self.estimator)
                for i, (s, w) in enumerate(zip(stats, self.weights, strict=True))
            ]
        return self

    def _statistics(self, data: torch.Tensor) -> tuple[list[_Statistics], list[torch.Tensor]]:
        """Every layer's running sums over ``data``, and the layers' weights."""
        stats: list[_Statistics] = []
        weights: list[torch.Tensor] = []
        with preserved(self.model), torch.no_grad():
            for start in range(0, data.shape[0], self.batch_size):
                collect = _Collect(stats)
                mode = collect.mode(self.name)
                with mode:
                    self.forward(mode.mark(data[start : start + self.batch_size].clone()))
                weights = weights or collect.weights
        if not stats:
            raise ValueError("the model ran no linear or convolution layer: there is nothing to fit patterns for")
        return stats, weights

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        if self.patterns is None:
            raise ValueError(
                f"{self.name} needs fitted patterns: call {type(self).__name__}(model).fit(training_inputs) "
                "or pass fit_data= to sl.explain"
            )
        values = torch.empty_like(inputs)
        bound_chunks: list[Target] = []

        def run(rows: slice) -> None:
            mode = Interception(self._rules(), method=self.name, passes=PASSES | QUERIES, hint=HINT)
            x = mode.mark(inputs[rows].detach().clone().requires_grad_(True))
            with torch.enable_grad():
                with mode:
                    output = self.forward(x)
                bound = target.rows(torch.arange(rows.start, rows.stop)).bind(output)
                score = bound.scores(output)
                (signal,) = torch.autograd.grad(score, x, score.detach(), allow_unused=True)
            values[rows] = torch.zeros_like(x) if signal is None else signal
            bound_chunks.append(bound)

        self.run_chunked(inputs, run)
        resolved = reported_target(bound_chunks)
        return Attribution(values, None, self.name, resolved, {"estimator": self.estimator})

    def _rules(self) -> dict:
        """Rules that back-project each layer through its pattern (or ``w ⊙ a``), in forward order."""
        matrices = [a * w if self.uses_weights else a for a, w in zip(self.patterns, self.weights, strict=True)]
        position = [0]

        def layer(call: Call) -> torch.Tensor:
            func, args, kwargs = call.func, call.args, call.kwargs
            if position[0] >= len(matrices):
                raise ValueError(
                    f"the model ran more layers than the {len(matrices)} its patterns were fitted for; refit"
                )
            matrix = matrices[position[0]]
            position[0] += 1
            x, weight = args[0], call.argument(1, "weight")
            if matrix.shape != weight.shape:
                raise ValueError(
                    f"pattern {tuple(matrix.shape)} does not match the weight {tuple(weight.shape)}; refit"
                )
            rest = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}

            def compute(t):
                return func(t, *args[1:], **kwargs) if len(args) > 1 else func(t, **kwargs)

            def propagate(t, grad):
                with torch.enable_grad():
                    leaf = t.detach().requires_grad_(True)
                    z = func(leaf, matrix.to(t.dtype), None, *args[3:], **rest)
                    (back,) = torch.autograd.grad(z, leaf, grad)
                return (back,)

            return Propagate.apply(compute, propagate, x)

        return gate_rules(lambda grad, gate: grad * gate) | dict.fromkeys(LAYERS, layer)


@register
class PatternAttribution(PatternNet):
    """PatternAttribution: the signal's contribution, back-projected through ``w ⊙ a`` (Kindermans et al. 2018).

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> g = torch.Generator().manual_seed(0)
    >>> y, noise = torch.randn(2000, 1, generator=g), torch.randn(2000, 1, generator=g)
    >>> data = y * torch.tensor([1.0, 0.0]) + noise * torch.tensor([1.0, 1.0])
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> _ = model.weight.data.copy_(torch.tensor([[1.0, -1.0]]))
    >>> a = sl.PatternAttribution(model, estimator="linear", fit_data=data)(torch.tensor([[2.0, 1.0]]))
    >>> torch.allclose(a.values, torch.tensor([[1.0, 0.0]]), atol=0.05)  # y = 1 goes to where the signal lives
    True
    """

    name = "pattern_attribution"
    description = "PatternAttribution: the estimated signal's contribution, back-projected through w * a"
    uses_weights = True
