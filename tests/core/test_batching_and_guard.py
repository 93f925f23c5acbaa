"""Chunking under a memory budget, and the model guard."""

from __future__ import annotations

import pytest
import torch

import saliencelab as sl
from saliencelab.core.batching import CPU_CHUNK_BYTES, ActivationMeter, fastest_rows, rows_per_chunk, run_chunked
from saliencelab.core.guard import preserved


def test_meter_counts_the_bytes_that_operations_return():
    a, b = torch.ones(10, 4), torch.ones(4, 3)
    with ActivationMeter() as meter:
        hidden = a @ b  # 30 floats
        hidden.relu()  # 30 more
        hidden.relu_()  # in place: nothing new
        hidden.t()  # a view: nothing new
    assert meter.bytes == 60 * 4


def test_meter_sees_inside_torchscript_models():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
    x = torch.ones(1, 1, 5, 5)
    counts = []
    for net in (model, torch.jit.trace(model, x), torch.jit.script(model)):
        with ActivationMeter() as meter, torch.no_grad():
            net(x)
        counts.append(meter.bytes)
    assert counts[0] == counts[1] == counts[2] == 2 * 4 * 25 * 4  # conv and ReLU outputs; flatten is a view


def test_chunks_cover_every_row_once_and_follow_the_budget():
    seen, measured = [], []
    model = torch.nn.Identity()

    def measure():
        measured.append(1)
        return 4000

    run_chunked(100, seen.append, memory_budget=3 * 4000 * 10, measure=measure, owner=model, key="row")
    assert [i for rows in seen for i in range(rows.start, rows.stop)] == list(range(100))
    assert [r.stop - r.start for r in seen] == [10] * 10
    again = []
    run_chunked(100, again.append, memory_budget=3 * 4000 * 10, measure=measure, owner=model, key="row")
    assert again == seen and len(measured) == 1  # remembered: the same split, no second measurement


def test_on_a_cpu_a_chunk_stays_near_the_fastest_size_under_a_large_budget():
    seen = []
    run_chunked(5000, seen.append, memory_budget=1 << 30, measure=lambda: 10**4, owner=None, key="row", cpu=True)
    assert fastest_rows(10**4) == CPU_CHUNK_BYTES // 10**4 == 1677
    assert [r.stop - r.start for r in seen] == [1667, 1667, 1666]  # 3 chunks of at most 1677, evened out
    whole = []
    run_chunked(5000, whole.append, memory_budget=1 << 30, measure=lambda: 10**4, owner=None, key="row")
    assert [(r.start, r.stop) for r in whole] == [(0, 5000)]  # elsewhere (CUDA) the budget alone decides
    few = []
    run_chunked(512, few.append, memory_budget=1 << 30, measure=lambda: 10**6, owner=None, key="row", cpu=True)
    assert few[0].stop - few[0].start == 64  # large rows: never fewer than 64 a chunk, unless the budget says so


def test_a_method_on_a_cpu_runs_many_cheap_rows_in_several_chunks():
    model = torch.nn.Sequential(torch.nn.Linear(4, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 2))
    rows = []
    model[0].register_forward_hook(lambda module, args, output: rows.append(args[0].shape[0]))
    x = torch.randn(64, 4, dtype=torch.float64)
    a = sl.explain(model.double(), x, method="integrated_gradients", target=0, steps=256, baseline=0.0)
    with torch.inference_mode(), ActivationMeter() as meter:
        model(x[:1])
    assert fastest_rows(meter.bytes) - 32 <= max(rows) <= fastest_rows(meter.bytes) < 64 * 256  # old: all in one
    rows.clear()
    small = sl.explain(model, x, method="integrated_gradients", target=0, steps=256, baseline=0.0, memory_budget=10**6)
    assert max(rows) < fastest_rows(meter.bytes)
    torch.testing.assert_close(a.values, small.values, rtol=1e-12, atol=1e-12)  # the split changes nothing


def test_chunks_are_evened_out():
    seen = []
    run_chunked(8, seen.append, memory_budget=3 * 1000 * 7, measure=lambda: 1000, owner=None, key="row")
    assert [r.stop - r.start for r in seen] == [4, 4]  # not 7 + 1: the same number of passes, none nearly empty


def test_a_single_row_is_not_measured():
    run_chunked(1, lambda rows: None, memory_budget=1, measure=lambda: 1 / 0)


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="memory_budget"):
        rows_per_chunk(10, 0)


def test_guard_restores_flags_hooks_and_buffers_even_when_the_call_raises():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
    running = model[1].running_mean.clone()
    with pytest.raises(RuntimeError), pytest.warns(UserWarning, match="training mode"):
        with preserved(model):
            model(torch.randn(8, 2) + 5)
            model.eval()
            model[0].register_forward_hook(lambda *args: None)
            model[0].weight.requires_grad_(False)
            raise RuntimeError("boom")
    assert model.training and model[1].training
    assert not model[0]._forward_hooks
    assert model[0].weight.requires_grad
    assert torch.equal(model[1].running_mean, running)
