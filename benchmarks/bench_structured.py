"""Time saliencelab on several inputs, hidden layers and token ids against the floor and against Captum.

Rows (float32, CPU, one run):

1. a two-input model (an image 3×64² through a small conv net and a table of 32
   features, joined): Integrated Gradients (N = 1 and 8), DeepLIFT from
   per-sample random references, gradient × input and feature ablation
   (8×8-pixel patches of the image, one group per table feature);
2. the same model with a per-sample forward argument (a mask ``(N, 32)`` on the
   table), for Integrated Gradients;
3. the zoo's ResNet-18-shaped network: attribution to ``layer1``'s output
   (``LayerIntegratedGradients``, ``LayerGradientXActivation``, ``LayerDeepLift``);
4. token ids of a small text model (embedding 10k×128, two
   ``nn.TransformerEncoderLayer``, mean pool): Integrated Gradients at the
   embedding against Captum's ``LayerIntegratedGradients``.

Each row has ``ours`` (``saliencelab.explain`` as a user calls it), ``floor``
(the bare model passes the method needs, in plain torch at the fastest chunk
size measured here; see ``floor_*`` below for each) and ``captum`` (Captum's
class at the same settings: steps, quadrature, references, masks, batch size
tuned to the same chunk). The timing rounds, medians of per-round ratios,
peak-memory sampling and machine header come from ``bench_gradient.py``. The
report is one section of ``BENCHMARKS.md`` between ``<!-- bench_structured: begin -->``
and ``<!-- bench_structured: end -->``, replaced on every run. See ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_structured.py                        # full run (~10 min on 2 cores)
    python benchmarks/bench_structured.py --quick --out /tmp/q.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from bench_deeplift import captum_twin
from bench_gradient import (
    REPO_ROOT,
    Cell,
    Contender,
    Measured,
    _fmt,
    _ratio,
    cell_estimate,
    command_line,
    machine,
    make_images,
    plan_repeats,
    quiet,
    row_chunks,
    run_cell,
    write_section,
)
from torch import nn

import saliencelab as sl

SECTION = "bench_structured"
TARGET = 3
"""Explained class (the text model has two classes: it explains class 1)."""
DISAGREEMENT = 1e-4
"""Relative max |diff| against Captum above which a row is flagged."""

Tensor = torch.Tensor
Call = Callable[[], Tensor]
Inputs = tuple[Tensor, ...]


@dataclass
class Settings:
    """Everything that defines a run; built from the command line."""

    image_steps: int
    layer_steps: int
    text_steps: int
    batches: list[int]
    layer_batches: list[int]
    text_batch: int
    resnet_size: int
    seq_len: int
    chunks: list[int]
    max_repeats: int
    min_repeats: int
    cell_seconds: float
    warmup_max_seconds: float
    threads: int
    seed: int
    out: Path
    quick: bool


def parse_args(argv: list[str] | None = None) -> Settings:
    """Read the command line; ``--quick`` changes the defaults it does not override."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: fewer steps and rows, smaller inputs")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="Markdown report path")
    p.add_argument("--resnet-size", type=int, help="ResNet input side (default 224, quick 64)")
    p.add_argument("--repeats", type=int, help="most rounds per row (default 9, quick 1)")
    p.add_argument("--min-repeats", type=int, default=1, help="fewest rounds, whatever they cost (default 1)")
    p.add_argument("--cell-seconds", type=float, help="rounds per row fit in this (default 40, quick 3)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    q = a.quick
    return Settings(
        image_steps=8 if q else 32,
        layer_steps=4 if q else 16,
        text_steps=8 if q else 32,
        batches=[1, 8],
        layer_batches=[1, 4],
        text_batch=8,
        resnet_size=a.resnet_size or (64 if q else 224),
        seq_len=32 if q else 128,
        chunks=[1, 8, 32] if q else [1, 2, 4, 8, 16, 32, 64, 128, 256],
        max_repeats=a.repeats or (1 if q else 9),
        min_repeats=a.min_repeats,
        cell_seconds=a.cell_seconds or (3.0 if q else 40.0),
        warmup_max_seconds=5.0,
        threads=a.threads,
        seed=a.seed,
        out=a.out,
        quick=q,
    )


# --------------------------------------------------------------------------- models


class ImageAndTable(nn.Module):
    """A small conv net on a 3×64² image and an MLP on 32 table features, joined; optional mask on the table."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.table = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(32 * 16 + 64, 64), nn.ReLU(), nn.Linear(64, classes))

    def forward(self, image: Tensor, table: Tensor, mask: Tensor | None = None) -> Tensor:
        """Scores ``(N, classes)``; ``mask`` (N, 32), if given, multiplies the table."""
        table = table if mask is None else table * mask
        return self.head(torch.cat([self.image(image), self.table(table)], dim=1))


class TokenClassifier(nn.Module):
    """Token ids -> embedding 10k×128 -> two Transformer encoder layers -> mean pool -> 2 classes."""

    def __init__(self, vocabulary: int = 10_000, width: int = 128) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, width)
        layer = nn.TransformerEncoderLayer(width, 4, dim_feedforward=256, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(width, 2)

    def above_embedding(self, embedded: Tensor) -> Tensor:
        """The network above the embedding layer."""
        return self.fc(self.encoder(embedded).mean(1))

    def forward(self, ids: Tensor) -> Tensor:
        """Scores ``(N, 2)`` of token ids ``(N, L)``."""
        return self.above_embedding(self.embedding(ids))


def resnet_halves(model: nn.Module) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """The ResNet-18-shaped network split at ``layer1``'s output: (up to it, above it)."""

    def below(x: Tensor) -> Tensor:
        return model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x)))))

    def above(h: Tensor) -> Tensor:
        h = model.avgpool(model.layer4(model.layer3(model.layer2(h))))
        return model.fc(torch.flatten(h, 1))

    return below, above


# --------------------------------------------------------------------------- floors: plain torch


def gauss_legendre(steps: int) -> tuple[Tensor, Tensor]:
    """Nodes on [0, 1] and weights summing to 1 (the rule both libraries use here)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return torch.from_numpy((nodes + 1) / 2).float(), torch.from_numpy(weights / 2).float()


def gradients(forward: Callable[..., Tensor], points: Inputs, extra: Inputs, target: int) -> Inputs:
    """One forward+backward: d forward(*points, *extra)[:, target] / d points."""
    points = tuple(p.detach().requires_grad_(True) for p in points)
    with torch.enable_grad():
        score = forward(*points, *extra)[:, target].sum()
        return torch.autograd.grad(score, points)


def floor_path(
    forward: Callable[..., Tensor],
    inputs: Inputs,
    baselines: Inputs,
    target: int,
    steps: int,
    chunk: int,
    extra: Inputs = (),
) -> Tensor:
    """Integrated Gradients in plain torch: S·N rows of forward+backward in chunks, plus f(x) and f(baseline).

    ``baselines`` have one row, shared by every sample; ``extra`` are per-sample forward arguments that
    follow each sample's rows.
    """
    alphas, weights = gauss_legendre(steps)
    n = inputs[0].shape[0]
    with torch.no_grad():  # the two forward passes of the completeness delta
        forward(*inputs, *extra)
        forward(*baselines, *(e[:1] for e in extra))
    totals = [torch.zeros_like(x) for x in inputs]
    for rows in row_chunks(n * steps, chunk):
        sample, step = rows // steps, rows % steps
        points = tuple(b + _per_row(alphas[step], x) * (x[sample] - b) for x, b in zip(inputs, baselines, strict=True))
        grads = gradients(forward, points, tuple(e[sample] for e in extra), target)
        for total, grad, x in zip(totals, grads, inputs, strict=True):
            total.index_add_(0, sample, _per_row(weights[step], x) * grad)
    return flat(tuple((x - b) * t for x, b, t in zip(inputs, baselines, totals, strict=True)))


def _per_row(values: Tensor, like: Tensor) -> Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def floor_ablation(model: nn.Module, inputs: Inputs, masks: Inputs, target: int, chunk: int) -> Tensor:
    """Feature ablation in plain torch: f(x) and one forward per group per sample (group set to 0), in chunks.

    ``masks`` are integer group ids broadcastable to each input's sample, ids disjoint across inputs.
    """
    n = inputs[0].shape[0]
    ids = torch.unique(torch.cat([m.flatten() for m in masks]))
    keep = [
        torch.stack([(m[0] != g).to(x.dtype).expand_as(x[0]) for g in ids]) for x, m in zip(inputs, masks, strict=True)
    ]
    groups = len(ids)
    scores = torch.empty(n * groups)
    with torch.inference_mode():
        clean = model(*inputs)[:, target]
        for rows in row_chunks(n * groups, chunk):
            sample, group = rows // groups, rows % groups
            scores[rows] = model(*(x[sample] * k[group] for x, k in zip(inputs, keep, strict=True)))[:, target]
    per_group = clean[:, None] - scores.reshape(n, groups)
    return flat(tuple((per_group[:, :, None] * (1 - k.reshape(groups, -1))[None]).sum(1) for k in keep))


def flat(values: Tensor | Sequence[Tensor]) -> Tensor:
    """One tensor ``(N, D)`` of one or several attribution maps (so that the timing helpers can keep it)."""
    values = (values,) if isinstance(values, Tensor) else tuple(values)
    return torch.cat([v.reshape(v.shape[0], -1) for v in values], dim=1)


# --------------------------------------------------------------------------- chunk search


@dataclass
class Search:
    """One chunk-size search: what was timed, seconds per row by chunk size, the fastest chunk."""

    what: str
    per_row: dict[int, float]
    best: int

    def line(self) -> str:
        """``what: 1: 1.7, 8: 0.31, ...; best 8`` (ms per row)."""
        return (
            f"{self.what}: " + ", ".join(f"{c}: {t * 1e3:.3g}" for c, t in self.per_row.items()) + f"; best {self.best}"
        )

    def versus_largest(self) -> str:
        """``0.15 ms/row at 32 rows against 0.21 at 256`` (the best chunk against the largest tried)."""
        largest = max(self.per_row)
        return (
            f"{self.per_row[self.best] * 1e3:.3g} ms/row at {self.best} rows against"
            f" {self.per_row[largest] * 1e3:.3g} at {largest}"
        )


def best_chunk(
    rows_call: Callable[[int], Call], chunks: list[int], what: str, searches: list[Search]
) -> tuple[int, dict[int, float]]:
    """The chunk size with the fastest time per row (one warm-up pass, then two alternating timed passes).

    A line for the report's setup, ms per row by chunk size, is added to ``searches``.
    """
    calls = {c: rows_call(c) for c in chunks}
    times: dict[int, list[float]] = {c: [] for c in chunks}
    for pass_index in range(3):
        for c, call in calls.items():
            start = time.perf_counter()
            call()
            if pass_index:
                times[c].append((time.perf_counter() - start) / c)
    per_row = {c: statistics.median(t) for c, t in times.items()}
    chunk = min(per_row, key=per_row.get)
    print(f"  {what}: best chunk {chunk} rows ({per_row[chunk] * 1e3:.2f} ms/row)", flush=True)
    searches.append(Search(what, per_row, chunk))
    return chunk, per_row


# --------------------------------------------------------------------------- rows


@dataclass
class Plan:
    """One row of the report: what it runs, its pass count and its timed cell."""

    group: str
    title: str
    passes: str
    cell: Cell


def _cell(key: str, n: int, ours: Call, floor: Call, captum: Call, seconds: float) -> Cell:
    """The three contenders of a row (``key`` names the row's kind for the reading, ``n`` its batch)."""
    loops = max(1, round(0.05 / max(seconds, 1e-6)))
    return Cell(
        key,
        n,
        [
            Contender("ours", ours, seconds * loops, loops=loops),
            Contender("floor", floor, seconds * loops, loops=loops),
            Contender("captum", quiet(captum), seconds * loops, loops=loops),
        ],
        {"captum": key},
    )


def two_input_plans(s: Settings, searches: list[Search]) -> list[Plan]:
    """Rows 1 and 2: the two-input model (rows of both kinds interleaved by batch, then sorted by kind)."""
    from captum.attr import DeepLift, FeatureAblation, InputXGradient, IntegratedGradients

    torch.manual_seed(s.seed)
    model = ImageAndTable().eval()
    t, steps = TARGET, s.image_steps

    def rows_call(c: int) -> Call:
        x = (make_images(c, 64, s.seed + 100), torch.randn(c, 32))
        return lambda: gradients(model, x, (), t)

    print("two-input model (3x64² image + 32-feature table):", flush=True)
    chunk, per_row = best_chunk(rows_call, s.chunks, "two-input model, forward+backward", searches)

    def forward_rows(c: int) -> Call:
        x = (make_images(c, 64, s.seed + 100), torch.randn(c, 32))

        def run() -> Tensor:
            with torch.inference_mode():
                return model(*x)

        return run

    forward_chunk, forward_per_row = best_chunk(forward_rows, s.chunks, "two-input model, forward only", searches)
    patch = 8
    image_mask = (torch.arange(64)[:, None] // patch * (64 // patch) + torch.arange(64)[None] // patch)[None, None]
    image_groups = (64 // patch) ** 2
    table_mask = (image_groups + torch.arange(32))[None]
    packed_mask = torch.cat([image_mask.expand(1, 3, 64, 64).reshape(1, -1), table_mask], dim=1)
    groups = image_groups + 32
    plans: list[Plan] = []
    for n in s.batches:
        g = torch.Generator().manual_seed(s.seed + n)
        x = (make_images(n, 64, s.seed), torch.randn(n, 32, generator=g))
        refs = (make_images(n, 64, s.seed + 1), torch.randn(n, 32, generator=g))
        zeros = tuple(torch.zeros_like(v[:1]) for v in x)
        mask = (torch.rand(n, 32, generator=g) > 0.5).float()
        ig_seconds = n * steps * per_row[chunk]
        ig = IntegratedGradients(model)
        ig_options = {"n_steps": steps, "method": "gausslegendre", "internal_batch_size": max(chunk, n)}
        ours_ig = {"steps": steps, "integration": "gauss_legendre", "baseline": "zeros", "target": t}
        plans.append(
            Plan(
                "two inputs",
                f"IG, S={steps}, N={n}",
                f"{n * steps} fwd+bwd rows",
                _cell(
                    "two-input IG",
                    n,
                    lambda x=x, o=ours_ig: flat(sl.explain(model, x, method="integrated_gradients", **o).values),
                    lambda x=x, zeros=zeros: floor_path(model, x, zeros, t, steps, chunk),
                    lambda x=x, zeros=zeros, ig=ig, o=ig_options: flat(
                        ig.attribute(x, baselines=zeros, target=t, return_convergence_delta=True, **o)[0]
                    ),
                    ig_seconds,
                ),
            )
        )
        plans.append(
            Plan(
                "two inputs + forward argument",
                f"IG, S={steps}, N={n}, mask (N, 32) as forward argument",
                f"{n * steps} fwd+bwd rows",
                _cell(
                    "forward argument IG",
                    n,
                    lambda x=x, mask=mask, o=ours_ig: flat(
                        sl.explain(model, x, method="integrated_gradients", forward_args=(mask,), **o).values
                    ),
                    lambda x=x, zeros=zeros, mask=mask: floor_path(model, x, zeros, t, steps, chunk, (mask,)),
                    lambda x=x, zeros=zeros, mask=mask, ig=ig, o=ig_options: flat(
                        ig.attribute(
                            x,
                            baselines=zeros,
                            target=t,
                            additional_forward_args=(mask,),
                            return_convergence_delta=True,
                            **o,
                        )[0]
                    ),
                    ig_seconds,
                ),
            )
        )
        one_pass = n * per_row[min(per_row, key=lambda c: abs(c - n))]
        plans.append(
            Plan(
                "two inputs",
                f"DeepLIFT (Rescale), per-sample random references, N={n}",
                "floor: 1 fwd+bwd of the batch",
                _cell(
                    "two-input DeepLIFT",
                    n,
                    lambda x=x, refs=refs: flat(
                        sl.explain(model, x, method="deeplift", target=t, baseline=refs).values
                    ),
                    lambda x=x: flat(gradients(model, x, (), t)),
                    lambda x=x, refs=refs: flat(DeepLift(model).attribute(x, baselines=refs, target=t)),
                    3 * one_pass,
                ),
            )
        )
        plans.append(
            Plan(
                "two inputs",
                f"gradient × input, N={n}",
                "1 fwd+bwd of the batch",
                _cell(
                    "two-input gradient x input",
                    n,
                    lambda x=x: flat(sl.explain(model, x, method="gradient_x_input", target=t).values),
                    lambda x=x: flat(tuple(v * g for v, g in zip(x, gradients(model, x, (), t), strict=True))),
                    lambda x=x: flat(InputXGradient(model).attribute(x, target=t)),
                    one_pass,
                ),
            )
        )
        ablation_rows = n * (groups + 1)
        plans.append(
            Plan(
                "two inputs",
                f"feature ablation, {image_groups} patches of {patch}×{patch} + 32 table groups, N={n}",
                f"{ablation_rows} forward rows",
                _cell(
                    "two-input feature ablation",
                    n,
                    lambda x=x: flat(
                        sl.explain(
                            model, x, method="feature_ablation", target=t, baseline=0.0, feature_mask=packed_mask
                        ).values
                    ),
                    lambda x=x: floor_ablation(model, x, (image_mask, table_mask), t, forward_chunk),
                    lambda x=x, n=n: flat(
                        FeatureAblation(model).attribute(
                            x,
                            baselines=(0.0, 0.0),  # Captum 0.9's cross-input masks need one baseline per input
                            target=t,
                            feature_mask=(image_mask, table_mask),
                            perturbations_per_eval=max(1, forward_chunk // n),
                        )
                    ),
                    ablation_rows * forward_per_row[forward_chunk],
                ),
            )
        )
    for plan in plans:
        plan.cell.info["counted"] = (model.image[0],)
    order = ["two inputs", "two inputs + forward argument"]
    return sorted(plans, key=lambda p: order.index(p.group))


def layer_plans(s: Settings, searches: list[Search]) -> list[Plan]:
    """Row 3: attribution to ``layer1`` of the ResNet-18-shaped network."""
    from captum.attr import LayerDeepLift, LayerGradientXActivation, LayerIntegratedGradients

    model = sl.zoo.load("resnet18_shaped", num_classes=10, seed=0).eval()
    below, above = resnet_halves(model)
    t, steps, size = TARGET, s.layer_steps, s.resnet_size

    def rows_call(c: int) -> Call:
        x = make_images(c, size, s.seed + 100)
        return lambda: gradients(model, (x,), (), t)

    print(f"ResNet-18-shaped at {size}²:", flush=True)
    chunk, per_row = best_chunk(
        rows_call, [c for c in s.chunks if c <= 32], f"ResNet-18-shaped at {size}², forward+backward", searches
    )
    plans: list[Plan] = []
    for n in s.layer_batches:
        x = make_images(n, size, s.seed)
        refs = make_images(n, size, s.seed + 1)
        zero = torch.zeros_like(x[:1])

        def floor_layer_ig(x: Tensor = x, zero: Tensor = zero) -> Tensor:
            with torch.no_grad():
                activations, baseline = below(x), below(zero)
            return floor_path(above, (activations,), (baseline,), t, steps, chunk)

        def floor_layer_gxa(x: Tensor = x) -> Tensor:
            with torch.no_grad():
                activations = below(x)
            return flat(activations * gradients(above, (activations,), (), t)[0])

        lig = LayerIntegratedGradients(model, model.layer1)
        twin = captum_twin(model)  # Captum's DeepLift needs one non-inplace ReLU module per use
        one_pass = n * per_row[min(per_row, key=lambda c: abs(c - n))]
        plans.append(
            Plan(
                "layer1 of ResNet-18-shaped",
                f"LayerIntegratedGradients, S={steps}, N={n}",
                f"{n * steps} rows above layer1",
                _cell(
                    "layer IG",
                    n,
                    lambda x=x: flat(
                        sl.explain(
                            model,
                            x,
                            method="integrated_gradients",
                            target=t,
                            layer="layer1",
                            steps=steps,
                            integration="gauss_legendre",
                            baseline="zeros",
                        ).values
                    ),
                    floor_layer_ig,
                    lambda x=x, zero=zero, lig=lig, n=n: flat(
                        lig.attribute(
                            x,
                            baselines=zero.expand_as(x),
                            target=t,
                            n_steps=steps,
                            method="gausslegendre",
                            internal_batch_size=max(chunk, n),
                            return_convergence_delta=True,
                        )[0]
                    ),
                    n * steps * per_row[chunk],
                ),
            )
        )
        plans.append(
            Plan(
                "layer1 of ResNet-18-shaped",
                f"LayerGradientXActivation, N={n}",
                "1 fwd + bwd above layer1",
                _cell(
                    "layer gradient x activation",
                    n,
                    lambda x=x: flat(sl.explain(model, x, method="gradient_x_input", target=t, layer="layer1").values),
                    floor_layer_gxa,
                    lambda x=x: flat(LayerGradientXActivation(model, model.layer1).attribute(x, target=t)),
                    one_pass,
                ),
            )
        )
        plans.append(
            Plan(
                "layer1 of ResNet-18-shaped",
                f"LayerDeepLift (Rescale), per-sample random references, N={n}",
                "floor: 1 fwd+bwd of the batch",
                _cell(
                    "layer DeepLIFT",
                    n,
                    lambda x=x, refs=refs: flat(
                        sl.explain(model, x, method="deeplift", target=t, layer="layer1", baseline=refs).values
                    ),
                    lambda x=x: flat(gradients(model, (x,), (), t)),
                    lambda x=x, refs=refs, twin=twin: flat(
                        LayerDeepLift(twin, twin.layer1).attribute(x, baselines=refs, target=t)
                    ),
                    3 * one_pass,
                ),
            )
        )
        for plan in plans[-3:]:
            plan.cell.info["counted"] = (model.conv1, twin.conv1)
    return plans


def text_plans(s: Settings, searches: list[Search]) -> list[Plan]:
    """Row 4: token ids, IG at the embedding."""
    from captum.attr import LayerIntegratedGradients

    torch.manual_seed(s.seed)
    model = TokenClassifier().eval()
    t, steps, n, length = 1, s.text_steps, s.text_batch, s.seq_len

    def rows_call(c: int) -> Call:
        e = torch.randn(c, length, 128)
        return lambda: gradients(model.above_embedding, (e,), (), t)

    print(f"text model (embedding 10k×128, 2 encoder layers, length {length}):", flush=True)
    chunk, per_row = best_chunk(rows_call, s.chunks, "text model, forward+backward above the embedding", searches)
    g = torch.Generator().manual_seed(s.seed)
    ids = torch.randint(1, 10_000, (n, length), generator=g)
    pad = torch.zeros_like(ids[:1])
    lig = LayerIntegratedGradients(model, model.embedding)

    def floor() -> Tensor:
        with torch.no_grad():
            embedded, baseline = model.embedding(ids), model.embedding(pad)
        return floor_path(model.above_embedding, (embedded,), (baseline,), t, steps, chunk)

    cell = _cell(
        "text IG",
        n,
        lambda: flat(
            sl.explain(
                model,
                ids,
                method="integrated_gradients",
                target=t,
                layer="embedding",
                baseline=0,
                steps=steps,
                integration="gauss_legendre",
            ).values
        ),
        floor,
        lambda: flat(
            lig.attribute(
                ids,
                baselines=pad.expand_as(ids),
                target=t,
                n_steps=steps,
                method="gausslegendre",
                internal_batch_size=max(chunk, n),
                return_convergence_delta=True,
            )[0]
        ),
        n * steps * per_row[chunk],
    )
    cell.info["counted"] = (model.encoder,)
    title = f"IG at the embedding (Captum: LayerIntegratedGradients), S={steps}, N={n}, length {length}"
    return [Plan("token ids, text model", title, f"{n * steps} rows above the embedding", cell)]


# --------------------------------------------------------------------------- report


def _median(m: Measured) -> str:
    if m.error:
        return "error"
    return _fmt(statistics.median(m.times) if m.times else None, ".3f")


def _difference(results: dict[str, Measured]) -> str:
    ours, theirs = results["ours"].values, results["captum"].values
    if ours is None or theirs is None:
        return "n/a"
    return f"{float((ours - theirs).abs().max() / theirs.abs().max().clamp(min=1e-30)):.1e}"


def table(rows: list[Row]) -> str:
    """The results table, one line per row."""
    lines = [
        "| input kind | row | model passes | ours s | floor s | Captum s | ours/floor | ours/Captum "
        "| max rel. diff vs Captum | R |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for plan, r, repeats in rows:
        lines.append(
            f"| {plan.group} | {plan.title} | {plan.passes} | {_median(r['ours'])} | {_median(r['floor'])} "
            f"| {_median(r['captum'])} | {_fmt(_ratio(r['ours'], r['floor']), '.2f')} "
            f"| {_fmt(_ratio(r['ours'], r['captum']), '.2f')} | {_difference(r)} | {repeats} |"
        )
    return "\n".join(lines)


def batch_sizes(modules: Sequence[nn.Module], call: Call) -> str:
    """The batch sizes that reach ``modules`` during one ``call``, in call order: ``"1 + 8 + 12×64"``."""
    seen: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape[0])) for m in modules]
    try:
        call()
    finally:
        for hook in hooks:
            hook.remove()
    runs: list[list[int]] = []
    for size in seen:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    return " + ".join(f"{count}×{size}" if count > 1 else str(size) for size, count in runs)


Row = tuple[Plan, dict[str, Measured], int]


def _find(rows: list[Row], key: str) -> list[Row]:
    return [row for row in rows if row[0].cell.method == key]


def _ratios(rows: list[Row], key: str, peer: str = "floor") -> str:
    """``"1.40× (N=1), 1.72× (N=8)"``: ours over ``peer`` for each batch of the rows of ``key``."""
    return ", ".join(
        f"{_fmt(_ratio(r['ours'], r[peer]), '.2f')}× (N={plan.cell.batch})" for plan, r, _ in _find(rows, key)
    )


def _batches(rows: list[Row], key: str, label: str) -> str:
    found = _find(rows, key)
    return found[-1][0].cell.info.get("batches", {}).get(label, "?") if found else "?"


def _extra_ms(rows: list[Row], key: str) -> str:
    """Median ours minus median floor, in ms, per batch."""
    out = []
    for plan, r, _ in _find(rows, key):
        if r["ours"].times and r["floor"].times:
            extra = statistics.median(r["ours"].times) - statistics.median(r["floor"].times)
            out.append(f"{extra * 1e3:.1f} ms (N={plan.cell.batch})")
    return ", ".join(out)


def _ablation_floor(rows: list[Row], searches: list[Search]) -> str:
    """A sentence on the feature-ablation floor where Captum beats it: how much of it is the forward rows alone."""
    found = [
        row for row in _find(rows, "two-input feature ablation") if row[1]["captum"].times and row[1]["floor"].times
    ]
    forward = [search for search in searches if "forward only" in search.what]
    if not found or not forward:
        return ""
    plan, r, _ = found[-1]
    floor, captum = statistics.median(r["floor"].times), statistics.median(r["captum"].times)
    if captum >= floor:
        return ""
    rows_count = int(plan.passes.split()[0])  # "776 forward rows"
    search = forward[0]
    model_s = rows_count * search.per_row[search.best]
    return (
        f" At N={plan.cell.batch} Captum's feature ablation ({captum * 1e3:.0f} ms) beats the floor"
        f" ({floor * 1e3:.0f} ms): the floor's {rows_count} forward rows alone take about {model_s * 1e3:.0f} ms at"
        " its best chunk, the rest is building the ablated rows (a gather and a multiply of every element), which"
        " Captum does more cheaply."
    )


def reading(rows: list[Row], searches: list[Search]) -> list[str]:
    """The section's reading: the run's numbers with what they mean and where the time goes."""
    diffs = [float(d) for _, r, _ in rows if (d := _difference(r)) != "n/a"]
    deeplift = [float(_difference(r)) for p, r, _ in rows if "DeepLIFT" in p.cell.method]
    return [
        "Times and ratios are from the same rounds of one run on a shared 2-core machine; a ratio is the median"
        " of the per-round ratios. The batch sizes below were counted with a forward hook on the model's first"
        " layer during one extra call after the timing.",
        "",
        f"- **Identical output**: the largest relative difference from Captum over all rows is {max(diffs):.1e};"
        f" the DeepLIFT rows are the largest ({max(deeplift):.1e}, float32 rounding in the Rescale multipliers),"
        " the others are at float32 round-off. In float64 the tests find 1e-10 (2e-7 for IG: Captum casts its"
        " quadrature weights to float32).",
        f"- **Chunk size**: two-input IG is {_ratios(rows, 'two-input IG')} its floor and"
        f" {_ratios(rows, 'two-input IG', 'captum')} Captum; feature ablation"
        f" {_ratios(rows, 'two-input feature ablation')} its floor and"
        f" {_ratios(rows, 'two-input feature ablation', 'captum')} Captum; token-id IG"
        f" {_ratios(rows, 'text IG')} its floor and {_ratios(rows, 'text IG', 'captum')} Captum. At the largest"
        f" batch ours runs the rows as batches of {_batches(rows, 'two-input IG', 'ours')} (IG),"
        f" {_batches(rows, 'two-input feature ablation', 'ours')} (ablation) and {_batches(rows, 'text IG', 'ours')}"
        " (text; the batches of 1 and N rows are the per-row memory probe, f(x) and f(baseline)): on a CPU ours"
        " caps a chunk at 16 MiB of one row's measured forward activations times the rows, at least 64 rows"
        " (`saliencelab.core.batching.fastest_rows`, a constant, never a timing), under the 1 GiB"
        " `memory_budget`. The floor and Captum run the chunk measured"
        f" fastest here (Captum's feature ablation: {_batches(rows, 'two-input feature ablation', 'captum')})."
        " The chunk searches give the per-row cost of the best chunk against the largest tried: "
        + "; ".join(f"{search.what}: {search.versus_largest()}" for search in searches if "ResNet" not in search.what)
        + "."
        + _ablation_floor(rows, searches),
        f"- **Forward arguments**: IG with a per-sample mask as forward argument is"
        f" {_ratios(rows, 'forward argument IG')} its floor and {_ratios(rows, 'forward argument IG', 'captum')}"
        f" Captum, against {_ratios(rows, 'two-input IG')} and {_ratios(rows, 'two-input IG', 'captum')} without"
        " it: each row gets its sample's mask (a gather of N·S rows of 32 values), as in the floor and in Captum.",
        f"- **Layer attribution re-runs the layers below**: LayerIntegratedGradients is {_ratios(rows, 'layer IG')}"
        f" its floor and {_ratios(rows, 'layer IG', 'captum')} Captum: both libraries run the whole network for"
        " every row, the floor runs `layer1` and below once. Gradient × activation is"
        f" {_ratios(rows, 'layer gradient x activation')} its floor and"
        f" {_ratios(rows, 'layer gradient x activation', 'captum')} Captum: the stem and `layer1` see batches of"
        f" {_batches(rows, 'layer gradient x activation', 'ours')} in ours (a 1-row probe, one pass that stops at"
        " the layer to read its output, then the pass with the gradient) against"
        f" {_batches(rows, 'layer gradient x activation', 'captum')} in Captum (one pass that keeps the output)."
        f" LayerDeepLift: {_ratios(rows, 'layer DeepLIFT')} one forward+backward and"
        f" {_ratios(rows, 'layer DeepLIFT', 'captum')} Captum; the stem sees"
        f" {_batches(rows, 'layer DeepLIFT', 'ours')} in ours (inputs and references apart, each read at the layer"
        f" and run again) against {_batches(rows, 'layer DeepLIFT', 'captum')} in Captum (inputs and references"
        " in one batch).",
        f"- **Per-call cost on a tiny model**: the two-input model's forward+backward takes 1–3 ms, so two-input"
        f" DeepLIFT ({_ratios(rows, 'two-input DeepLIFT')} its floor, {_ratios(rows, 'two-input DeepLIFT', 'captum')}"
        f" Captum) and gradient × input ({_ratios(rows, 'two-input gradient x input')} its floor,"
        f" {_ratios(rows, 'two-input gradient x input', 'captum')} Captum) show a per-call cost: ours minus floor"
        f" is {_extra_ms(rows, 'two-input DeepLIFT')} for DeepLIFT and {_extra_ms(rows, 'two-input gradient x input')}"
        " for gradient × input. It is the 1-row memory probe, packing the two inputs into one flat batch and"
        " unpacking them in the model, the finiteness checks and, for DeepLIFT, the interception of every"
        " operation and the Rescale multipliers of every layer for inputs and references, which grow with N"
        " (a cProfile of 20 DeepLIFT calls at N=8, taken when this text was written: about 9,500 Python"
        " function calls per call).",
    ]


def section(
    s: Settings,
    rows: list[Row],
    searches: list[Search],
    at_start: dict[str, str],
    elapsed: float,
    load: tuple[float, float],
) -> str:
    """The section's Markdown."""
    lines = [
        "## Several inputs, hidden layers and token ids: against their floor and against Captum",
        "",
    ]
    if s.quick:
        lines += ["**Quick smoke run (`--quick`): fewer steps, small inputs; not for comparison.**", ""]
    lines += [
        "### Setup",
        "",
        f"- Machine: {at_start['CPU']}; torch threads: {s.threads}. The machine is shared with other work while"
        f" this runs (1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end): ratios within"
        " a round are sturdier than absolute seconds.",
        f"- Software: {at_start['Software']}",
        f"- Date: {at_start['Date']}; run time {elapsed / 60:.1f} min",
        f"- Command: `{command_line()}`",
        "- Float32 on CPU; every model in eval mode; inputs seeded; target class"
        f" {TARGET} (text model: class 1). IG uses Gauss-Legendre steps and a zero baseline (token id 0 for the"
        " text model) in both libraries, Captum with `return_convergence_delta=True` (ours computes `.delta`"
        " too) and `internal_batch_size` = the floor's best chunk; the floor includes f(x) and f(baseline).",
        "- Two-input model: image 3×64² through three stride-2 convs (16, 32, 32 channels) and a 4×4 average pool,"
        " table of 32 features through Linear(32, 64); joined, Linear(576, 64), Linear(64, 10). The forward-argument"
        " rows multiply the table by a per-sample 0/1 mask `(N, 32)` passed as `forward_args=(mask,)` /"
        " `additional_forward_args=(mask,)`. Feature ablation: baseline 0, Captum with tuple masks and"
        " `perturbations_per_eval` = best forward chunk / N; ours with the same groups as one packed mask.",
        f'- ResNet-18-shaped: `sl.zoo.load("resnet18_shaped", num_classes=10, seed=0)` at {s.resnet_size}²'
        '; attribution to `layer1`\'s output (`layer="layer1"`). The floor of the layer IG and'
        " gradient × activation runs `layer1` and below once (no grad) and only the network above `layer1`"
        " per row; both libraries re-run the whole network per row, so ours/floor counts that too.",
        "- DeepLIFT rows: the floor is one forward+backward of the batch, as in `bench_deeplift.py`.",
        "- Chunk searches (ms per row by rows per batch; one warm-up and two timed passes, alternating):",
        *[f"  - {search.line()}" for search in searches],
        f"- Text model: `nn.Embedding(10000, 128)`, two `nn.TransformerEncoderLayer(128, 4,"
        f" dim_feedforward=256, batch_first=True)`, mean pool, Linear(128, 2); sequence length {s.seq_len}."
        " Ours runs the encoder layer unchanged (no fall-back model was needed); its fused fast path is only"
        " taken in the no-grad passes.",
        "- Timing: each call warmed up once; then R rounds of (ours, floor, Captum); times are medians, ratios"
        f" medians of the per-round ratios. R fits {s.cell_seconds:.0f} s per row, between {s.min_repeats} and"
        f" {s.max_repeats}. Calls under 50 ms are repeated back to back inside a timed call.",
        "",
        "### Results",
        "",
        table(rows),
        "",
        "### Reading",
        "",
        *reading(rows, searches),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of the report."""
    s = parse_args(argv)
    torch.set_num_threads(s.threads)
    print(f"saliencelab from {Path(sl.__file__).parent}", flush=True)
    began, load_start = time.perf_counter(), os.getloadavg()[0]
    at_start = machine()
    searches: list[Search] = []
    todo = [*two_input_plans(s, searches), *layer_plans(s, searches), *text_plans(s, searches)]
    total = sum(cell_estimate(p.cell, plan_repeats(p.cell, s), s) for p in todo)
    print(f"{len(todo)} rows; roughly {total / 60:.1f} min (from the floors' estimates)", flush=True)
    rows = []
    for index, plan in enumerate(todo, start=1):
        repeats = plan_repeats(plan.cell, s)
        print(f"[{index}/{len(todo)}] {plan.group}: {plan.title}: R={repeats}", flush=True)
        rows.append((plan, run_cell(plan.cell, repeats, s), repeats))
    for plan, _, _ in rows:  # after the timing, so that the hooks cannot slow it
        labels = {c.label: c.call for c in plan.cell.contenders if c.label != "floor"}
        plan.cell.info["batches"] = {
            label: batch_sizes(plan.cell.info["counted"], call) for label, call in labels.items()
        }
    elapsed = time.perf_counter() - began
    write_section(s.out, SECTION, section(s, rows, searches, at_start, elapsed, (load_start, os.getloadavg()[0])))
    print(f"\n{table(rows)}\n")
    print("\n".join(reading(rows, searches)))
    print(f"wrote the {SECTION} section of {s.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
