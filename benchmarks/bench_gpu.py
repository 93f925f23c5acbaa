"""Time every registered method on a CUDA device, in float32 and bfloat16, against its floor and against Captum.

For each method of ``sl.available_methods()`` the script times, in alternating
rounds on one device:

- ``ours``: ``saliencelab.explain(...)`` as a user calls it, with its default
  memory budget;
- ``floor``: the model passes ours made, counted by a forward pre-hook on the
  model during one untimed call, replayed in plain torch: the rows that ran with
  gradients as forward+backward of the target score to the input (the
  embeddings for the text model), the others as inference forwards, each in
  chunks of the largest batch ours ran. Like the CPU scripts' floors it is the
  bare model work; unlike them it is counted, not derived per method, so the
  passes ours adds (the one-row memory probe, f(x) and f(baseline) for
  ``.delta``) are in the floor too;
- ``captum``: Captum's counterpart where one computes the same quantity (see
  ``CAPTUM`` below) at the same settings.

Models: the zoo's ResNet-18-shaped network (random weights, no torchvision) at
224² for the image methods, and ``BertForSequenceClassification`` built from
a ``BertConfig`` (random weights) for the methods ``sl.text.explain`` runs at the
embeddings. bfloat16 means ``model.to(torch.bfloat16)`` and bfloat16 inputs
(not autocast, which would keep the numerically touchy operations in float32
and time neither dtype): a method that refuses bfloat16 shows its error in the
table. Times come from CUDA events with ``torch.cuda.synchronize()`` around each
call (``time.perf_counter`` on the CPU); peak memory is
``torch.cuda.max_memory_allocated()`` above the allocation before the call.

The report is one section of ``BENCHMARKS.md`` between
``<!-- bench_gpu: begin -->`` and ``<!-- bench_gpu: end -->``.

Usage::

    python benchmarks/bench_gpu.py                           # full run on CUDA
    python benchmarks/bench_gpu.py --quick --out /tmp/q.md   # smoke run on CUDA
    python benchmarks/bench_gpu.py --device cpu --quick --out /tmp/q.md   # the same smoke run on the CPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from bench_gradient import REPO_ROOT, command_line, machine, make_images, write_section
from torch import nn

import saliencelab as sl
from saliencelab.core import registry

SECTION = "bench_gpu"
TARGET = 3
"""Explained class of the ResNet (the text model explains class 1)."""
TEXT_TARGET = 1
TEXT_METHODS = (
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "smoothgrad",
    "expected_gradients",
    "gradient_shap",
    "deeplift",
    "lrp",
    "feature_ablation",
    "occlusion",
    "kernel_shap",
    "lime",
    "shapley_sampling",
)
"""The methods timed on the text model, as ``sl.text.explain`` runs them (at the embeddings, or on token ids)."""

Tensor = torch.Tensor
Call = Callable[[], Tensor]


@dataclass
class Settings:
    """Everything that defines a run; built from the command line."""

    device: torch.device
    dtypes: list[torch.dtype]
    methods: list[str]
    batch: int
    size: int
    seq_len: int
    bert: dict
    steps: int
    samples: int
    repeats: int
    quick: bool
    out: Path


def parse_args(argv: list[str] | None = None) -> Settings:
    """Read the command line; ``--quick`` changes the defaults it does not override."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="torch device (default cuda; cpu only for a smoke run)")
    p.add_argument("--quick", action="store_true", help="smoke run: small inputs, few steps and rounds")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report path")
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--methods", nargs="+", help="a subset of sl.available_methods() (default: all)")
    p.add_argument("--batch", type=int, help="samples per call (default 8, quick 2)")
    p.add_argument("--size", type=int, help="ResNet input side (default 224, quick 32)")
    p.add_argument("--repeats", type=int, help="timed rounds per row (default 7, quick 1)")
    a = p.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.exit(
            2,
            "bench_gpu.py: CUDA is not available here (torch.cuda.is_available() is False, torch "
            f"{torch.__version__}); run it on a machine with an NVIDIA GPU and a CUDA build of torch, "
            "or use --device cpu --quick for a smoke run of the script itself.\n",
        )
    unknown = sorted(set(a.methods or []) - set(sl.available_methods()))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {sl.available_methods()}")
    q = a.quick
    return Settings(
        device=device,
        dtypes=[getattr(torch, name) for name in a.dtypes],
        methods=a.methods or sl.available_methods(),
        batch=a.batch or (2 if q else 8),
        size=a.size or (32 if q else 224),
        seq_len=16 if q else 128,
        bert=(
            {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
            if q
            else {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
        ),
        steps=4 if q else 50,
        samples=2 if q else 20,
        repeats=a.repeats or (1 if q else 7),
        quick=q,
        out=a.out,
    )


# --------------------------------------------------------------------------- models and options


class Logits(nn.Module):
    """A Hugging Face sequence classifier as a function of token ids: ``ids -> logits``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor) -> Tensor:
        """Logits ``(N, classes)``."""
        return self.model(input_ids=ids).logits

    def from_embeddings(self, embedded: Tensor) -> Tensor:
        """Logits of word embeddings ``(N, T, D)``: the network above the embedding layer."""
        return self.model(inputs_embeds=embedded).logits


def bert(s: Settings) -> Logits:
    """``BertForSequenceClassification`` from its config, random weights, eval mode."""
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, max_position_embeddings=512, num_labels=2, **s.bert)
    return Logits(transformers.BertForSequenceClassification(config)).eval()


def method_options(method: str, s: Settings, layer: str | None, x: Tensor) -> dict:
    """The options of ``method`` here: the CPU benchmarks' settings for the multi-pass methods, else defaults."""
    cls = registry.get(method)
    names = registry.option_names(cls)
    options: dict = dict(cls.quick_options) if s.quick else {}
    for name, value in (("steps", s.steps), ("samples", s.samples), ("seed", 0)):
        if name in names and (not s.quick or name not in options):
            options[name] = value
    if "integration" in names:
        options["integration"] = "gauss_legendre"
    if "fit_data" in names:
        options["fit_data"] = x
    if layer is not None:
        options["layer"] = layer
    return options


# --------------------------------------------------------------------------- contenders


@dataclass
class Case:
    """One model and input in one dtype."""

    name: str
    model: nn.Module
    x: Tensor
    target: int
    layer: str | None
    embed: Callable[[Tensor], Tensor] | None = None
    """Token ids -> embeddings (text model): the floor differentiates the network above them."""
    above: Callable[[Tensor], Tensor] | None = None


def ours_call(case: Case, method: str, s: Settings) -> Call:
    """``sl.explain`` as a user calls it."""
    cls = registry.get(method)
    takes_layer = cls.layer_attribution or "layer" in registry.option_names(cls)
    layer = case.layer if (case.layer and not cls.integer_inputs and takes_layer) else None
    options = method_options(method, s, layer, case.x)
    baseline = None
    if cls.draws_references:
        baseline = case.x.roll(1, 0) if case.embed is None else torch.zeros_like(case.x)
    elif cls.takes_baseline:
        baseline = 0 if case.embed is not None else "zeros"
    return lambda: sl.explain(case.model, case.x, method=method, target=case.target, baseline=baseline, **options)


@dataclass
class Passes:
    """Rows through the model in one call of ours: with gradients and without, and the largest batch of each."""

    grad_rows: int = 0
    plain_rows: int = 0
    grad_chunk: int = 1
    plain_chunk: int = 1


def count_passes(model: nn.Module, call: Call) -> Passes:
    """The rows ``call`` sends through ``model``'s forward (a forward pre-hook), split by grad mode."""
    seen = Passes()

    def hook(_module: nn.Module, args: tuple) -> None:
        rows = args[0].shape[0] if args and isinstance(args[0], Tensor) else 1
        if torch.is_grad_enabled():
            seen.grad_rows += rows
            seen.grad_chunk = max(seen.grad_chunk, rows)
        else:
            seen.plain_rows += rows
            seen.plain_chunk = max(seen.plain_chunk, rows)

    handle = model.register_forward_pre_hook(hook)
    try:
        call()
    finally:
        handle.remove()
    return seen


def floor_call(case: Case, passes: Passes) -> Call:
    """The counted passes in plain torch: forward+backward rows to the input (embeddings), inference rows."""
    x = case.x
    if case.embed is not None:
        with torch.no_grad():
            x = case.embed(case.x)
    grad_function = case.above or case.model

    def run() -> Tensor:
        total = torch.zeros((), device=x.device)
        for first in range(0, passes.grad_rows, passes.grad_chunk):
            rows = min(passes.grad_chunk, passes.grad_rows - first)
            points = x[torch.arange(first, first + rows, device=x.device) % x.shape[0]].detach().requires_grad_(True)
            score = grad_function(points)[:, case.target].sum()
            total = total + torch.autograd.grad(score, points)[0].float().sum()
        with torch.inference_mode():
            for first in range(0, passes.plain_rows, passes.plain_chunk):
                rows = min(passes.plain_chunk, passes.plain_rows - first)
                total = total + case.model(case.x[torch.arange(first, first + rows, device=x.device) % x.shape[0]])[
                    :, case.target
                ].float().sum()
        return total

    return run


def captum_call(case: Case, method: str, s: Settings) -> Call | None:
    """Captum's counterpart of ``method`` at the same settings, or None where Captum has none here."""
    import captum.attr as ca

    model, x, t, n = case.model, case.x, case.target, case.x.shape[0]
    rows = max(n, 32)
    if case.embed is not None:
        embeddings = case.model.model.get_input_embeddings()
        pad = torch.zeros_like(x)
        text = {
            "integrated_gradients": lambda: ca.LayerIntegratedGradients(model, embeddings).attribute(
                x, baselines=pad, target=t, n_steps=s.steps, method="gausslegendre", internal_batch_size=rows
            ),
            "gradient_x_input": lambda: ca.LayerGradientXActivation(model, embeddings).attribute(x, target=t),
            "gradient": lambda: ca.LayerGradientXActivation(model, embeddings, multiply_by_inputs=False).attribute(
                x, target=t
            ),
        }
        return text.get(method)
    image = {
        "gradient": lambda: ca.Saliency(model).attribute(x, target=t, abs=False),
        "gradient_x_input": lambda: ca.InputXGradient(model).attribute(x, target=t),
        "deconvnet": lambda: ca.Deconvolution(model).attribute(x, target=t),
        "guided_backprop": lambda: ca.GuidedBackprop(model).attribute(x, target=t),
        "integrated_gradients": lambda: ca.IntegratedGradients(model).attribute(
            x, baselines=torch.zeros_like(x), target=t, n_steps=s.steps, method="gausslegendre",
            internal_batch_size=rows,
        ),
        "grad_cam": lambda: ca.LayerGradCam(model, model.layer4).attribute(x, target=t),
    }
    return image.get(method)


CAPTUM = {
    "image": "Saliency (abs=False), InputXGradient, Deconvolution, GuidedBackprop, IntegratedGradients"
    " (Gauss-Legendre, same steps, internal_batch_size = max(N, 32)), LayerGradCam on layer4",
    "text": "LayerIntegratedGradients (pad id 0, same steps), LayerGradientXActivation (with and without the"
    " multiplication) at the word embeddings",
}
"""The Captum counterparts timed; other methods have no Captum row here (their options differ)."""


# --------------------------------------------------------------------------- timing


@dataclass
class Measured:
    """One contender's timed rounds, peak memory and last value (or its error)."""

    times: list[float] = field(default_factory=list)
    peak: float | None = None
    value: Tensor | None = None
    error: str | None = None


def timed(call: Call, device: torch.device) -> tuple[float, float | None, Tensor]:
    """Seconds of one call (CUDA events on a GPU), peak allocated bytes above the start (GPU only), its value."""
    if device.type != "cuda":
        start = time.perf_counter()
        value = call()
        return time.perf_counter() - start, None, value
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    value = call()
    end.record()
    torch.cuda.synchronize(device)
    return begin.elapsed_time(end) / 1e3, float(torch.cuda.max_memory_allocated(device) - before), value


def values_of(result: object) -> Tensor:
    """The map of a result: ours' ``.values``, Captum's tensor (or first element), the floor's total."""
    if isinstance(result, sl.Attribution):
        return result.values
    if isinstance(result, tuple):
        return result[0]
    return result


def run_row(calls: dict[str, Call], repeats: int, device: torch.device) -> dict[str, Measured]:
    """One warm-up per contender, then ``repeats`` alternating rounds; a contender that raises is marked."""
    results = {label: Measured() for label in calls}
    for round_index in range(repeats + 1):
        for label, call in calls.items():
            m = results[label]
            if m.error:
                continue
            try:
                seconds, peak, value = timed(call, device)
            except Exception as error:  # noqa: BLE001 - a refusal is a result of the benchmark
                m.error = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
                continue
            if round_index:
                m.times.append(seconds)
                m.peak = peak if m.peak is None or peak is None else max(m.peak, peak)
            m.value = values_of(value).detach()
    return results


def ratio(a: Measured, b: Measured) -> float | None:
    """Median of the per-round ratios a/b."""
    if not a.times or not b.times:
        return None
    return statistics.median(x / y for x, y in zip(a.times, b.times, strict=False))


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    """One line of the results table."""

    model: str
    method: str
    dtype: str
    results: dict[str, Measured]
    passes: Passes
    difference: str


def _ms(m: Measured | None) -> str:
    if m is None:
        return "—"
    if m.error:
        return "error"
    return f"{statistics.median(m.times) * 1e3:.3g}" if m.times else "—"


def _mib(m: Measured | None) -> str:
    return "—" if m is None or m.peak is None else f"{m.peak / 2**20:.0f}"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def relative_difference(a: Tensor | None, b: Tensor | None) -> str:
    """max |a − b| / max |b|, in float32, or n/a."""
    if a is None or b is None or a.shape != b.shape:
        return "n/a"
    a, b = a.float(), b.float()
    return f"{float((a - b).abs().max() / b.abs().max().clamp(min=1e-30)):.1e}"


def table(rows: list[Row]) -> str:
    """The results table."""
    lines = [
        "| model | method | dtype | rows grad + plain | ours ms | floor ms | Captum ms | ours/floor | ours/Captum"
        " | peak MiB ours/floor/Captum | max rel. diff vs Captum (float32) or vs float32 (bfloat16) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours, floor, captum = r.results["ours"], r.results["floor"], r.results.get("captum")
        lines.append(
            f"| {r.model} | {r.method} | {r.dtype} | {r.passes.grad_rows} + {r.passes.plain_rows} | {_ms(ours)}"
            f" | {_ms(floor)} | {_ms(captum)} | {_fmt(ratio(ours, floor))}"
            f" | {_fmt(ratio(ours, captum) if captum else None)}"
            f" | {_mib(ours)}/{_mib(floor)}/{_mib(captum)} | {r.difference} |"
        )
    return "\n".join(lines)


def refusals(rows: list[Row]) -> list[str]:
    """One bullet per contender that raised: the method, the dtype and the error's first line."""
    return [
        f"- {r.model}, `{r.method}`, {r.dtype}, {label}: `{m.error}`"
        for r in rows
        for label, m in r.results.items()
        if m.error
    ]


def section(s: Settings, rows: list[Row], at_start: dict[str, str], elapsed: float) -> str:
    """The section's Markdown."""
    card = torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else "none (CPU smoke run)"
    lines = ["## Every method on a GPU: float32 and bfloat16, against its floor and Captum", ""]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): tiny models and inputs; not for comparison.**", ""]
    lines += [
        "### Setup",
        "",
        f"- Device: {s.device} ({card}); host: {at_start['CPU']}",
        f"- Software: {at_start['Software']}; CUDA {torch.version.cuda}",
        f"- Date: {at_start['Date']}; run time {elapsed / 60:.1f} min",
        f"- Command: `{command_line()}`",
        f'- Image methods: `sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0)` at {s.size}², N={s.batch},'
        f" target class {TARGET}; text methods: `BertForSequenceClassification` from `BertConfig({s.bert})`"
        f" (random weights), length {s.seq_len}, N={s.batch}, class {TEXT_TARGET}, at the word embeddings"
        " (`layer=`) or on the token ids (perturbation methods), baseline: zeros / pad id 0; references"
        " (DeepSHAP, expected gradients, GradientSHAP): the batch rolled by one.",
        f"- Options: steps {s.steps} (Gauss-Legendre), samples {s.samples}, seed 0"
        + (", the registry's quick options" if s.quick else ", every other option at its default")
        + "; default memory budget.",
        "- bfloat16: `model.to(torch.bfloat16)` and bfloat16 inputs, no autocast. The last column compares the"
        " bfloat16 map with the float32 map of the same method.",
        "- Floor: the rows ours sent through the model (forward pre-hook, one untimed call), replayed in plain"
        " torch in chunks of ours' largest batch: forward+backward to the input (the embeddings) for the rows with"
        " gradients, inference forwards for the others.",
        f"- Captum: {CAPTUM['image']}; text: {CAPTUM['text']}.",
        f"- Timing: CUDA events and `torch.cuda.synchronize()`; one warm-up, then {s.repeats} alternating rounds"
        " (ours, floor, Captum); medians, ratios as medians of the per-round ratios. Peak memory:"
        " `torch.cuda.max_memory_allocated()` above the allocation before the call.",
        "",
        "### Results",
        "",
        table(rows),
        "",
        "### Errors and refusals",
        "",
        *(refusals(rows) or ["- none"]),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def cases(s: Settings, dtype: torch.dtype) -> list[Case]:
    """The ResNet and the text model on the device in ``dtype``."""
    resnet = sl.zoo.load("resnet18_shaped", num_classes=1000, seed=0).eval().to(s.device, dtype)
    images = make_images(s.batch, s.size, seed=0).to(s.device, dtype)
    found = [Case("ResNet-18-shaped", resnet, images, TARGET, None)]
    try:
        text = bert(s).to(s.device, dtype)
    except ImportError as error:
        print(f"text model skipped: {error}", flush=True)
        return found
    ids = torch.randint(1000, 30000, (s.batch, s.seq_len), generator=torch.Generator().manual_seed(0))
    embed = text.model.get_input_embeddings()
    found.append(
        Case(
            "BERT-shaped",
            text,
            ids.to(s.device),
            TEXT_TARGET,
            "model." + next(n for n, m in text.model.named_modules() if m is embed),
            embed=embed,
            above=text.from_embeddings,
        )
    )
    return found


def run(s: Settings) -> list[Row]:
    """Every (dtype, model, method) row."""
    rows: list[Row] = []
    float32_maps: dict[tuple[str, str], Tensor] = {}
    for dtype in s.dtypes:
        dtype_name = str(dtype).removeprefix("torch.")
        for case in cases(s, dtype):
            for method in s.methods:
                if case.embed is not None and method not in TEXT_METHODS:
                    continue
                print(f"{dtype_name} {case.name} {method}", flush=True)
                ours = ours_call(case, method, s)
                try:
                    passes = count_passes(case.model, ours)
                except Exception:  # noqa: BLE001 - the timed run below records the error
                    passes = Passes()
                    traceback.print_exc(limit=1)
                calls = {"ours": ours, "floor": floor_call(case, passes)}
                captum = captum_call(case, method, s) if dtype == torch.float32 else None
                if captum is not None:
                    calls["captum"] = captum
                results = run_row(calls, s.repeats, s.device)
                key = (case.name, method)
                if dtype == torch.float32:
                    float32_maps[key] = results["ours"].value
                    difference = relative_difference(results["ours"].value, results.get("captum", Measured()).value)
                else:
                    difference = relative_difference(results["ours"].value, float32_maps.get(key))
                rows.append(Row(case.name, method, dtype_name, results, passes, difference))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the report."""
    s = parse_args(argv)
    print(f"saliencelab from {Path(sl.__file__).parent}; device {s.device}", flush=True)
    began = time.perf_counter()
    at_start = machine()
    rows = run(s)
    elapsed = time.perf_counter() - began
    write_section(s.out, SECTION, section(s, rows, at_start, elapsed))
    print(f"\n{table(rows)}\n")
    print(f"wrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
