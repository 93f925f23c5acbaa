"""Sanity checks for saliency maps: model and data randomisation (Adebayo et al. 2018).

An explanation that barely changes when the model's weights are
re-initialised (model randomisation) or when the model was trained on shuffled
labels (data randomisation) is not explaining the model; edge detectors pass
neither check. Gradients and Grad-CAM pass; Guided Backprop and Guided Grad-CAM
fail.

:func:`model_randomization` re-initialises the layers of a copy of the model from
the output down and compares each step's maps with the trained model's.

* Layers are the modules that own parameters, in the order the **forward pass**
  calls them (found with hooks, whatever order they were registered in).
  Normalisation layers (batch, layer, group, instance, RMS norm) are **not**
  re-initialised unless named in ``layers``: resetting them to the identity
  changes the maps for reasons unrelated to what the model learnt (Quantus resets
  them).
* A layer is re-initialised as at construction, by its ``reset_parameters()``
  under a seed derived from ``seed`` and the layer's name, so a layer gets the
  same random weights in both modes. Its random draws come from a generator of
  its own (:class:`SeededDraws`), never from the global RNG: the user's RNG is
  untouched, and another thread's draws can neither change the weights nor be
  changed by them.
* The target is the **trained** model's resolved target at every step (the argmax
  class of the trained model for ``target=None``).
* The reference maps are computed once; cascading mode randomises one copy
  progressively, independent mode restores each layer from a snapshot of its own
  parameters and buffers after its step, so no step copies the whole model. The
  user's model is only read (copied once), so calls in other threads see it unchanged.

Example
-------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
>>> df = model_randomization(net, torch.randn(5, 4), method="gradient", progress=False)
>>> df["layer"].tolist(), df["step"].tolist()
(['2', '0'], [1, 2])
"""

from __future__ import annotations

import copy
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from tqdm.auto import tqdm

from saliencelab.core.caller import user_stacklevel
from saliencelab.core.degenerate import degenerate_maps, describe_degenerate, warns_about_degenerate_maps
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.core.targets import TargetSpec, resolve_target
from saliencelab.engine.watch import watching_modules
from saliencelab.errors import DegenerateMapWarning
from saliencelab.evaluate.explainers import as_explainer, method_name
from saliencelab.evaluate.similarity import METRICS
from saliencelab.evaluate.similarity import similarity as compare

MODES = ("cascading", "independent")

NORMALIZATION: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # batch and instance norm
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)
"""Layers left as trained unless named in ``layers``."""


def model_randomization(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    method: str | Callable,
    target: TargetSpec = None,
    mode: str = "cascading",
    similarity: str = "spearman_abs",
    aggregate: str = "sum",
    seed: int = 0,
    layers: Sequence[str | nn.Module] | None = None,
    reference: torch.Tensor | None = None,
    progress: bool = True,
    method_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Compare the trained model's maps with those of copies whose layers are re-initialised.

    Parameters
    ----------
    model:
        The trained model; never changed (the work happens on a deep copy).
    inputs:
        A batch of inputs.
    method:
        A method name or a callable ``(model, inputs, target) -> tensor``.
    method_options:
        The method's options, e.g. ``{"layer": "features.3"}`` or ``{"seed": 1}``
        (kept apart from this function's own ``seed``). A ``layer`` option may be a
        module of ``model``; it is passed on by name.
    target:
        Resolved once on the trained model and used unchanged at every step.
    mode:
        ``"cascading"``: step k randomises the top k layers (output side first);
        ``"independent"``: step k randomises only the k-th layer from the top.
    similarity:
        A metric of :func:`~saliencelab.evaluate.similarity.similarity`.
    aggregate:
        The channel reduction passed to the similarity.
    seed:
        Seeds the re-initialisation; the same seed gives the same table.
    layers:
        Dotted names (or modules of ``model``) to randomise, each as one unit with
        its submodules (normalisation layers inside a named block keep their
        weights; a normalisation layer named itself is reset). ``None``: every
        module owning parameters, normalisation layers excepted. Rows always follow
        the forward order, from the output down.
    reference:
        The trained model's maps for ``inputs`` and the same target, when the
        caller has them already (they are not computed again).
    progress:
        Show a progress bar over the steps.

    Returns
    -------
    pandas.DataFrame
        One row per randomisation step (the trained model is the reference, not a
        row): ``step`` (1, 2, ...), ``layer`` (the dotted name of the layer randomised
        last), ``similarity`` (mean over samples) and ``per_sample`` (a list of N
        values). An input whose trained map is constant (all zero included) has
        similarity NaN, not the 0 that would read as a pass (with a
        :class:`~saliencelab.DegenerateMapWarning`), and so has the mean.
        ``df.attrs`` holds ``reference`` (the trained model's maps), ``maps`` (one
        tensor per step, on the CPU), ``method``, ``mode``, ``metric``, ``aggregate``, ``seed`` and ``target``.

    Raises
    ------
    ValueError
        For an unknown mode, metric or layer name, a named layer the forward pass
        does not call, or a layer holding parameters without ``reset_parameters()``
        (name the layers to randomise with ``layers=``).

    Example
    -------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> inputs = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    >>> edges = lambda model, x, target: x.diff(dim=1)  # ignores the model
    >>> df = model_randomization(net, inputs, method=edges, similarity="pearson", progress=False)
    >>> df[["step", "layer", "similarity"]].values.tolist()
    [[1, '2', 1.0], [2, '0', 1.0]]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model randomisation re-initialises layers: model must be a torch.nn.Module, got {model!r}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use 'cascading' or 'independent'")
    _check_metric(similarity)
    generator(seed, torch.device("cpu"))  # checks the seed
    explain_fn = as_explainer(method, **_layer_by_name(model, dict(method_options or {})))
    work = copy.deepcopy(model)
    order, output = _forward_order(work, inputs)
    resolved = resolve_target(target, output).public()
    units = _units(work, order, _names(model, layers))
    reference = explain_fn(work, inputs, resolved) if reference is None else _given(reference, inputs)
    undefined = _degenerate_references(reference, method_name(method))

    rows, maps, label = [], [], method_name(method)
    for step, (name, unit, modules) in enumerate(tqdm(units, desc="model randomisation", disable=not progress), 1):
        saved = unit.state_dict() if mode == "independent" else None
        if saved is not None:
            saved = {key: value.clone() for key, value in saved.items()}
        _reinitialize(modules, _layer_seed(seed, name))
        step_maps = explain_fn(work, inputs, resolved)
        values = compare(reference, step_maps, similarity, aggregate=aggregate).masked_fill(undefined, float("nan"))
        mean, per_sample = values.mean().item(), values.tolist()
        rows.append({"step": step, "layer": name, "method": label, "similarity": mean, "per_sample": per_sample})
        maps.append(step_maps.cpu())
        if saved is not None:
            unit.load_state_dict(saved)
    df = pd.DataFrame(rows, columns=["step", "layer", "method", "similarity", "per_sample"])
    df.attrs.update(
        reference=reference.cpu(),
        maps=maps,
        method=label,
        mode=mode,
        metric=similarity,
        aggregate=aggregate,
        seed=seed,
        target=resolved.cpu() if isinstance(resolved, torch.Tensor) else resolved,
    )
    return df


def data_randomization(
    model: nn.Module | Callable,
    shuffled_model: nn.Module | Callable,
    inputs: torch.Tensor,
    *,
    method: str | Callable,
    target: TargetSpec = None,
    similarity: str = "spearman_abs",
    aggregate: str = "sum",
    reference: torch.Tensor | None = None,
    method_options: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Per-sample similarity of the maps of a model trained on true labels and one trained on shuffled labels.

    Both maps explain the **true-label model's** resolved target (its argmax class
    for ``target=None``). A method that explains the model should give dissimilar
    maps; Adebayo et al. report that only Grad-CAM and gradients clearly do.

    Parameters
    ----------
    model, shuffled_model:
        The same architecture trained on the true and on randomly permuted labels.
    inputs:
        A batch of inputs.
    method:
        A method name or a callable ``(model, inputs, target) -> tensor``.
    method_options:
        The method's options; a ``layer`` module of ``model`` is passed on by name,
        so it names the same layer in both.
    target, similarity, aggregate, reference:
        As in :func:`model_randomization` (``reference``: the true-label model's maps, if already computed).

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``; NaN for an input whose trained map is constant, as in :func:`model_randomization`.

    Example
    -------
    >>> import torch
    >>> trained, shuffled = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    >>> with torch.no_grad():
    ...     _ = trained.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    ...     _ = shuffled.weight.copy_(torch.tensor([[3.0, 2.0, 1.0], [0.0, 0.0, 0.0]]))
    >>> data_randomization(trained, shuffled, torch.ones(2, 3), method="gradient", target=0, similarity="spearman")
    tensor([-1., -1.])
    """
    _check_metric(similarity)
    options = dict(method_options or {})
    if isinstance(model, nn.Module):
        options = _layer_by_name(model, options)
    explain_fn = as_explainer(method, **options)
    with preserved(model), torch.no_grad():
        resolved = resolve_target(target, model(inputs)).public()
    trained_maps = explain_fn(model, inputs, resolved) if reference is None else _given(reference, inputs)
    undefined = _degenerate_references(trained_maps, method_name(method))
    shuffled_maps = explain_fn(shuffled_model, inputs, resolved)
    return compare(trained_maps, shuffled_maps, similarity, aggregate=aggregate).masked_fill(undefined, float("nan"))


def _degenerate_references(reference: torch.Tensor, label: str) -> torch.Tensor:
    """Which trained maps are constant, warning when any is: their similarity to anything is undefined."""
    flags = degenerate_maps(reference).to(reference.device)
    if flags.any() and warns_about_degenerate_maps():
        warnings.warn(
            f"{label}: the trained model's map is constant for {describe_degenerate(flags)}; its similarity "
            "is undefined (NaN), not 0, which would read as a passed check",
            DegenerateMapWarning,
            stacklevel=user_stacklevel(),
        )
    return flags


def _given(reference: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """The caller's reference maps, checked to hold one map per input."""
    if not isinstance(reference, torch.Tensor) or reference.ndim == 0 or reference.shape[0] != inputs.shape[0]:
        shape = tuple(reference.shape) if isinstance(reference, torch.Tensor) else type(reference).__name__
        raise ValueError(f"reference must hold one map per input ({inputs.shape[0]}); got {shape}")
    return reference.detach()


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown similarity metric {metric!r}; use one of {', '.join(METRICS)}")


def _layer_by_name(model: nn.Module, options: dict[str, Any]) -> dict[str, Any]:
    """Replace a ``layer=`` module of ``model`` by its dotted name, which also names it in a copy."""
    layer = options.get("layer")
    if not isinstance(layer, nn.Module):
        return options
    return {**options, "layer": _name_of(model, layer, "layer")}


def _name_of(model: nn.Module, module: nn.Module, what: str) -> str:
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    raise ValueError(f"the {what} {type(module).__name__} is not a module of the model; pass its dotted name instead")


def _names(model: nn.Module, layers: Sequence[str | nn.Module] | None) -> list[str] | None:
    if layers is None:
        return None
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    names = [layer if isinstance(layer, str) else _name_of(model, layer, "layer") for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layers names a layer twice: {names}")
    if not names:
        raise ValueError("layers is empty; name at least one layer, or pass None for every layer with parameters")
    return names


def _forward_order(model: nn.Module, inputs: torch.Tensor) -> tuple[list[nn.Module], torch.Tensor]:
    """The modules in the order the forward pass first calls them, and the model's output."""
    order: dict[nn.Module, None] = {}
    with preserved(model), torch.no_grad(), watching_modules(before=lambda module, _args: order.setdefault(module)):
        output = model(inputs)
    return list(order), output


def _owns_parameters(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def _units(
    model: nn.Module, order: list[nn.Module], names: list[str] | None
) -> list[tuple[str, nn.Module, list[nn.Module]]]:
    """(name, layer, modules to re-initialise) per layer, from the output down."""
    named = {module: name for name, module in reversed(list(model.named_modules()))}
    position = {module: i for i, module in enumerate(order)}
    if names is None:
        chosen = [m for m in model.modules() if _owns_parameters(m) and not isinstance(m, NORMALIZATION)]
        unused = [named[m] for m in chosen if m not in position]
        if unused:
            warnings.warn(
                f"layers {unused} hold parameters but the forward pass never calls them; they are not randomised",
                stacklevel=3,
            )
        chosen = [m for m in chosen if m in position]
        if not chosen:
            raise ValueError("the model has no layer with parameters (normalisation layers aside) to randomise")
    else:
        modules = dict(model.named_modules())
        chosen = []
        for name in names:
            if name not in modules:
                candidates = [named[m] for m in order if _owns_parameters(m)]
                raise ValueError(f"unknown layer {name!r}; layers with parameters: {', '.join(candidates)}")
            if modules[name] not in position:
                raise ValueError(f"layer {name!r} is not called by the forward pass, so randomising it changes nothing")
            chosen.append(modules[name])
    chosen.sort(key=position.__getitem__, reverse=True)
    return [(named[unit], unit, _parameterised(unit, named)) for unit in chosen]


def _parameterised(unit: nn.Module, named: dict[nn.Module, str]) -> list[nn.Module]:
    """The modules of ``unit`` to re-initialise: those owning parameters, normalisation layers inside it excepted."""
    found = [m for m in unit.modules() if _owns_parameters(m) and (m is unit or not isinstance(m, NORMALIZATION))]
    if not found:
        raise ValueError(
            f"layer {named[unit]!r} has no parameters to randomise (normalisation layers inside keep theirs)"
        )
    for module in found:
        if not callable(getattr(module, "reset_parameters", None)):
            raise ValueError(
                f"layer {named[module]!r} ({type(module).__name__}) holds parameters but has no reset_parameters(), "
                "so it cannot be re-initialised as at construction; give it one, or pass layers= without it"
            )
    return found


def _layer_seed(seed: int, name: str) -> int:
    """A layer's seed: the same in both modes and whichever other layers are chosen."""
    return (seed * 0x9E3779B1 + zlib.crc32(name.encode())) % (1 << 63)


def _reinitialize(modules: list[nn.Module], seed: int) -> None:
    with SeededDraws(seed), torch.no_grad():
        for module in modules:
            module.reset_parameters()


class SeededDraws(TorchDispatchMode):
    """Within the block, this thread's random operations draw from generators seeded with ``seed``, one per device.

    ``reset_parameters()`` and ``torch.nn.init`` draw from the global RNG, which
    every thread shares: seeding it would reset another thread's stream, and
    that thread's draws would change the weights. Here each random operation
    that takes no generator gets this block's, for its device (a fresh
    ``torch.Generator`` seeded with ``seed`` gives the same numbers as
    ``torch.manual_seed(seed)``); one that cannot take a generator is an error.

    Example
    -------
    >>> with SeededDraws(7):
    ...     drawn = torch.rand(3)
    >>> torch.equal(drawn, torch.rand(3, generator=torch.Generator().manual_seed(7)))
    True
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self.generators: dict[torch.device, torch.Generator] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if torch.Tag.nondeterministic_seeded in func.tags and kwargs.get("generator") is None:
            func = _with_generator(func)
            kwargs["generator"] = self._generator(_device(args, kwargs))
        return func(*args, **kwargs)

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self.generators:
            self.generators[device] = generator(self.seed, device)
        return self.generators[device]


def _with_generator(func):
    """``func``, or its overload that takes the same arguments and a ``generator`` (``rand`` -> ``rand.generator``)."""
    names = [argument.name for argument in func._schema.arguments]
    if "generator" in names:
        return func
    for overload in func.overloadpacket.overloads():
        candidate = getattr(func.overloadpacket, overload)
        arguments = [argument.name for argument in candidate._schema.arguments]
        if "generator" in arguments and [name for name in arguments if name != "generator"] == names:
            return candidate
    raise ValueError(
        f"re-initialising a layer ran {func}, which draws from the global random number generator and cannot "
        "take a seeded one; give the layer a reset_parameters() that uses torch.nn.init or tensor.uniform_/normal_"
    )


def _device(args: tuple, kwargs: dict) -> torch.device:
    """The device a random operation draws on: its first tensor's, or the one it creates its result on."""
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return arg.device
    device = kwargs.get("device")
    return torch.device(device) if device is not None else torch.get_default_device()
