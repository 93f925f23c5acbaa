"""Time saliencelab's LRP composites against one forward+backward pass and against Zennit.

Rows: the VGG-16-shaped and the ResNet-18-shaped zoo networks (random weights,
eval mode) at every batch size (default 1 and 8), each with the three standard
composites both libraries define the same way:

- ``epsilon_plus`` (Zennit ``EpsilonPlus``): z+ on convolutions, ε on dense layers;
- ``epsilon_alpha2_beta1`` (``EpsilonAlpha2Beta1``): α2β1 on convolutions, ε on dense layers;
- ``epsilon_gamma_box`` (``EpsilonGammaBox``): z^B on the first convolution, γ=0.25
  on the others, ε on dense layers, with the same bounds.

Each row times three contenders in alternating rounds: ``ours``
(``sl.LRP(model, composite=...)`` as a user calls it), the ``floor`` (one plain
forward+backward of the batch) and Zennit (its composite registered on the model
for the call, relevance seeded with f(x)_target at the output). On the ResNet,
Zennit runs with the canonizers its documentation prescribes for ResNets: batch
norms merged into the preceding convolution and the residual sum routed through a
``Sum`` module (``ZooBasicBlockCanonizer``: Zennit's own ``ResNetBasicBlockCanonizer``
pointed at the zoo's block class).

A second, untimed table runs every convention both libraries offer (our
``bias="absorb"``/``"ignore"``; Zennit with and without canonizers, with its biases
zeroed) on both nets and on a copy of the ResNet whose batch norms carry
statistics from data, and a tiny residual net shows what Zennit does with a
residual ``h + y``.

**Zennit import shim.** Zennit 0.5.1 imports ``torchvision`` at import time, for
one line of ``zennit/torchvision.py``: ``from torchvision.models.resnet import
Bottleneck, BasicBlock`` (the classes its ``ResNetCanonizer`` recognises).
torchvision does not import with this torch, so :func:`import_zennit` first tries
the real one and, if that fails, puts three empty modules in ``sys.modules``
(``torchvision``, ``torchvision.models``, ``torchvision.models.resnet``, the last
with two empty ``nn.Module`` subclasses named ``Bottleneck`` and ``BasicBlock``),
imports Zennit and removes the three entries again. Nothing is an instance of the
stub classes, so Zennit's torchvision canonizers match nothing; the script's own
canonizer handles the zoo ResNet. Nothing else of Zennit uses torchvision. The
shim lives only in this script.

The timing rounds, per-round ratios, peak-memory sampling and machine header come
from ``bench_gradient.py``. The report is one section of ``BENCHMARKS.md`` between
``<!-- bench_lrp: begin -->`` and ``<!-- bench_lrp: end -->``, replaced on every run
(``bench_gradient.py`` keeps it when it regenerates the file). See
``benchmarks/README.md``.

Usage::

    python benchmarks/bench_lrp.py                 # full run, 224x224, batches 1 and 8 (~10-12 min)
    python benchmarks/bench_lrp.py --quick --out /tmp/quick.md
    python benchmarks/bench_lrp.py --models resnet18_shaped --composites epsilon_plus --batch 1
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib.metadata
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from bench_gradient import (
    REPO_ROOT,
    VALUE_RANGE,
    Cell,
    Contender,
    Measured,
    _fmt,
    _ratio,
    cell_estimate,
    command_line,
    input_gradients,
    machine,
    make_images,
    plan_repeats,
    quiet,
    run_cell,
    write_section,
)
from torch import nn

import saliencelab as sl
from saliencelab.lrp.rules import STABILIZER as STABILIZER_OURS
from saliencelab.zoo.architectures import BasicBlock

SECTION = "bench_lrp"
"""Name of this script's marked section in the report."""

MODELS = ("vgg16_shaped", "resnet18_shaped")
MODEL_NAMES = {"vgg16_shaped": "VGG-16-shaped", "resnet18_shaped": "ResNet-18-shaped"}
COMPOSITES = ("epsilon_plus", "epsilon_alpha2_beta1", "epsilon_gamma_box")
ZENNIT_CLASS = {
    "epsilon_plus": "EpsilonPlus",
    "epsilon_alpha2_beta1": "EpsilonAlpha2Beta1",
    "epsilon_gamma_box": "EpsilonGammaBox",
}
LOW, HIGH = VALUE_RANGE
"""z^B bounds of ``epsilon_gamma_box``, both sides: the range every input sample is rescaled to."""

OURS_FACTOR = {"epsilon_plus": 3.5, "epsilon_alpha2_beta1": 5.0, "epsilon_gamma_box": 2.0}
ZENNIT_FACTOR = {"epsilon_plus": 4.0, "epsilon_alpha2_beta1": 6.0, "epsilon_gamma_box": 6.5}
"""Rough cost of each side in floors, used only to plan rounds and warm-ups."""

AGREE = 1e-4
"""Relative difference up to which two float32 relevance maps count as the same."""
ZENNIT_STABILIZER = 1e-6
"""Zennit's default stabilizer for every rule but ε (and ε = 1e-6 in its composites, as in ours)."""
TINY = 1e-12
"""ε and stabilizer of the checks that need conservation up to rounding."""

# labels (prefixes) of the conventions table
ABSORB, IGNORE, FOLDED = 'ours, `bias="absorb"', 'ours, `bias="ignore"', "ours, BN folded"
MERGED, ZERO, ZFOLDED = "Zennit, BN merged + `Sum` (", "Zennit, BN merged + `Sum`, `zero", "Zennit, BN folded"
SUM_ONLY, RAW, SIGN = "Zennit, `Sum` only (BN", "Zennit, no canonizer", "Zennit, `zero_params=['bias']`, `Gamma`"
STAB = "Zennit, `Sum` only, stabilizer"
ZERO_LABELS = ("Zennit, `zero_params=['bias']`", "Zennit, BN merged + `Sum`, `zero_params=['bias']`")

Tensor = torch.Tensor


# --------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Everything that defines a run; built from the command line.

    The timing helpers of ``bench_gradient`` read ``cell_seconds``, ``min_repeats``,
    ``max_repeats`` and ``warmup_max_seconds``.
    """

    size: int
    batches: list[int]
    models: list[str]
    composites: list[str]
    conventions_batch: int
    calibration_images: int
    target: int
    seed: int
    max_repeats: int
    min_repeats: int
    cell_seconds: float
    warmup_max_seconds: float
    threads: int
    out: Path
    quick: bool


def _names(items: list[str], allowed: tuple[str, ...], what: str, p: argparse.ArgumentParser) -> list[str]:
    chosen = [x for item in items for x in item.split(",") if x]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        p.error(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
    return [x for x in allowed if x in chosen]


def parse_args(argv: list[str] | None = None) -> Settings:
    """Read the command line; ``--quick`` changes the defaults it does not override."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 64x64 images, fewer repeats")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes (default: 1 8)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report to update")
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"subset of {', '.join(MODELS)}")
    p.add_argument("--composites", nargs="+", default=list(COMPOSITES), help=f"subset of {', '.join(COMPOSITES)}")
    p.add_argument("--size", type=int, help="image side in pixels (default 224, quick 64)")
    p.add_argument("--conventions-batch", type=int, default=1, help="batch of the untimed conventions table")
    p.add_argument(
        "--calibration-images", type=int, default=8, help="images for the ResNet copy's batch-norm statistics"
    )
    p.add_argument("--target", type=int, default=3, help="explained class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, help="most rounds per row (default 5, quick 3)")
    p.add_argument("--min-repeats", type=int, help="fewest rounds per row, whatever they cost (default 2, quick 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per row fit in this (default 30, quick 6)")
    p.add_argument("--warmup-max-seconds", type=float, default=10.0, help="warm up only calls estimated below this")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    a = p.parse_args(argv)
    return Settings(
        size=a.size or (64 if a.quick else 224),
        batches=a.batch,
        models=_names(a.models, MODELS, "models", p),
        composites=_names(a.composites, COMPOSITES, "composites", p),
        conventions_batch=a.conventions_batch,
        calibration_images=a.calibration_images,
        target=a.target,
        seed=a.seed,
        max_repeats=a.repeats or (3 if a.quick else 5),
        min_repeats=a.min_repeats or (1 if a.quick else 2),
        cell_seconds=a.cell_seconds or (6.0 if a.quick else 30.0),
        warmup_max_seconds=a.warmup_max_seconds,
        threads=a.threads,
        out=a.out,
        quick=a.quick,
    )


# --------------------------------------------------------------------------- Zennit, with the torchvision shim

TORCHVISION_STUB = ("torchvision", "torchvision.models", "torchvision.models.resnet")
"""The modules the shim fakes, for Zennit's ``from torchvision.models.resnet import Bottleneck, BasicBlock``."""


def import_zennit() -> tuple[types.ModuleType, str]:
    """Import Zennit; where torchvision does not import, through the stub described in the module docstring.

    Returns the module and a line for the report saying which torchvision it saw.
    """
    try:
        import torchvision  # noqa: F401  (the real one, wherever it imports)
        import zennit

        return zennit, f"the real torchvision {importlib.metadata.version('torchvision')}"
    except Exception as error:  # not installed, or built for another torch
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:100]}" if str(error) else type(error).__name__
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # leftovers of a failed import
    stubs = {name: types.ModuleType(name) for name in TORCHVISION_STUB}
    resnet = stubs["torchvision.models.resnet"]
    resnet.Bottleneck = type("Bottleneck", (nn.Module,), {"__doc__": "torchvision stub: nothing is one"})
    resnet.BasicBlock = type("BasicBlock", (nn.Module,), {"__doc__": "torchvision stub: nothing is one"})
    stubs["torchvision"].models = stubs["torchvision.models"]
    stubs["torchvision.models"].resnet = resnet
    sys.modules.update(stubs)
    try:
        import zennit
    finally:
        for name in TORCHVISION_STUB:
            sys.modules.pop(name, None)
    return zennit, f"a stub (torchvision does not import here: `{reason}`)"


@functools.cache
def zennit_api() -> types.SimpleNamespace:
    """Zennit's composites, rules and canonizers, plus the canonizer this script adds for the zoo ResNet."""
    zennit, torchvision_seen = import_zennit()
    from zennit.canonizers import CompositeCanonizer, SequentialMergeBatchNorm
    from zennit.composites import (
        EpsilonAlpha2Beta1,
        EpsilonGammaBox,
        EpsilonPlus,
        SpecialFirstLayerMapComposite,
        layer_map_base,
    )
    from zennit.layer import Sum
    from zennit.rules import Epsilon, Gamma, NoMod, ZBox
    from zennit.torchvision import ResNetBasicBlockCanonizer
    from zennit.types import Convolution

    class ZooBasicBlockCanonizer(ResNetBasicBlockCanonizer):
        """Zennit's ``ResNetBasicBlockCanonizer`` for the zoo's ``BasicBlock`` instead of torchvision's.

        The zoo block has torchvision's attribute names; Zennit's replacement forward
        (used as is) sums ``torch.stack([identity, out], -1)`` with a ``Sum`` module,
        so that its ``Norm`` rule splits the relevance of the residual sum.
        """

        @classmethod
        def _attribute_map(cls, name, module):
            if isinstance(module, BasicBlock):
                return {"forward": cls.forward.__get__(module), "canonizer_sum": Sum()}
            return None

    return types.SimpleNamespace(
        module=zennit,
        version=importlib.metadata.version("zennit"),
        torchvision=torchvision_seen,
        CompositeCanonizer=CompositeCanonizer,
        SequentialMergeBatchNorm=SequentialMergeBatchNorm,
        EpsilonPlus=EpsilonPlus,
        EpsilonAlpha2Beta1=EpsilonAlpha2Beta1,
        EpsilonGammaBox=EpsilonGammaBox,
        SpecialFirstLayerMapComposite=SpecialFirstLayerMapComposite,
        layer_map_base=layer_map_base,
        Epsilon=Epsilon,
        ZBox=ZBox,
        Convolution=Convolution,
        ZooBasicBlockCanonizer=ZooBasicBlockCanonizer,
        Gamma=Gamma,
        NoMod=NoMod,
    )


@dataclass(frozen=True)
class ZennitSetup:
    """One way of running Zennit: canonizers (ResNet only), zeroed biases, γ's sign taken without the bias."""

    merge_bn: bool = True
    block_sum: bool = True
    zero_bias: bool = False
    gamma_sign_without_bias: bool = False
    """With ``zero_bias``: also leave the bias out of the forward by which Zennit's ``Gamma`` picks each output's
    sign (its fifth ``NoMod()`` ignores ``zero_params``); a diagnostic patch of the hook."""
    stabilizer: float = ZENNIT_STABILIZER


ZENNIT_DEFAULT = ZennitSetup()


def zennit_composite(composite: str, resnet: bool, setup: ZennitSetup = ZENNIT_DEFAULT):
    """The Zennit composite matching ``composite`` (with the ResNet canonizers where ``resnet``)."""
    z = zennit_api()
    parts = []
    if resnet and setup.merge_bn:
        parts.append(z.SequentialMergeBatchNorm())
    if resnet and setup.block_sum:
        parts.append(z.ZooBasicBlockCanonizer())
    canonizers = [z.CompositeCanonizer(tuple(parts))] if parts else []
    options: dict = {"canonizers": canonizers, "stabilizer": setup.stabilizer}
    if setup.zero_bias:
        options["zero_params"] = ["bias"]
    if composite == "epsilon_plus":
        return z.EpsilonPlus(**options)
    if composite == "epsilon_alpha2_beta1":
        return z.EpsilonAlpha2Beta1(**options)
    composite = z.EpsilonGammaBox(low=LOW, high=HIGH, **options)
    if setup.gamma_sign_without_bias:
        for _, hook in composite.layer_map:
            if isinstance(hook, z.Gamma):
                hook.param_modifiers = [*hook.param_modifiers[:4], z.NoMod(zero_params=["bias"])]
    return composite


def zennit_relevance(model: nn.Module, composite, x: Tensor, target: int) -> Tensor:
    """Zennit's relevance of ``x``: composite registered for the call, output relevance f(x)_target."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), composite.context(model) as modified:
        out = modified(x)
        seed = torch.zeros_like(out)
        seed[:, target] = out[:, target].detach()
        (relevance,) = torch.autograd.grad(out, x, seed)
    return relevance


def ours_relevance(model: nn.Module, composite: str, x: Tensor, target: int, bias: str = "absorb") -> Tensor:
    """saliencelab's relevance, called as a user would."""
    bounds = {"low": LOW, "high": HIGH} if composite == "epsilon_gamma_box" else {}  # the others take no bounds
    return sl.LRP(model, composite=composite, bias=bias, **bounds)(x, target=target).values


# --------------------------------------------------------------------------- models


def load_model(name: str) -> nn.Module:
    return sl.zoo.load(name, num_classes=1000, seed=0)


def with_bn_statistics(model: nn.Module, s: Settings) -> nn.Module:
    """A copy of the zoo ResNet whose batch norms hold statistics of data (random images, seed + 3).

    The zoo's batch norms are at their initial state (mean 0, variance 1, γ 1, β 0),
    where a merged batch norm adds no bias; here each normalises its input, as after training.
    """
    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(make_images(s.calibration_images, s.size, s.seed + 3))
    return net.eval()


class TinyResidual(nn.Module):
    """``lin3(h + y)``, ``h = relu(lin1(x))``, ``y = relu(lin2(h))``, no biases; ``sum_module`` adds ``h + y``."""

    def __init__(self, sum_module: nn.Module | None = None) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(6, 8, bias=False), nn.Linear(8, 8, bias=False)
        self.lin3 = nn.Linear(8, 4, bias=False)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.sum = sum_module

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu1(self.lin1(x))
        y = self.relu2(self.lin2(h))
        return self.lin3(h + y if self.sum is None else self.sum(torch.stack([h, y], dim=-1)))


def residual_check(target: int = 1) -> dict[str, float]:
    """Σ relevance / f(x)_target on a tiny residual net (float64, 4 samples), ε = stabilizer = 1e-12."""
    from zennit.layer import Sum

    z = zennit_api()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TinyResidual().double().eval()
        x = torch.rand(4, 6, dtype=torch.float64)
    summed = TinyResidual(Sum()).double().eval()
    summed.load_state_dict(net.state_dict())
    with torch.no_grad():
        f = net(x)[:, target]
    ours = sl.LRP(net, rule="epsilon", epsilon=TINY, stabilizer=TINY)(x, target=target).values
    ratios = {
        "ours": ours,
        "zennit_plus": zennit_relevance(net, z.EpsilonPlus(epsilon=TINY, stabilizer=TINY), x, target),
        "zennit_sum_module": zennit_relevance(summed, z.EpsilonPlus(epsilon=TINY, stabilizer=TINY), x, target),
    }
    return {k: float((v.sum(dim=1) / f).median()) for k, v in ratios.items()}


# --------------------------------------------------------------------------- cells


def conservation(values: Tensor, scores: Tensor) -> float:
    """Max over samples of |Σ relevance − f(x)_target| / |f(x)_target| (float64 sums)."""
    sums = values.detach().double().reshape(values.shape[0], -1).sum(dim=1)
    return float(((sums - scores.double()) / scores.double()).abs().max())


def relative_diff(a: Tensor, b: Tensor) -> float:
    """max |a − b| / max |b|."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def target_scores(model: nn.Module, x: Tensor, target: int) -> Tensor:
    with torch.no_grad():
        return model(x)[:, target]


def build_cell(model_name: str, composite: str, n: int, model: nn.Module, floor_s: float, s: Settings) -> Cell:
    """Contenders ours / floor / zennit of one row."""
    t = s.target
    x = make_images(n, s.size, s.seed)
    resnet = model_name == "resnet18_shaped"
    theirs = zennit_composite(composite, resnet)
    contenders = [
        Contender("ours", lambda: ours_relevance(model, composite, x, t), OURS_FACTOR[composite] * floor_s),
        Contender("floor", lambda: input_gradients(model, x, t), floor_s),
        Contender("zennit", quiet(lambda: zennit_relevance(model, theirs, x, t)), ZENNIT_FACTOR[composite] * floor_s),
    ]
    info = {"model": model_name, "composite": composite, "scores": target_scores(model, x, t)}
    return Cell(f"{model_name} {composite}", n, contenders, {"zennit": ZENNIT_CLASS[composite]}, info)


@dataclass
class Row:
    """One measured row."""

    model: str
    composite: str
    batch: int
    size: int
    repeats: int
    results: dict[str, Measured]
    ratio_floor: float | None = None
    ratio_zennit: float | None = None
    ratio_zennit_floor: float | None = None
    conservation: dict[str, float] = field(default_factory=dict)
    diff: float | None = None
    finite: dict[str, bool] = field(default_factory=dict)


def measure_row(cell: Cell, results: dict[str, Measured], repeats: int, s: Settings) -> Row:
    """Ratios, conservation errors and the difference of a measured cell."""
    row = Row(cell.info["model"], cell.info["composite"], cell.batch, s.size, repeats, results)
    row.ratio_floor = _ratio(results["ours"], results["floor"])
    row.ratio_zennit = _ratio(results["ours"], results["zennit"])
    row.ratio_zennit_floor = _ratio(results["zennit"], results["floor"])
    for label in ("ours", "zennit"):
        values = results[label].values
        if values is not None:
            row.finite[label] = bool(torch.isfinite(values).all())
            row.conservation[label] = conservation(values, cell.info["scores"])
    ours, theirs = results["ours"].values, results["zennit"].values
    if ours is not None and theirs is not None:
        row.diff = relative_diff(ours, theirs)
    return row


# --------------------------------------------------------------------------- conventions (untimed)


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of a zoo ResNet with every batch norm folded exactly into the convolution before it.

    The convolution gets weights ``w·s`` and bias ``(b − mean)·s + β`` (``s = γ / √(var + eps)``) and the
    batch norm becomes ``nn.Identity``: the same function (unlike Zennit's merge, which leaves the batch norm
    computing ``x / √(1 + eps)``), now with a bias in every convolution.
    """
    net = copy.deepcopy(model)

    def fold(owner: nn.Module, conv_name: str, bn_name: str) -> None:
        conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        merged = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
        with torch.no_grad():
            merged.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            merged.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
        setattr(owner, conv_name, merged)
        setattr(owner, bn_name, nn.Identity())

    fold(net, "conv1", "bn1")
    for block in [m for m in net.modules() if isinstance(m, BasicBlock)]:
        fold(block, "conv1", "bn1")
        fold(block, "conv2", "bn2")
        if block.downsample is not None:
            fold(block.downsample, "0", "1")
    return net.eval()


@dataclass
class Variant:
    """One way of computing LRP relevance for the conventions table."""

    label: str
    run: Callable[[str, Tensor], Tensor]
    """``(composite, x) -> relevance``."""


def variants(model: nn.Module, name: str, composite: str, t: int) -> list[Variant]:
    """Every convention compared on one net and composite."""
    out = [
        Variant('ours, `bias="absorb"` (default)', lambda c, x: ours_relevance(model, c, x, t)),
        Variant('ours, `bias="ignore"`', lambda c, x: ours_relevance(model, c, x, t, bias="ignore")),
    ]
    resnet = name.startswith("resnet")

    def zen(setup: ZennitSetup, net: nn.Module = model):
        return lambda c, x: quiet(lambda: zennit_relevance(net, zennit_composite(c, resnet, setup), x, t))()

    sign = (
        []
        if composite != "epsilon_gamma_box"
        else [
            Variant(
                f"{SIGN} sign without the bias (patched hook)",
                zen(ZennitSetup(zero_bias=True, gamma_sign_without_bias=True)),
            )
        ]
    )
    if not resnet:
        return out + [
            Variant("Zennit (timed above)", zen(ZENNIT_DEFAULT)),
            Variant("Zennit, `zero_params=['bias']`", zen(ZennitSetup(zero_bias=True))),
            *sign,
        ]
    folded = fold_batch_norms(model)
    out += [
        Variant('ours, BN folded into the convolutions, `bias="absorb"`', lambda c, x: ours_relevance(folded, c, x, t)),
        Variant("Zennit, BN merged + `Sum` (timed above)", zen(ZENNIT_DEFAULT)),
        Variant("Zennit, BN merged + `Sum`, `zero_params=['bias']`", zen(ZennitSetup(zero_bias=True))),
        *sign,
        Variant("Zennit, BN folded (as ours above) + `Sum`", zen(ZennitSetup(merge_bn=False), folded)),
        Variant("Zennit, `Sum` only (BN → `Pass`)", zen(ZennitSetup(merge_bn=False))),
        Variant("Zennit, no canonizer (BN → `Pass`, residual `+`)", zen(ZennitSetup(merge_bn=False, block_sum=False))),
    ]
    if name == "resnet18_shaped" and STABILIZER_OURS != ZENNIT_STABILIZER:
        ours_stabilizer = ZennitSetup(merge_bn=False, stabilizer=STABILIZER_OURS)
        out.append(Variant(f"{STAB} {STABILIZER_OURS:g} (ours')", zen(ours_stabilizer)))
    return out


@dataclass
class ConventionRow:
    net: str
    composite: str
    variant: str
    ratio: float
    """median over samples of Σ relevance / f(x)_target"""
    conservation: float
    vs_absorb: float
    vs_ignore: float
    max_abs: float
    """max |relevance| / max |f(x)_target|"""
    vs_folded: float | None = None
    """max |ours on the BN-folded net − this| / max |this| (ResNets)"""


def conventions(nets: dict[str, nn.Module], s: Settings) -> tuple[list[ConventionRow], dict[str, float]]:
    """The untimed table, and the first-layer-bias check of ``epsilon_gamma_box`` on the VGG."""
    rows: list[ConventionRow] = []
    checks: dict[str, float] = {}
    x = make_images(s.conventions_batch, s.size, s.seed)
    for net_name, model in nets.items():
        scores = target_scores(model, x, s.target).double()
        for composite in s.composites:
            print(f"  conventions: {net_name} {composite}", flush=True)
            values = {v.label: v.run(composite, x) for v in variants(model, net_name, composite, s.target)}
            absorb, ignore = (values[label] for label in list(values)[:2])
            folded = next((r for label, r in values.items() if label.startswith(FOLDED)), None)
            for label, r in values.items():
                rows.append(
                    ConventionRow(
                        net_name,
                        composite,
                        label,
                        float((r.double().reshape(r.shape[0], -1).sum(1) / scores).median()),
                        conservation(r, scores),
                        relative_diff(absorb, r),
                        relative_diff(ignore, r),
                        float(r.double().abs().max() / scores.abs().max()),
                        None if folded is None else relative_diff(folded, r),
                    )
                )
            if net_name == "resnet18_shaped" and composite == "epsilon_plus":
                wide = copy.deepcopy(model).double()
                checks["resnet_float32_vs_float64"] = relative_diff(
                    values[list(values)[0]], ours_relevance(wide, composite, x.double(), s.target)
                )
            if net_name == "vgg16_shaped" and composite == "epsilon_plus":
                tiny_epsilon = sl.lrp.Composite(
                    {"dense": sl.lrp.rule("epsilon", epsilon=TINY), "conv": sl.lrp.rule("zplus")}
                )
                r = sl.LRP(model, composite=tiny_epsilon, bias="ignore", stabilizer=TINY)(x, target=s.target).values
                checks["vgg_ignore_epsilon_1e-12"] = conservation(r, scores)
            if net_name == "vgg16_shaped" and composite == "epsilon_gamma_box":
                twin = copy.deepcopy(model)
                with torch.no_grad():
                    twin.features[0].bias.zero_()
                theirs = zennit_composite(composite, False)
                checks["vgg_box_no_first_bias"] = relative_diff(
                    ours_relevance(twin, composite, x, s.target),
                    quiet(lambda twin=twin, theirs=theirs: zennit_relevance(twin, theirs, x, s.target))(),
                )
    return rows, checks


# --------------------------------------------------------------------------- report


def _time(m: Measured) -> str:
    if m.error:
        return "error"
    return _fmt(statistics.median(m.times) if m.times else None, ".3f")


HEADER = (
    "| model | composite (Zennit) | N | ours s | floor s | ours/floor | Zennit s | ours/Zennit | Zennit/floor "
    "| conservation error ours / Zennit "
    "| max \\|ours − Zennit\\| / max \\|Zennit\\| | peak MB ours/floor/Zennit | R |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
)


def table(rows: list[Row]) -> str:
    lines = [HEADER]
    for r in rows:
        ours, floor, theirs = (r.results[label] for label in ("ours", "floor", "zennit"))
        cons = " / ".join(_fmt(r.conservation.get(label), ".1e") for label in ("ours", "zennit"))
        peaks = "/".join(_fmt(m.peak_mb, ".0f") for m in (ours, floor, theirs))
        lines.append(
            f"| {MODEL_NAMES[r.model]} {r.size}² | `{r.composite}` (`{ZENNIT_CLASS[r.composite]}`) | {r.batch} "
            f"| {_time(ours)} | {_time(floor)} | {_fmt(r.ratio_floor, '.2f')} | {_time(theirs)} "
            f"| {_fmt(r.ratio_zennit, '.2f')} | {_fmt(r.ratio_zennit_floor, '.2f')} | {cons} "
            f"| {_fmt(r.diff, '.1e')} | {peaks} | {r.repeats} |"
        )
    return "\n".join(lines)


CONVENTION_NETS = {
    "vgg16_shaped": "VGG-16-shaped",
    "resnet18_shaped": "ResNet-18-shaped (zoo: BN at init)",
    "resnet18_bn": "ResNet-18-shaped, BN statistics from data",
}


def conventions_table(rows: list[ConventionRow]) -> str:
    lines = [
        "| net | composite | convention | Σ R / f(x) | conservation error | max \\|R\\| / \\|f(x)\\| "
        "| vs ours absorb | vs ours ignore | vs ours BN folded |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {CONVENTION_NETS[r.net]} | `{r.composite}` | {r.variant} | {r.ratio:.4g} | {r.conservation:.1e} "
            f"| {r.max_abs:.1e} | {r.vs_absorb:.1e} | {r.vs_ignore:.1e} | {_fmt(r.vs_folded, '.1e')} |"
        )
    return "\n".join(lines)


def _find(rows: list[ConventionRow], net: str, composite: str, start: str) -> ConventionRow | None:
    return next((r for r in rows if r.net == net and r.composite == composite and r.variant.startswith(start)), None)


def _span(values: list[float | None], spec: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    lo, hi = format(min(values), spec), format(max(values), spec)
    return lo if lo == hi else f"{lo}–{hi}"


def _stabilizers() -> str:
    if STABILIZER_OURS == ZENNIT_STABILIZER:
        return f"the same stabilizer, {STABILIZER_OURS:g}, on both sides"
    return f"stabilizers {ZENNIT_STABILIZER:g} in Zennit, {STABILIZER_OURS:g} in ours, for z+ and α2β1"


def reading(rows: list[Row], conv: list[ConventionRow], checks: dict, s: Settings) -> list[str]:
    """Why the numbers are what they are: the maintainers' explanation with this run's numbers
    (text kept here; update it when the implementation or Zennit changes); only for what was measured."""

    def ratios(composite: str | None = None, attr: str = "ratio_floor") -> str:
        return _span([getattr(r, attr) for r in rows if composite in (None, r.composite)], ".2f")

    def diffs(model: str, composites: tuple[str, ...]) -> str:
        return _span([r.diff for r in rows if r.model == model and r.composite in composites], ".0e")

    def conv_values(net: str, start: str, attr: str, composites: tuple[str, ...] = COMPOSITES) -> list:
        return [
            getattr(r, attr) for r in conv if r.net == net and r.composite in composites and r.variant.startswith(start)
        ]

    def one(net: str, composite: str, start: str, attr: str, spec: str) -> str:
        found = _find(conv, net, composite, start)
        return _fmt(found and getattr(found, attr), spec)

    plain = ("epsilon_plus", "epsilon_alpha2_beta1")
    lines = []
    if rows:
        lines.append(
            f"- **Time.** ours/floor {ratios()} over all rows (ε+ {ratios('epsilon_plus')}, α2β1"
            f" {ratios('epsilon_alpha2_beta1')}, γ-box {ratios('epsilon_gamma_box')}); ours/Zennit"
            f" {ratios(attr='ratio_zennit')}. Both libraries compute a rule the same way: the forward is kept, and in"
            " the backward each convolution and dense layer runs its modified forward once per term of the rule (ε: 1;"
            " z+: 2, x⁺w⁺ and x⁻w⁻; α2β1: 4; z^B: 3) and the gradient of each (ours: a dense layer's ε reads z"
            " from its forward output and every dense term is transposed in closed form, without a graph)."
            " z+ and α2β1 run their x⁻ terms even"
            " where the input is a ReLU output (all zero). γ is sign-aware on both sides: four modified forwards"
            " (two for the outputs above zero, two for the others), after one plain forward that gives each output's"
            " sign (no-grad in ours, inside the autograd graph in Zennit). Zennit also registers its hooks (on the"
            " ResNet, merges the batch norms) on every call; ours intercepts operations and registers nothing on the"
            " model."
        )
    vgg = diffs("vgg16_shaped", plain)
    if vgg != "—":
        zero = conv_values("vgg16_shaped", "Zennit, `zero", "vs_ignore", plain)
        lines.append(
            f"- **VGG, ε+ and α2β1: the same relevance** (max difference {vgg} of max |Zennit|;"
            f" {_stabilizers()}). Zennit's z+ and α2β1 put the"
            " positive (negative) part of each bias into the positive (negative) term, as ours does with"
            f" `bias=\"absorb\"`; Zennit's `zero_params=['bias']` is ours' `bias=\"ignore\"` ({_span(zero, '.0e')})."
        )
    box = diffs("vgg16_shaped", ("epsilon_gamma_box",))
    if box != "—":
        lines.append(
            f"- **VGG, γ-box: {box}, from the first layer only.** Zennit's `ZBox` keeps the bias in all three of its"
            " terms (x·w + b, low·w⁺ + b⁺, high·w⁻ + b⁻), so the bias cancels from its denominator: its z^B ignores"
            ' the bias, ours with `bias="absorb"` keeps it. With the first convolution\'s bias set to zero on both'
            f" sides the difference is {_fmt(checks.get('vgg_box_no_first_bias'), '.0e')}: the γ layers agree."
        )
    res = diffs("resnet18_shaped", plain)
    if res != "—":
        same = STAB if STABILIZER_OURS != ZENNIT_STABILIZER else SUM_ONLY
        unmerged = _span(conv_values("resnet18_shaped", same, "vs_absorb", plain), ".0e")
        lines.append(
            f"- **ResNet, ε+ and α2β1: {res}; no rule difference.** On the net with its batch norms folded exactly"
            " into the convolutions (`fold_batch_norms`), Zennit and ours agree to"
            f" {_span(conv_values('resnet18_shaped', ZFOLDED, 'vs_folded', plain), '.0e')}"
            f" ({_span(conv_values('resnet18_bn', ZFOLDED, 'vs_folded', plain), '.0e')} on the BN-statistics copy)."
            " On the net as is, two small changes remain: Zennit's merge folds the statistics into the convolution"
            " but leaves the batch norm computing x / √(1 + eps), a factor 1 − 5e-6 on each merged branch (the"
            " logits move by ~1e-5 relative), and ours' batch-norm rule divides by its output ± the stabilizer"
            f" (Zennit with batch norms under `Pass`, no merge: {unmerged})."
            " A ResNet magnifies such changes at a few pixels: where a residual sum nearly cancels (a + b ≈ 0), its"
            " split a / (a + b) multiplies a relative change of a by |a / (a + b)|; ours in float32 against ours in"
            f" float64 (ε+) differ by {_fmt(checks.get('resnet_float32_vs_float64'), '.0e')}. The zoo's batch norms"
            " are at their initial state (mean 0, variance 1, γ 1, β 0): merged, they add no bias."
        )
    gamma = diffs("resnet18_shaped", ("epsilon_gamma_box",))
    if gamma != "—":
        net, c = "resnet18_shaped", "epsilon_gamma_box"
        lines.append(
            f"- **ResNet, γ-box: {gamma}.** Both use the sign-aware γ (Andéol et al. 2021, Zennit 0.5.1's `Gamma`):"
            " an output above zero gets the shares of x⁺(w + γw⁺) + x⁻(w + γw⁻), an output below zero those of"
            " x⁺(w + γw⁻) + x⁻(w + γw⁺), so the denominator has the output's sign and is at least |z|. Ours gives an"
            " output of exactly zero the second set, Zennit nothing. With the batch norms folded exactly:"
            f" {one(net, c, ZFOLDED, 'vs_folded', '.0e')}; the rest is the batch-norm treatment and conditioning of"
            " the ε+ line above."
        )
    sign = [r for r in conv if r.variant.startswith(SIGN)]
    if sign:
        plain_zero = [
            next((q for q in conv if q.net == r.net and q.composite == r.composite and q.variant in ZERO_LABELS), None)
            for r in sign
        ]
        lines.append(
            "- **γ with zero biases: a Zennit quirk.** With `zero_params=['bias']`, Zennit's `Gamma` leaves the bias"
            " out of its shares but not out of the plain forward that picks each output's sign (its fifth"
            " modifier, `NoMod()`, is built without `zero_params`), so an output whose sign the bias decides gets"
            ' the shares of the wrong sign, whose denominator can be near zero. Against ours\' `bias="ignore"`'
            f" (sign without the bias): {_span([r and r.vs_ignore for r in plain_zero], '.0e')} as Zennit ships it,"
            f" {_span([r.vs_ignore for r in sign], '.0e')} with that modifier given `zero_params` too (max |R| /"
            f" |f(x)| {_span([r and r.max_abs for r in plain_zero], '.1e')} as shipped)."
        )
    if any(r.net == "resnet18_bn" for r in conv):
        net, c = "resnet18_bn", "epsilon_plus"
        lines.append(
            "- **Conservation after merging batch norms (the issue's claim): confirmed.** On the copy with"
            f" batch-norm statistics from data (ε+), Zennit's Σ R / f(x) is {one(net, c, SUM_ONLY, 'ratio', '.3g')}"
            " with batch norms under `Pass` (only the dense layer's bias absorbs relevance) and"
            f" {one(net, c, MERGED, 'ratio', '.3g')} after merging them"
            f" (α2β1: {one(net, 'epsilon_alpha2_beta1', MERGED, 'ratio', '.3g')}):"
            " the merged biases absorb relevance. Its `zero_params=['bias']` restores conservation"
            f' ({one(net, c, ZERO, "conservation", ".0e")}), as ours\' `bias="ignore"` keeps it'
            f" ({one(net, c, IGNORE, 'conservation', '.0e')})."
        )
        lines.append(
            '- **Ours with `bias="absorb"` on batch norms with real statistics** (a finding for the LRP'
            " implementation, not the benchmark): the batch-norm rule shares relevance as s·x / (s·x + t), LRP-0"
            " with the shift t as a bias, a share that is unbounded where the normalised output s·x + t is near"
            " zero (normalisation makes that common). Σ R / f(x) ="
            f" {one(net, c, ABSORB, 'ratio', '.3g')} (ε+), {one(net, 'epsilon_alpha2_beta1', ABSORB, 'ratio', '.3g')}"
            f" (α2β1), {one(net, 'epsilon_gamma_box', ABSORB, 'ratio', '.3g')} (γ-box, max |R| / |f(x)| ="
            f" {one(net, 'epsilon_gamma_box', ABSORB, 'max_abs', '.1e')}); with the batch norms folded into the"
            f" convolutions first {one(net, c, FOLDED, 'ratio', '.3g')},"
            f" {one(net, 'epsilon_alpha2_beta1', FOLDED, 'ratio', '.3g')} (Zennit's merged numbers: z+ and α2β1"
            " bound each share) and"
            f" {one(net, 'epsilon_gamma_box', FOLDED, 'ratio', '.3g')} (γ-box)."
            " How far it goes depends on the inputs and the image size."
        )
    memory = [r for r in rows if r.model == "vgg16_shaped" and r.batch == max(s.batches)]
    if memory:

        def peaks(label: str) -> str:
            return _span([r.results[label].peak_mb for r in memory], ".0f")

        lines.append(
            f"- **Memory** (VGG, N={max(s.batches)}, MB above the level before the call): ours {peaks('ours')},"
            f" floor {peaks('floor')}, Zennit {peaks('zennit')}. Ours keeps each operation's input once (the"
            " forward runs inside one autograd function per operation) and in the backward runs one layer's"
            " modified forwards at a time. Zennit keeps the model's own autograd graph, a clone of every hooked"
            " module's input (its workaround for in-place operations) and the input again for its rule, and in the"
            " backward runs all of a layer's modified forwards (up to five for γ), each on its own copy of the"
            " input, before taking their gradients."
        )
    raw = _find(conv, "resnet18_shaped", "epsilon_plus", RAW)
    if raw and "tiny_zennit_plus" in checks:
        lines.append(
            "- **A residual `h + y` in Zennit** (the issue's other claim): confirmed. Without the `Sum` canonizer,"
            " Zennit's relevance through a plain addition is the gradient, so each summand gets the whole relevance"
            f" of the sum: Σ R = {raw.ratio:.4g} × f(x) on the zoo ResNet (8 residual blocks, up to 2⁸ = 256×)."
            " On a tiny residual net `lin3(h + y)` (no biases, float64, ε = 1e-12) Σ R / f(x) ="
            f" {checks['tiny_zennit_plus']:.6f}"
            f" in Zennit, {checks['tiny_zennit_sum_module']:.6f} with the sum rewritten as Zennit's `Sum` module,"
            f" {checks['tiny_ours']:.6f} in ours on the net as written."
        )
    vgg_ignore = conv_values("vgg16_shaped", IGNORE, "conservation")
    if vgg_ignore:
        lines.append(
            f'- **VGG under `bias="ignore"`** misses f(x) by {_span(vgg_ignore, ".0e")} (Zennit with zero biases'
            f" {_span(conv_values('vgg16_shaped', 'Zennit, `zero', 'conservation'), '.0e')}): the ε = 1e-6 of the"
            f" dense layers and the stabilizer ({STABILIZER_OURS:g}) of the others, against the small"
            " pre-activations of a random classifier (|f(x)| ~ 1e-2 here), not a leak: with both at 1e-12 ours"
            " misses by"
            f" {_fmt(checks.get('vgg_ignore_epsilon_1e-12'), '.0e')}."
        )
    return lines


def section(
    s: Settings,
    rows: list[Row],
    conv: list[ConventionRow],
    notes: list[str],
    checks: dict,
    floors: dict,
    elapsed: float,
    m: dict[str, str],
) -> str:
    """The LRP section of the report; ``m`` is :func:`bench_gradient.machine` taken when the run began."""
    z = zennit_api()
    floor_text = "; ".join(f"{MODEL_NAMES[k[0]]} N={k[1]}: {v:.3f} s" for k, v in floors.items())
    lines = [
        "## LRP: against one forward+backward and against Zennit",
        "",
        "Generated by `benchmarks/bench_lrp.py` (see `benchmarks/README.md`); this section is replaced on every"
        " run of that script and kept when `bench_gradient.py` regenerates the rest of the file.",
        "",
    ]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): small images and few repeats; not for comparison.**", ""]
    lines += [
        "### Setup",
        "",
        f"- Machine: {m['CPU']}; torch threads: {s.threads}",
        f"- Software: {m['Software']}, zennit {z.version} (torchvision: {z.torchvision})",
        f"- Date: {m['Date']}; run time {elapsed / 60:.1f} min",
        f"- Command: `{command_line()}`",
        f'- Models: `sl.zoo.load("vgg16_shaped" | "resnet18_shaped", num_classes=1000, seed=0)` (random weights,'
        f" eval mode); inputs `(N, 3, {s.size}, {s.size})` made as in `bench_gradient.py` (seed {s.seed}, each"
        f" sample rescaled to [{LOW}, {HIGH}]); target class {s.target}; relevance f(x)_target at the output on"
        " both sides.",
        "- **Ours**: `sl.LRP(model, composite=NAME)(x, target=3)` (`low=-2.118, high=2.64` for epsilon_gamma_box)"
        " with the defaults"
        f' `bias="absorb"` (the convention of Zennit\'s rules, see the conventions table) and stabilizer'
        f" {STABILIZER_OURS:g}.",
        "- **Zennit**: `EpsilonPlus()`, `EpsilonAlpha2Beta1()`, `EpsilonGammaBox(low=-2.118, high=2.64)` (defaults:"
        " ε = 1e-6, stabilizer 1e-6, γ = 0.25), registered with `composite.context(model)` on every call, relevance"
        " `torch.autograd.grad(out, x, one_hot * out)`. On the ResNet with the canonizers Zennit prescribes for"
        " ResNets: `SequentialMergeBatchNorm` and `ZooBasicBlockCanonizer` (Zennit's `ResNetBasicBlockCanonizer`"
        " pointed at the zoo's block class: the residual sum through a `Sum` module, `Norm` rule). The VGG needs"
        " none (no batch norm).",
        "- **Torchvision shim** (this script only): Zennit imports `torchvision.models.resnet.Bottleneck` and"
        " `BasicBlock` at import time. Where torchvision does not import, the script puts three empty modules in"
        " `sys.modules` (`torchvision`, `torchvision.models`, `torchvision.models.resnet`, the last holding two empty"
        " `nn.Module` subclasses of those names that nothing is an instance of), imports Zennit and removes them.",
        f"- **Floor**: one plain forward+backward of the batch (gradient of the target score); {floor_text} (one"
        " pass, for planning).",
        "- **Conservation error**: max over samples of |Σ relevance − f(x)_target| / |f(x)_target|, f from a plain"
        " forward of the unmodified model, sums in float64. **Difference**: max |ours − Zennit| over the batch /"
        " max |Zennit|.",
        f"- Timing (from `bench_gradient.py`): a warm-up call where estimated under {s.warmup_max_seconds:.0f} s,"
        " then R rounds of (ours, floor, Zennit) alternating; times are medians, ratios medians of the per-round"
        f" ratios; R fits {s.cell_seconds:.0f} s per row, between {s.min_repeats} and {s.max_repeats}. Peak MB: peak"
        " resident memory above the level before the call, sampled every 2 ms in the first round.",
        "",
        "### Results",
        "",
        table(rows),
        "",
    ]
    if conv:
        lines += [
            f"### Conventions and conservation (untimed, N={s.conventions_batch})",
            "",
            "Every convention both libraries offer, on the same inputs. *ResNet-18-shaped, BN statistics from data*"
            " is a copy of the zoo ResNet whose batch norms were re-estimated (cumulative average, train mode) on"
            f" {s.calibration_images} random images (seed {s.seed + 3}), so that a merged batch norm carries a real"
            " bias. `Σ R / f(x)`: median over samples; *vs ours absorb / ignore*: max |ours − this| / max |this|.",
            "",
            conventions_table(conv),
            "",
        ]
    if notes:
        lines += ["### Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["### Reading", "", *reading(rows, conv, checks, s), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the report."""
    s = parse_args(argv)
    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    began = time.perf_counter()
    at_start = machine()  # the code the run imported; checked again at the end
    z = zennit_api()
    print(f"zennit {z.version}, torchvision: {z.torchvision}", flush=True)
    checks: dict = {f"tiny_{k}": v for k, v in residual_check().items()}
    print(f"tiny residual net, sum R / f(x): {checks}", flush=True)

    models = {name: load_model(name) for name in s.models}
    floors: dict[tuple[str, int], float] = {}
    for name, model in models.items():
        for n in s.batches:
            x = make_images(n, s.size, s.seed)
            input_gradients(model, x, s.target)  # warm-up at this shape
            start = time.perf_counter()
            input_gradients(model, x, s.target)
            floors[(name, n)] = time.perf_counter() - start
            print(f"floor {name} N={n}: {floors[(name, n)]:.3f} s", flush=True)

    cells = [
        build_cell(name, composite, n, models[name], floors[(name, n)], s)
        for name in s.models
        for n in s.batches
        for composite in s.composites
    ]
    plan = [(cell, plan_repeats(cell, s)) for cell in cells]
    total = sum(cell_estimate(cell, r, s) for cell, r in plan)
    print(f"{len(plan)} rows; roughly {total / 60:.1f} min of timed rounds and warm-ups", flush=True)

    rows: list[Row] = []
    notes: list[str] = []
    for index, (cell, repeats) in enumerate(plan, start=1):
        print(f"[{index}/{len(plan)}] {cell.method} N={cell.batch}: R={repeats}", flush=True)
        row = measure_row(cell, run_cell(cell, repeats, s), repeats, s)
        rows.append(row)
        for label, m in row.results.items():
            if m.error:
                notes.append(f"{row.model} {row.composite} N={row.batch}: {label} raised {m.error}")
        notes += [
            f"{row.model} {row.composite} N={row.batch}: {label}'s relevance is not finite"
            for label, ok in row.finite.items()
            if not ok
        ]

    nets = {name: models[name] for name in s.models}
    if "resnet18_shaped" in models:
        nets["resnet18_bn"] = with_bn_statistics(models["resnet18_shaped"], s)
    conv, conv_checks = conventions(nets, s)
    checks |= conv_checks

    elapsed = time.perf_counter() - began
    if machine()["Software"] != at_start["Software"]:
        notes.append(
            "the repository changed during the run (the header gives the state at its start, which is the code the"
            f" run imported): at the end, {machine()['Software']}"
        )
    write_section(s.out, SECTION, section(s, rows, conv, notes, checks, floors, elapsed, at_start))
    print(f"\n{table(rows)}\n\n{conventions_table(conv)}")
    for note in notes:
        print(f"note: {note}")
    print(f"\nwrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
