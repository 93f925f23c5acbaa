"""What every attribution method shares: input checks, model protection, gradients."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, ClassVar

import torch
from torch import nn

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.batching import ActivationMeter, run_chunked
from saliencelab.core.caller import user_stacklevel
from saliencelab.core.degenerate import as_flags, degenerate_rows, describe_degenerate, warns_about_degenerate_maps
from saliencelab.core.guard import preserved
from saliencelab.core.progress import progress_bar
from saliencelab.core.sampling import noise_scale
from saliencelab.core.structure import InputStructure, Structured, rows_of
from saliencelab.core.targets import Target, TargetSpec, prepare_target
from saliencelab.core.validation import batch_dimension_hint, check_memory_budget
from saliencelab.engine import Interception, OpRule, require_sight
from saliencelab.errors import DegenerateMapWarning, NonFiniteResultError
from saliencelab.methods.calling import call


class Method:
    """Base class of the attribution methods.

    A method is built with the model and its options and called on a batch:
    ``Method(model, **options)(inputs, target=..., baseline=...)``. Subclasses set
    ``name``, ``description`` and ``source`` and implement :meth:`_attribute`;
    gradient-based ones may set ``rules`` (operation name -> rule) to replace the
    backward of those operations, and ``passes``, the operations that are exact
    for the method as they are: with rules set, any other operation on an
    input-dependent tensor raises (:class:`~saliencelab.engine.Interception`).

    Every method works inside ``torch.no_grad()`` and ``torch.inference_mode()``
    (it switches both off for its own work) and on inputs made under inference
    mode, and never returns a map with NaN or Inf values.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(4, 3)
    >>> a = sl.Gradient(model)(torch.randn(2, 4), target=1)
    >>> torch.allclose(a.values, model.weight[1].detach().expand(2, 4))
    True
    """

    name: ClassVar[str] = "model"
    """The method's registered name (the base class only runs the model: its label in progress bars)."""
    description: ClassVar[str]
    source: ClassVar[str]
    quick_options: ClassVar[Mapping[str, Any]] = {}
    """Options for a cheap run on a small model (few samples, steps or windows): what the contract tests
    run every registered method with, so that a new method is held to them without editing a list."""
    takes_baseline: ClassVar[bool] = False
    draws_references: ClassVar[bool] = False
    """True when a baseline tensor is a distribution of references to draw from."""
    rules: ClassVar[Mapping[str, OpRule]] = {}
    passes: ClassVar[frozenset[str]] = frozenset()
    structured_inputs: ClassVar[bool] = False
    """True when the method works feature by feature, so several inputs can be packed side by side for it."""
    input_shaped: ClassVar[bool] = True
    """True when the values have the inputs' shapes (and, for several inputs, their structure); a CAM's map
    of several inputs is the layer's and stays one tensor."""
    layer_attribution: ClassVar[bool] = False
    """True when the method can attribute to a hidden layer's activations (``layer=``)."""
    structure: InputStructure | None = None
    """How this call's inputs are laid out when several are packed side by side (None: one tensor as it is)."""
    progress: bool | None = None
    """A progress bar: ``True`` always, ``False`` never, ``None`` on a terminal for calls longer than 2 s."""
    baseline_in_input_space: ClassVar[bool] = True
    """At a layer, whether the baseline is an input mapped through the layer (gradient and reference methods,
    Captum's ``LayerIntegratedGradients``) or replaces activations as it is (perturbation methods, Captum's
    ``LayerFeatureAblation``, default 0)."""
    forward_arguments: ClassVar[bool] = True
    """False when the method runs the model outside a call (PatternNet fits its patterns when it is built)."""
    integer_inputs: ClassVar[bool] = False
    """True when the method only evaluates the model (never differentiates it), so integer inputs (token ids) work."""
    hint: ClassVar[str] = ""
    """What to do instead when the model uses an operation outside ``rules`` and ``passes``."""
    centred_display: ClassVar[bool] = False
    """True when a map's values are expected scores whose level carries no meaning (RISE): a picture of the map
    shows it relative to its own mean, so that what stands out is what raises or lowers the score."""

    def __init__(self, model: Any, *, memory_budget: int | None = None) -> None:
        if not callable(model):
            raise TypeError(f"model must be a torch.nn.Module or a callable; got {type(model).__name__}")
        self.model = model
        self.memory_budget = check_memory_budget(memory_budget)

    def __call__(
        self,
        inputs: Structured,
        target: TargetSpec = None,
        baseline: BaselineSpec | Sequence[BaselineSpec] | Mapping[str, BaselineSpec] = None,
        *,
        forward_args: object = None,
        layer: nn.Module | str | None = None,
        layer_input: bool = False,
        progress: bool | None = None,
    ) -> Attribution:
        """Attribute the model's ``target`` score for each sample of ``inputs``.

        ``inputs`` is a tensor, a tuple or list of tensors (the model is called
        ``model(*inputs)``) or a dict of tensors (``model(**inputs)``); ``values``
        has the same structure and ``delta`` is per sample over all of them.
        ``baseline`` is one spec for every input or one per input, in the same
        structure. ``forward_args`` are extra model arguments that are not
        attributed (a tuple: positional, a dict: keywords); a tensor among them
        whose first dimension is the batch size follows the rows of its sample.
        Methods that need an image (``structured_inputs`` False) refuse several inputs.
        ``layer`` (a module or dotted name): attribute to that layer's output
        (``layer_input=True``: its input) instead of the inputs, Captum's ``Layer*``
        semantics (:mod:`saliencelab.core.layers`); the baseline is given in input
        space and mapped through the layer. ``target=sl.neuron(layer, index)``
        explains one unit of a hidden layer. ``progress``: a progress bar
        (``True``/``False``; default: on a terminal for calls longer than 2 s).

        A TorchScript model, or the layers of a ``torch.export`` graph, that the
        method would need to see inside raise
        :class:`~saliencelab.engine.OpaqueModelError` (:func:`~saliencelab.engine.require_sight`).
        """
        if progress is not None:  # this call's setting: the method object stays as it was
            configured = copy.copy(self)
            configured.progress = progress
            options = {"forward_args": forward_args, "layer": layer, "layer_input": layer_input}
            return configured(inputs, target, baseline, **options)
        return call(self, inputs, target, baseline, forward_args, layer, layer_input)

    def run_bound(
        self, bound: Method, inputs: torch.Tensor, target: TargetSpec, baseline: BaselineSpec
    ) -> Attribution:
        """``bound._attribute`` (this method on the model as the call runs it) on a checked batch, with the
        user's model guarded and the result checked."""
        with torch.inference_mode(False), torch.enable_grad():
            inputs, baseline, target = (outside_inference(value) for value in (inputs, baseline, target))
            with preserved(self.model), require_sight(self.name), batch_dimension_hint(self.model, inputs):
                result = bound._attribute(inputs, prepare_target(target, inputs.shape[0]), baseline)
        return checked_result(result)

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
        """The model's output for ``x``, checked to be a tensor with one row per input row.

        ``samples``: the sample each row of ``x`` belongs to, when the rows are not
        the samples themselves in order; extra forward arguments with one row per
        sample follow them (:func:`~saliencelab.core.structure.rows_of`).
        """
        with rows_of(samples):
            return checked_output(self.model(x), x.shape[0])

    def outputs(self, x: torch.Tensor, samples: torch.Tensor | None = None) -> torch.Tensor:
        """The model's outputs for the rows of ``x`` (of the samples ``samples``) without gradients, in chunks."""
        outputs: list[torch.Tensor] = []

        def run(rows: slice) -> None:
            with torch.no_grad():
                outputs.append(self.forward(x[rows], None if samples is None else samples[rows]))

        self.run_chunked(x, run)
        return torch.cat(outputs)

    def inner(self, method: Method) -> Method:
        """``method``, a part of this one (SmoothGrad's base, Guided Grad-CAM's halves), on the model as this call
        runs it: several inputs packed, forward arguments, a layer or a neuron.

        Example
        -------
        >>> import torch, saliencelab as sl
        >>> outer = sl.Gradient(torch.nn.Identity())
        >>> outer.inner(sl.Gradient(torch.nn.Linear(2, 2))).model is outer.model
        True
        """
        bound = copy.copy(method)
        bound.model, bound.structure = self.model, self.structure
        return bound

    def noise_scale(self, inputs: torch.Tensor, noise: float) -> torch.Tensor:
        """σ of the noise: ``noise`` times each sample's value range, per input when several are packed.

        Example
        -------
        >>> import torch, saliencelab as sl
        >>> sl.Gradient(torch.nn.Identity()).noise_scale(torch.tensor([[0.0, 2.0]]), 0.1).flatten().tolist()
        [0.20000000298023224]
        """
        if self.structure is None or not self.structure.packed:
            return noise_scale(inputs, noise)
        pieces = inputs.split([part.size for part in self.structure.parts], dim=1)
        return torch.cat([noise_scale(piece, noise).expand_as(piece) for piece in pieces], dim=1)

    def target_scores(self, output: torch.Tensor, target: Target) -> torch.Tensor:
        """The score each row of ``output`` explains, for a target bound to it."""
        return target.scores(output)

    def scores(self, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        """Target scores for the samples ``x`` themselves without gradients, and the target bound to the output."""
        output = self.outputs(x, torch.arange(x.shape[0]))
        bound = target.bind(output)
        return self.target_scores(output, bound), bound

    def accumulate_gradients(
        self,
        total_rows: int,
        make_rows: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        target: Target,
        out: torch.Tensor,
        own: float = 0,
    ) -> torch.Tensor:
        """Add ``scale_r ⊙ ∇f(point_r)`` to ``out[sample_r]`` for every row r, in chunks.

        ``make_rows(row_index)`` returns the points, the sample each row belongs
        to and the scale of each row's gradient; ``target`` is bound per sample.
        ``own``: how many tensors of a row's size ``make_rows`` and the gradient
        hold per row (see :meth:`run_chunked`). This is the inner loop of every
        path and sampling method.
        """

        def run(rows: slice) -> None:
            points, sample, scale = make_rows(torch.arange(rows.start, rows.stop))
            grad, _ = self.input_gradients(points, target.rows(sample), sample)
            out.index_add_(0, sample.to(out.device), (scale * grad).to(out.dtype))

        self.run_chunked(out, run, total_rows, own=own)
        return out

    def run_chunked(
        self,
        rows_like: torch.Tensor,
        run: Callable[[slice], None],
        total_rows: int = -1,
        passes: float = 3,
        own: float = 0,
    ) -> None:
        """Run ``total_rows`` rows (default: one per row of ``rows_like``) in chunks under the budget.

        Each row is shaped like a row of ``rows_like``; what a row's forward pass
        allocates is measured once per model and row shape, and a row needs
        ``passes`` times that (3: a forward+backward pass), plus ``own`` tensors
        of a row's size that the method itself holds per row (points, noise,
        masks, gradients): on a cheap model with large inputs those dominate.
        On a CPU, chunks are also kept near the size that runs fastest
        (:func:`~saliencelab.core.batching.fastest_rows`).
        """

        def measure() -> int:
            first = torch.zeros(1, dtype=torch.long)  # made outside the meter: it measures the model's allocations only
            with torch.inference_mode(), ActivationMeter() as meter:
                self.forward(rows_like[:1], first)
            return meter.bytes

        total = rows_like.shape[0] if total_rows < 0 else total_rows
        key = (tuple(rows_like.shape[1:]), rows_like.dtype, rows_like.device.type)
        row_bytes = int(own * math.prod(rows_like.shape[1:]) * rows_like.element_size()) if own else 0
        with progress_bar(self.name, total, self.progress) as advance:

            def counted(rows: slice) -> None:
                run(rows)
                advance(rows.stop - rows.start)

            run_chunked(
                total,
                counted,
                self.memory_budget,
                measure=measure,
                owner=self.model,
                key=key,
                passes=passes,
                row_bytes=row_bytes,
                cpu=rows_like.device.type == "cpu",
            )

    def input_gradients(
        self, x: torch.Tensor, target: Target, samples: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Target]:
        """Gradient of each row's target score with respect to its input, under ``rules``.

        Returns the gradient (shape of ``x``) and the target bound to the output;
        ``samples`` as for :meth:`forward`.
        """
        grad, bound, _ = self.gradients_and_scores(x, target, samples)
        return grad, bound

    def gradients_and_scores(
        self, x: torch.Tensor, target: Target, samples: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Target, torch.Tensor]:
        """:meth:`input_gradients` plus each row's target score from the same forward pass, ``(rows,)``."""
        x = x.detach().requires_grad_(True)
        mode = Interception(self.rules, method=self.name, passes=self.passes, hint=self.hint) if self.rules else None
        if mode is not None:
            mode.mark(x)
        with torch.enable_grad():
            with mode or nullcontext():
                output = self.forward(x, samples)
            bound = target.bind(output)
            scores = bound.scores(output)
            if not scores.requires_grad:
                return torch.zeros_like(x), bound, scores.detach()
            (grad,) = torch.autograd.grad(scores.sum(), x, allow_unused=True)
        return (torch.zeros_like(x) if grad is None else grad), bound, scores.detach()


def check_takes_forward_args(cls: type[Method]) -> None:
    """An error if ``cls`` runs the model outside a call, where forward arguments cannot reach it.

    Example
    -------
    >>> from saliencelab.core import registry
    >>> check_takes_forward_args(registry.get("pattern_net"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: pattern_net runs the model before the call ...
    """
    if not cls.forward_arguments:
        raise ValueError(
            f"{cls.name} runs the model before the call (it fits on fit_data when built), without forward_args; "
            "bind them into the model instead, e.g. lambda x: model(x, mask)"
        )


def checked_output(output: object, rows: int) -> torch.Tensor:
    """``output``, if it is a tensor with ``rows`` rows; else an error that says how to wrap the model.

    Example
    -------
    >>> checked_output(torch.zeros(2, 3), 2).shape
    torch.Size([2, 3])
    """
    if not isinstance(output, torch.Tensor):
        raise ValueError(
            f"the model returned a {type(output).__name__}, not a tensor; wrap it so that it "
            "returns one tensor of scores, e.g. lambda x: model(x)['logits']"
        )
    if output.ndim == 0 or output.shape[0] != rows:
        raise ValueError(
            f"the model mapped a batch of {rows} inputs to an output of shape "
            f"{tuple(output.shape)}; it must return one output per sample, shape (N, ...)"
        )
    return output


def outside_inference(value: Any) -> Any:
    """``value`` usable outside inference mode: an inference tensor is copied, anything else kept.

    Example
    -------
    >>> with torch.inference_mode():
    ...     x = torch.ones(2)
    >>> x.is_inference(), outside_inference(x).is_inference()
    (True, False)
    """
    if isinstance(value, torch.Tensor) and value.is_inference():
        with torch.inference_mode(False):
            return value.clone()
    return value


def non_finite(tensor: torch.Tensor) -> str:
    """How many values of ``tensor`` are NaN or Inf and where the first is, in words ('' when none).

    Example
    -------
    >>> non_finite(torch.tensor([[1.0, float("nan")]])), non_finite(torch.ones(2))
    ('1 NaN or Inf values (first at index (0, 1))', '')
    """
    if math.isfinite(tensor.sum()):  # one reduction: a NaN or Inf makes the sum NaN or Inf
        return ""
    finite = torch.isfinite(tensor)  # a sum that overflowed, or values that are not finite
    if finite.all():
        return ""
    bad = (~finite).nonzero()
    return f"{bad.shape[0]} NaN or Inf values (first at index {tuple(bad[0].tolist())})"


def check_finite(attribution: Attribution, values: bool = True) -> Attribution:
    """``attribution``, if its values (and delta) are finite; else an error that says where they are not.

    ``values=False`` checks the delta only (the values are known to be finite).

    Example
    -------
    >>> check_finite(Attribution(torch.tensor([[float("inf")]]), None, "demo", None))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    saliencelab.errors.NonFiniteResultError: demo computed 1 NaN or Inf values (first at index (0, 0)) in its ...
    """
    checked = attribution.values if values else None
    for what, tensor in (("attribution values", checked), ("completeness errors", attribution.delta)):
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            continue
        bad = non_finite(tensor)
        if bad:
            raise NonFiniteResultError(
                f"{attribution.method} computed {bad} in its {what}; the model's scores or gradients "
                "overflowed for these inputs. Explain the logits rather than probabilities, use float64, "
                "or rescale the inputs"
            )
    return attribution


def checked_result(attribution: Attribution) -> Attribution:
    """:func:`check_finite`, then :func:`flag_degenerate`, reading the values once.

    A map with NaN or Inf values is always flagged degenerate, so the values are
    searched for them only when some map is flagged.

    Example
    -------
    >>> checked_result(Attribution(torch.tensor([[1.0, float("nan")]]), None, "demo", None))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    saliencelab.errors.NonFiniteResultError: demo computed 1 NaN or Inf values (first at index (0, 1)) in its ...
    >>> checked_result(Attribution(torch.tensor([[1.0, 2.0]]), None, "demo", None)).info["degenerate"].tolist()
    [False]
    """
    rows = degenerate_rows(attribution.values)
    check_finite(attribution, values=any(rows))
    return flag_degenerate(attribution, rows)


def flag_degenerate(attribution: Attribution, rows: list[bool] | None = None) -> Attribution:
    """``attribution`` with ``info["degenerate"]``, ``(N,)`` bool: which samples' maps are constant.

    Warns (:class:`~saliencelab.DegenerateMapWarning`) when any is: a constant map,
    all zero included, attributes nothing, and every check fails it. ``rows``:
    :func:`~saliencelab.core.degenerate.degenerate_rows` of the values, when already computed.

    Example
    -------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     flagged = flag_degenerate(Attribution(torch.tensor([[0.0, 0.0], [1.0, 2.0]]), None, "demo", None))
    >>> flagged.info["degenerate"].tolist(), len(caught)
    ([True, False], 1)
    """
    rows = degenerate_rows(attribution.values) if rows is None else rows
    flags = as_flags(rows, attribution.values.device)
    attribution.info["degenerate"] = flags
    if any(rows) and warns_about_degenerate_maps():
        warnings.warn(
            f"{attribution.method} returned a constant map (no attribution) for {describe_degenerate(flags)}; "
            "they are flagged in info['degenerate'] and fail every check. For a saturated output explain the "
            "logit or log-probability; for a CAM, read a layer whose activations vary over the input",
            DegenerateMapWarning,
            stacklevel=user_stacklevel(),
        )
    return attribution


def check_inputs(inputs: object, name: object = None, *, integers: bool = False) -> torch.Tensor:
    """Reject inputs that cannot be explained, saying why.

    Example
    -------
    >>> check_inputs(torch.tensor([[float("nan")]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the inputs contain 1 NaN or Inf values (first at index (0, 0)); ...
    """
    what = "inputs" if name is None else f"input {name!r}"
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor with a batch dimension; got {type(inputs).__name__}")
    if not inputs.is_floating_point() and not integers:
        raise TypeError(
            f"{what} must be a floating-point tensor to take gradients; got dtype {inputs.dtype}. Token ids are "
            "attributed at their embedding layer (layer=...) or by a perturbation method; numbers that are features "
            "convert with .float()"
        )
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(
            f"{what} must be a non-empty batch (N, ...); got shape {tuple(inputs.shape)}. "
            "A single sample needs a batch dimension: inputs.unsqueeze(0)"
        )
    bad = non_finite(inputs) if inputs.is_floating_point() else ""
    if bad:
        raise ValueError(
            f"{'the inputs' if name is None else what} contain {bad}; attributions of non-finite inputs are "
            "meaningless: clean or impute them first"
        )
    return inputs
