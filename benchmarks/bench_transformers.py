"""Transformers: AttnLRP against LXT, LRP's cost against one forward+backward, IG's passes against Captum.

Three parts, on a BERT-shaped and a LLaMA-shaped sequence classifier built from their config classes (random
weights, seed 0, hidden size 256, 4 layers, 4 heads; eval mode):

- **LXT side by side** (``--parts lxt``): saliencelab's ``"transformer"`` LRP composite (AttnLRP, Achtibat et al.
  2024) and LXT's own implementation of it (``lxt.efficient``) explain the same logit of the same model, as a
  function of its input embeddings, in float32 and float64. LXT 2.x needs transformers 4.x, so this part runs
  in a second interpreter (``--lxt-python``, default ``/work/lxt-venv/bin/python``; saliencelab from this
  checkout on its ``PYTHONPATH``), one process per model and dtype; the weights go from one library to the
  other through a safetensors file and the logits are checked equal.
- **LRP's cost** (``--parts lrp``): ``sl.explain(method="lrp")`` against one plain forward+backward to the
  embeddings, alternating rounds, medians; target ≤ 1.5×. A torch.profiler breakdown says where the time goes.
- **IG's passes** (``--parts ig``): Integrated Gradients at the input embeddings (token ids in, ``layer=``) to a
  relative completeness error of 1e-2, against Captum's ``LayerIntegratedGradients`` (its default
  Gauss-Legendre rule, n_steps doubled until it gets there); target: at most half of Captum's model passes.

Run ``python benchmarks/bench_transformers.py`` (writes its section of ``BENCHMARKS.md``; ``--quick --out
/tmp/q.md`` for a smoke run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import saliencelab as sl

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
SECTION = "bench_transformers"
LRP_TARGET = 1.5
"""Target: the transformer LRP composite costs at most this many forward+backward passes."""
PASSES_TARGET = 0.5
"""Target: IG reaches the tolerance in at most this fraction of Captum LayerIntegratedGradients' passes."""
TOLERANCE = 1e-2
TARGET_CLASS = 1
VOCAB, PAD, FIRST = 1000, 0, 1
MODELS = ("BERT", "LLaMA")
DTYPES = ("float32", "float64")


def build(name: str, dtype: str = "float32", seed: int = 0) -> nn.Module:
    """The BERT- or LLaMA-shaped sequence classifier (hidden 256, 4 layers, 4 heads), random weights, eval mode."""
    import transformers

    common = {"vocab_size": VOCAB, "pad_token_id": PAD, "num_labels": 2, "max_position_embeddings": 256}
    common |= {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4}
    if name == "BERT":
        config = transformers.BertConfig(**common, intermediate_size=1024)
        model_class = transformers.BertForSequenceClassification
    else:
        config = transformers.LlamaConfig(**common, intermediate_size=688, num_key_value_heads=2)
        model_class = transformers.LlamaForSequenceClassification
    torch.manual_seed(seed)
    return model_class(config).to(getattr(torch, dtype)).eval()


def token_ids(length: int, seed: int = 0) -> torch.Tensor:
    """One sequence of ``length`` random ids (none of them the pad id), the first one a stand-in for [CLS]/BOS."""
    ids = torch.randint(3, VOCAB, (1, length), generator=torch.Generator().manual_seed(seed))
    ids[:, 0] = FIRST
    return ids


class FromEmbeddings(nn.Module):
    """``embeddings -> logits``: the classifier as a function of its input embeddings (``inputs_embeds``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=embeddings).logits


def input_embeddings(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.get_input_embeddings()(ids)


def gradient_x_input(function: nn.Module, embeddings: torch.Tensor) -> torch.Tensor:
    """One plain forward+backward to the embeddings (the floor; also LXT's whole explanation, on LXT's model)."""
    leaf = embeddings.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(function(leaf)[0, TARGET_CLASS], leaf)
    return leaf.detach() * grad


def timed_rounds(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Each call warmed up once, then ``repeats`` rounds calling them in turn; seconds per call and round."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(repeats):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    return times


def median_ratio(times: dict[str, list[float]], top: str, bottom: str) -> float:
    return statistics.median(a / b for a, b in zip(times[top], times[bottom], strict=True))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Warnings off: the tables measure what the warnings would say."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- LXT side by side (worker)


def _stub_torchvision() -> None:
    """LXT imports ``torchvision.models.vision_transformer`` for its ViT rules only; a stand-in module lets it import
    where torchvision is not installed (this part explains no vision model)."""
    import importlib.machinery
    import types

    if importlib.util.find_spec("torchvision") is not None:
        return
    for name in ("torchvision", "torchvision.models", "torchvision.models.vision_transformer"):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    sys.modules["torchvision.models.vision_transformer"].nn = nn
    sys.modules["torchvision.models"].vision_transformer = sys.modules["torchvision.models.vision_transformer"]


def _agreement(ours: torch.Tensor, theirs: torch.Tensor) -> dict[str, float]:
    """Pearson correlation and max abs difference per embedding dimension and per token (sum over dimensions)."""
    found = {}
    for level, a, b in (("dims", ours, theirs), ("tokens", ours.sum(-1), theirs.sum(-1))):
        a, b = a.flatten().double(), b.flatten().double()
        found[f"pearson_{level}"] = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
        found[f"max_abs_{level}"] = (a - b).abs().max().item()
        found[f"max_rel_{level}"] = found[f"max_abs_{level}"] / b.abs().max().item()
    return found


def lxt_worker(name: str, dtype: str, length: int, repeats: int) -> dict:
    """In the LXT interpreter: saliencelab on the plain model, then LXT on its patched twin with the same weights."""
    _stub_torchvision()
    import lxt
    import transformers
    from lxt.efficient import monkey_patch
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(2)
    model = build(name, dtype)
    ids = token_ids(length)
    embeddings = input_embeddings(model, ids)
    plain = FromEmbeddings(model)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
        with quiet():
            default = sl.explain(plain, embeddings, method="lrp", target=TARGET_CLASS)
            tiny = sl.explain(plain, embeddings, method="lrp", target=TARGET_CLASS, epsilon=1e-12, stabilizer=1e-12)
            times = timed_rounds(
                {
                    "floor": lambda: gradient_x_input(plain, embeddings),
                    "saliencelab": lambda: sl.explain(plain, embeddings, method="lrp", target=TARGET_CLASS),
                },
                repeats,
            )
            with torch.no_grad():
                logit = plain(embeddings)[0, TARGET_CLASS].item()
            module = (
                transformers.models.bert.modeling_bert if name == "BERT" else transformers.models.llama.modeling_llama
            )
            monkey_patch(module)
            patched = build(name, dtype)
            patched.load_state_dict(load_file(weights))
        twin = FromEmbeddings(patched)
        with quiet():
            theirs = gradient_x_input(twin, embeddings)
            times |= timed_rounds({"lxt": lambda: gradient_x_input(twin, embeddings)}, repeats)
            with torch.no_grad():
                twin_logit = twin(embeddings)[0, TARGET_CLASS].item()
    return {
        "model": name,
        "dtype": dtype,
        "versions": f"lxt {getattr(lxt, '__version__', '2.1')}, transformers {transformers.__version__}, "
        f"torch {torch.__version__}",
        "logit": logit,
        "logit_difference": abs(logit - twin_logit),
        "sum_ours": default.values.sum().item(),
        "sum_ours_tiny": tiny.values.sum().item(),
        "sum_lxt": theirs.sum().item(),
        "default": _agreement(default.values, theirs),
        "tiny": _agreement(tiny.values, theirs),
        "times": times,
    }


def lxt_part(s: argparse.Namespace) -> tuple[list[dict], str]:
    """Run the worker for every model and dtype in the LXT interpreter; the results, or why none."""
    python = Path(s.lxt_python)
    if not python.exists():
        return [], f"not run: no LXT interpreter at {python} (see the setup lines to build one)"
    found = []
    for name in s.models:
        for dtype in s.dtypes:
            print(f"LXT side by side: {name} {dtype}", flush=True)
            command = [str(python), __file__, "--lxt-worker", name, dtype, "--length", str(s.length)]
            command += ["--repeats", str(s.repeats)]
            env = os.environ | {"PYTHONPATH": str(REPO_ROOT), "TRANSFORMERS_VERBOSITY": "error"}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                return found, f"the LXT worker failed: {done.stderr.strip().splitlines()[-1:]}"
            found.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return found, ""


def lxt_table(found: list[dict]) -> str:
    lines = [
        "| model | dtype | saliencelab rule | Pearson per dim | Pearson per token | max abs diff per dim (rel.) "
        "| max abs diff per token (rel.) | ΣR ours / LXT / logit | ms ours | ms LXT | ms fwd+bwd |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in found:
        ms = {k: statistics.median(v) * 1000 for k, v in r["times"].items()}
        for key, label, total in (
            ("default", '`composite="transformer"` (ε = stabilizer = 1e-6)', r["sum_ours"]),
            ("tiny", "same, `epsilon=1e-12, stabilizer=1e-12`", r["sum_ours_tiny"]),
        ):
            a = r[key]
            timing = f"{ms['saliencelab']:.1f} | {ms['lxt']:.1f} | {ms['floor']:.1f}" if key == "default" else "| |"
            lines.append(
                f"| {r['model']} | {r['dtype']} | {label} | {a['pearson_dims']:.8f} | {a['pearson_tokens']:.8f} "
                f"| {a['max_abs_dims']:.1e} ({a['max_rel_dims']:.1e}) | {a['max_abs_tokens']:.1e} "
                f"({a['max_rel_tokens']:.1e}) | {total:.5f} / {r['sum_lxt']:.5f} / {r['logit']:.5f} | {timing} |"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- LRP's cost


@dataclass
class Cost:
    model: str
    dtype: str
    times: dict[str, list[float]]

    @property
    def ratio(self) -> float:
        return median_ratio(self.times, "lrp", "floor")


def lrp_cost(name: str, dtype: str, length: int, repeats: int) -> Cost:
    model = build(name, dtype)
    function, embeddings = FromEmbeddings(model), input_embeddings(model, token_ids(length))
    with quiet():
        times = timed_rounds(
            {
                "floor": lambda: gradient_x_input(function, embeddings),
                "lrp": lambda: sl.explain(function, embeddings, method="lrp", target=TARGET_CLASS),
            },
            repeats,
        )
    return Cost(name, dtype, times)


PROFILED = {
    "products": (
        "matrix products (`aten::mm`, `addmm`, `bmm`)",
        ("aten::mm", "aten::addmm", "aten::bmm"),
    ),
    "rules": (
        "rules' Python in the backward (self time of `PropagateBackward`, `PropagateKnowingOutputBackward`)",
        ("PropagateBackward", "PropagateKnowingOutputBackward"),
    ),
    "elementwise": (
        "elementwise operations (`add`, `sub`, `mul`, `div`, `ge`, `where`, dtype copies)",
        tuple(
            f"aten::{op}"
            for op in "add add_ sub sub_ mul mul_ div div_ ge where _to_copy copy_ neg abs sign clamp".split()
        ),
    ),
}
"""Groups of profiled events: ``key -> (label, torch.profiler event names whose self time and calls are summed)``."""


def profile(name: str, length: int, calls: int = 5) -> dict[str, dict[str, tuple[float, int]]]:
    """torch.profiler self CPU time (ms per call) and call counts of a few operations, floor and LRP, float32."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    model = build(name)
    function, embeddings = FromEmbeddings(model), input_embeddings(model, token_ids(length))
    runs = {
        "floor": lambda: gradient_x_input(function, embeddings),
        "lrp": lambda: sl.explain(function, embeddings, method="lrp", target=TARGET_CLASS),
    }
    found = {}
    with quiet():
        for label, run in runs.items():
            run()
            with torch_profile(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(calls):
                    run()
            events = {e.key: e for e in p.key_averages()}
            total = sum(e.self_cpu_time_total for e in events.values())
            found[label] = {"total": (total / 1000 / calls, 0)}
            for key, (_, names) in PROFILED.items():
                chosen = [events[n] for n in names if n in events]
                found[label][key] = (
                    sum(e.self_cpu_time_total for e in chosen) / 1000 / calls,
                    sum(e.count for e in chosen) // calls,
                )
    return found


def cost_table(costs: list[Cost]) -> str:
    lines = ["| model | dtype | ms fwd+bwd | ms LRP | LRP / fwd+bwd | target ≤ 1.5× |", "|---|---|---:|---:|---:|---|"]
    for c in costs:
        verdict = "met" if c.ratio <= LRP_TARGET else "NOT met"
        floor, lrp = (statistics.median(c.times[k]) * 1000 for k in ("floor", "lrp"))
        lines.append(f"| {c.model} | {c.dtype} | {floor:.1f} | {lrp:.1f} | {c.ratio:.2f} | {verdict} |")
    return "\n".join(lines)


def _count(n: int) -> str:
    return f" ({n})" if n else ""


def profile_table(profiles: dict[str, dict]) -> str:
    lines = [
        "| model | what | fwd+bwd ms/call (calls) | LRP ms/call (calls) |",
        "|---|---|---:|---:|",
    ]
    for name, found in profiles.items():
        for key, label in [("total", "all self CPU time"), *((k, v[0]) for k, v in PROFILED.items())]:
            floor, lrp = found["floor"][key], found["lrp"][key]
            lines.append(f"| {name} | {label} | {floor[0]:.1f}{_count(floor[1])} | {lrp[0]:.1f}{_count(lrp[1])} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- IG's passes


class RowCounter:
    """Rows through the embedding layer (a forward pre-hook, removed on exit)."""

    def __init__(self, module: nn.Module) -> None:
        self.module, self.rows = module, 0

    def __enter__(self) -> RowCounter:
        self.handle = self.module.register_forward_pre_hook(lambda m, args: self._count(args[0]))
        return self

    def _count(self, ids: torch.Tensor) -> None:
        self.rows += ids.shape[0]

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


class Logits(nn.Module):
    """``ids -> logits`` of a Hugging Face classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids).logits


def gap(model: Logits, ids: torch.Tensor, reference: torch.Tensor) -> float:
    """``f(x) - f(x')`` with ``x'`` the reference's embeddings swapped in at the embedding layer (the ids the
    classifier reads stay ``ids``)."""
    embeddings = model.model.get_input_embeddings()
    with torch.no_grad():
        swapped = embeddings(reference)
        output = model(ids)[0, TARGET_CLASS]
        handle = embeddings.register_forward_hook(lambda module, args, out: swapped)
        try:
            return (output - model(ids)[0, TARGET_CLASS]).item()
        finally:
            handle.remove()


@dataclass
class IGPasses:
    model: str
    reference: str
    captum: dict[int, tuple[float, float]]
    """n_steps -> (relative completeness error, rows through the embeddings)."""
    ours: dict[str, tuple[float, float, int]]
    """call -> (relative error, rows, points)."""

    def captum_reach(self) -> int | None:
        return next((k for k in sorted(self.captum) if self.captum[k][0] <= TOLERANCE), None)


def ig_passes(name: str, keep_first: bool, length: int, max_steps: int) -> IGPasses:
    from captum.attr import LayerIntegratedGradients

    model = Logits(build(name, "float64"))
    layer = model.model.get_input_embeddings()
    ids = token_ids(length)
    reference = torch.where((ids == FIRST) & keep_first, ids, PAD)
    difference = gap(model, ids, reference)

    def error(values: torch.Tensor) -> float:
        return abs(values.sum().item() - difference) / abs(difference)

    captum = {}
    steps = 4
    with quiet():
        while steps <= max_steps:
            with RowCounter(layer) as counter:
                values = LayerIntegratedGradients(model, layer).attribute(
                    ids, baselines=reference, target=TARGET_CLASS, n_steps=steps, return_convergence_delta=True
                )[0]
            captum[steps] = (error(values), counter.rows)
            print(f"  IG {name} keep_first={keep_first}: Captum n_steps={steps}: {captum[steps][0]:.1e}", flush=True)
            if captum[steps][0] <= TOLERANCE:
                break
            steps *= 2
        ours = {}
        for label, options in (
            (f"`tolerance={TOLERANCE:g}` (adaptive, the default with a tolerance)", {}),
            (
                f'`tolerance={TOLERANCE:g}, integration="gauss_legendre", steps=8`',
                {"integration": "gauss_legendre", "steps": 8},
            ),
        ):
            with RowCounter(layer) as counter:
                a = sl.explain(
                    model,
                    ids,
                    method="integrated_gradients",
                    layer=layer,
                    baseline=reference,
                    target=TARGET_CLASS,
                    tolerance=TOLERANCE,
                    max_steps=max_steps,
                    **options,
                )
            ours[label] = (error(a.values), counter.rows, int(a.info["steps"].max()))
    return IGPasses(name, "pad everywhere but the first token" if keep_first else "pad everywhere", captum, ours)


def ig_table(found: list[IGPasses]) -> str:
    lines = [
        "| model | reference | Captum: n_steps to 1e-2 (rel. error) | Captum passes | ours call | ours points "
        "| ours passes | ours rel. error | ours / Captum passes | target ≤ 0.5 |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for p in found:
        reach = p.captum_reach()
        last = max(p.captum)
        captum_steps = f"{reach} ({p.captum[reach][0]:.1e})" if reach else f"> {last} ({p.captum[last][0]:.1e})"
        captum_rows = p.captum[reach][1] if reach else None
        for label, (err, rows, points) in p.ours.items():
            if err > TOLERANCE:
                ratio, verdict = "—", "NOT met (tolerance not reached)"
            elif captum_rows is None:
                ratio, verdict = f"< {rows / p.captum[last][1]:.2f}", "met" if rows / p.captum[last][1] <= 0.5 else "?"
            else:
                ratio = f"{rows / captum_rows:.2f}"
                verdict = "met" if rows / captum_rows <= PASSES_TARGET else "NOT met"
            lines.append(
                f"| {p.model} | {p.reference} | {captum_steps} | {captum_rows or '—'} | {label} | {points} | {rows} "
                f"| {err:.1e} | {ratio} | {verdict} |"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- section


def reading(lxt: list[dict], costs: list[Cost], profiles: dict[str, dict], passes: list[IGPasses]) -> list[str]:
    lines = []
    if lxt:
        tiny = min(r["tiny"]["pearson_dims"] for r in lxt)
        default = min(r["default"]["pearson_dims"] for r in lxt)
        worst_tiny = max(r["tiny"]["max_rel_dims"] for r in lxt if r["dtype"] == "float64")
        lines += [
            "- **The rules are the same as LXT's; the ε is not.** LXT's efficient implementation is gradient × input"
            " through a model patched so that the gradient carries the AttnLRP rules: ε = 0 on dense layers (the"
            ' bias takes its share, as in saliencelab\'s default `bias="absorb"`), the softmax by its plain gradient'
            " (which times its input is the bias-free softmax rule `x_i (R_i − s_i Σ R)` that saliencelab writes"
            " out), the q·kᵀ and attention·v products halved (the uniform rule), layer and RMS norm with their"
            " standard deviation detached (saliencelab: held constant, ε rule on the centred linear map, identity"
            " for RMS norm), GELU/SiLU/tanh identity, the gated MLP's product halved. saliencelab's default adds a"
            " stabilizer ε = 1e-6 (with the sign of z) to every dense layer's and product's denominator. With"
            f" `epsilon=1e-12, stabilizer=1e-12` the two agree to a Pearson correlation ≥ {tiny:.10f} and a max"
            f" difference of {worst_tiny:.1e} of the largest relevance in float64 (float32 rounding in float32, and"
            " LXT's and transformers' RMS norm runs in float32 inside the float64 LLaMA); with the default ε the"
            f" correlation is still ≥ {default:.6f}, the difference being the stabilizer's damping of small"
            " denominators.",
        ]
        ratios = [statistics.median(r["times"]["saliencelab"]) / statistics.median(r["times"]["lxt"]) for r in lxt]
        lines.append(
            f"- **Time.** saliencelab takes {min(ratios):.1f}–{max(ratios):.1f}× LXT's time per explanation. LXT's"
            " explanation is one forward+backward of its patched model (its rules live in the model's code);"
            " saliencelab intercepts the unpatched model's operations and applies each rule in the backward pass"
            " (see the profile below). LXT needs its patched model classes and a transformers version it was"
            " written for; saliencelab runs on the model as it is, in transformers 4.52 and 5.x alike."
        )
    if costs:
        missed = [c for c in costs if c.ratio > LRP_TARGET]
        lines.append(
            f"- **LRP's cost: {'NOT met' if missed else 'met'}** ("
            + ", ".join(f"{c.model} {c.dtype} {c.ratio:.2f}×" for c in costs)
            + ")."
        )
    if profiles:
        parts = []
        for name, found in profiles.items():
            mm_floor, mm_lrp = found["floor"]["products"], found["lrp"]["products"]
            parts.append(
                f"{name}: {found['floor']['total'][0]:.0f} → {found['lrp']['total'][0]:.0f} ms of self CPU time; the"
                f" matrix products {mm_floor[0]:.0f} → {mm_lrp[0]:.0f} ms ({mm_floor[1]} → {mm_lrp[1]} calls),"
                f" the rules' Python {found['lrp']['rules'][0]:.0f} ms, the elementwise operations"
                f" {found['floor']['elementwise'][0]:.0f} → {found['lrp']['elementwise'][0]:.0f} ms"
            )
        lines.append(
            "- **Where LRP's time goes** (torch.profiler, float32): " + "; ".join(parts) + ". Dense layers, layer"
            " norm and the products of two activations are transposed in closed form and an unmodified dense"
            " layer reads its denominator z from its forward output, so the dense layers run as many matrix"
            " products as in the gradient; the 24 more are the attention, written out as its two products per"
            " layer (the scores q·kᵀ and the weights times v, each with both factors' gradients), which the"
            " gradient runs inside one fused kernel. What remains is per operation: the interception of every"
            " operation in the forward (the"
            " call normalised, its rule, a custom autograd function per layer, the results marked) and, per"
            " layer, the elementwise passes a gradient does not need (the stabilizer's sign, the division by z,"
            " the product with the input), plus the rules' Python in the backward. LXT patches the model's code"
            " once and runs no interception; 1.5× here needs the interception itself to cost less (e.g. a"
            " model's call plan cached after its first pass), not a change to a rule."
        )
    if passes:
        lines.append(
            "- **IG's passes.** With the first token kept in the reference (`saliencelab.text`'s default) the path"
            " is smooth and both libraries reach 1e-2 in few points; with every position referenced to the pad id,"
            " whose embedding row Hugging Face initialises to zero, the LLaMA path starts at the zero sequence, where"
            " every RMS norm divides by sqrt(mean x² + eps) with mean x² → 0: the function changes in a boundary"
            " layer a few 1e-4 wide at α = 0 (see docs/transformer-conformance.md), which Gauss-Legendre at fixed"
            " steps resolves only with many points and the adaptive rule finds by bisection. The target misses"
            " where the path is easy: where Captum is within 1e-2 at its smallest grid point (4 steps, 8 passes)"
            " the adaptive rule's 5 starting points and two end points already cost more."
        )
    return lines


def section(
    s: argparse.Namespace,
    lxt: list[dict],
    lxt_note: str,
    costs: list[Cost],
    profiles: dict,
    passes: list[IGPasses],
    elapsed: float,
) -> str:
    import transformers

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "unknown CPU",
    )
    lines = ["## Transformers: LRP against LXT, LRP's cost, IG's passes against Captum", ""]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): fewer repeats; not for comparison.**", ""]
    lines += [
        "### Setup",
        "",
        f"- Machine: {cpu}, shared with other work (1-minute load average {os.getloadavg()[0]:.1f} at the end);"
        " torch threads: 2.",
        f"- Software: saliencelab {sl.__version__}, torch {torch.__version__}, transformers {transformers.__version__}"
        + (
            f"; LXT side: {lxt[0]['versions']} (a separate venv: LXT 2.1 does not import with transformers 5)"
            if lxt
            else ""
        ),
        f"- Date: {time.strftime('%Y-%m-%d')}; run time {elapsed / 60:.1f} min",
        f"- Command: `python benchmarks/bench_transformers.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- Models: `BertForSequenceClassification` and `LlamaForSequenceClassification` from their config classes"
        f" (hidden 256, 4 layers, 4 heads, LLaMA with 2 key/value heads, intermediate 1024 / 688, vocabulary"
        f" {VOCAB}), seed 0, eval mode, SDPA attention; one sequence of {s.length} random ids, the first id"
        f" {FIRST} (a stand-in for [CLS]/BOS); class {TARGET_CLASS}.",
        "- LRP and LXT explain `model(inputs_embeds=E).logits[0, 1]` as a function of the input embeddings `E`"
        " (relevance per embedding dimension; per token = sum over the dimensions). The fwd+bwd floor is one"
        " plain forward and backward of the same function to `E`. Timing: one warm-up each, then"
        f" {s.repeats} alternating rounds; medians (ratios: medians of the per-round ratios). LXT is timed after"
        " saliencelab and the floor in the same process (its patch cannot be undone), so its column is more"
        " exposed to load changes.",
        "- IG: float64, token ids in, `layer=` the word embeddings; the relative completeness error"
        " |Σ attribution − (f(x) − f(x'))| / |f(x) − f(x')| is measured with the reference's embeddings swapped"
        " in; passes = rows through the embedding layer (Captum with `return_convergence_delta=True`).",
        "",
        "### LXT side by side",
        "",
        lxt_table(lxt) if lxt else lxt_note,
        "",
        f"### LRP's cost against one forward+backward (target ≤ {LRP_TARGET}×)",
        "",
        cost_table(costs) if costs else "not run",
        "",
        "Profile (torch.profiler, self CPU time per call, float32):",
        "",
        profile_table(profiles) if profiles else "not run",
        "",
        f"### IG to a relative completeness error of {TOLERANCE:g}: model passes against Captum"
        f" `LayerIntegratedGradients` (target ≤ {PASSES_TARGET}×)",
        "",
        ig_table(passes) if passes else "not run",
        "",
        "### Reading",
        "",
        *reading(lxt, costs, profiles, passes),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", nargs="*", default=["lxt", "lrp", "ig"], choices=["lxt", "lrp", "ig"])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    p.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--length", type=int, default=64, help="sequence length (default 64)")
    p.add_argument("--repeats", type=int, help="timed rounds (default 15, quick 3)")
    p.add_argument("--ig-max-steps", type=int, default=512)
    p.add_argument("--lxt-python", default="/work/lxt-venv/bin/python")
    p.add_argument("--lxt-worker", nargs=2, metavar=("MODEL", "DTYPE"), help=argparse.SUPPRESS)
    s = p.parse_args(argv)
    s.repeats = s.repeats or (3 if s.quick else 15)
    return s


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    if s.lxt_worker:
        print(json.dumps(lxt_worker(*s.lxt_worker, s.length, s.repeats)))
        return 0
    from bench_gradient import write_section

    torch.set_num_threads(2)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    began = time.perf_counter()
    lxt, note = lxt_part(s) if "lxt" in s.parts else ([], "not run")
    costs, profiles = [], {}
    if "lrp" in s.parts:
        for name in s.models:
            for dtype in s.dtypes:
                costs.append(lrp_cost(name, dtype, s.length, s.repeats))
                print(f"LRP cost {name} {dtype}: {costs[-1].ratio:.2f}x", flush=True)
            profiles[name] = profile(name, s.length)
    passes = []
    if "ig" in s.parts:
        passes = [ig_passes(name, keep, s.length, s.ig_max_steps) for name in s.models for keep in (True, False)]
    text = section(s, lxt, note, costs, profiles, passes, time.perf_counter() - began)
    write_section(s.out, SECTION, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
