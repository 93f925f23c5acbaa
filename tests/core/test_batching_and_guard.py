"""Chunking under a memory budget, and the model guard."""

from __future__ import annotations

import pytest
import torch

from saliencelab.core.batching import ActivationMeter, rows_per_chunk, run_chunked
from saliencelab.core.guard import preserved


def test_meter_counts_the_bytes_that_operations_return():
    a, b = torch.ones(10, 4), torch.ones(4, 3)
    with ActivationMeter() as meter:
        hidden = a @ b  # 30 floats
        hidden.relu()  # 30 more
    assert meter.bytes == 60 * 4


def test_chunks_cover_every_row_once_and_follow_the_budget():
    seen = []
    width = 1000

    def run(rows):
        seen.append(rows)
        torch.ones(rows.stop - rows.start, width).relu()

    run_chunked(100, run, memory_budget=3 * 4 * width * 10)  # room for ten rows' activations
    covered = [i for rows in seen for i in range(rows.start, rows.stop)]
    assert covered == list(range(100))
    assert seen[0] == slice(0, 1)
    assert max(r.stop - r.start for r in seen) == rows_per_chunk(4 * width * 2, 3 * 4 * width * 10)


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
