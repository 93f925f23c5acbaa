"""Calls in two threads on one model give the results of sequential calls and leave the model as it was."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import torch
from helpers import assert_unchanged, snapshot
from torch.nn.modules import module as module_globals

import saliencelab as sl
from saliencelab.evaluate import model_randomization

SECONDS = 2.5
"""How long the threads race: enough rounds that a shared hook or RNG shows on every run of the old code."""


@pytest.fixture(scope="module")
def digits():
    model = sl.zoo.load("digits_cnn")
    _, _, x_test, _ = sl.zoo.dataset("digits")
    return model, x_test[:8]


def _same(result: object, expected: object) -> bool:
    if isinstance(expected, torch.Tensor):
        return result.shape == expected.shape and torch.allclose(result, expected, rtol=0, atol=1e-6)
    return result == expected


def _race(jobs: dict[str, Callable[[], object]], expected: dict[str, object]) -> dict[str, list]:
    """Run each job in a thread of its own, over and over for :data:`SECONDS`, all started together.

    Returns, per job, what went wrong: each result unlike ``expected[name]`` and each exception.
    Fails if a job did not complete a few rounds (the race would prove nothing).
    """
    start = threading.Barrier(len(jobs))
    wrong: dict[str, list] = {name: [] for name in jobs}
    rounds = dict.fromkeys(jobs, 0)

    def loop(name: str) -> None:
        start.wait()
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:
            try:
                result = jobs[name]()
                if not _same(result, expected[name]):
                    wrong[name].append(result)
            except Exception as error:  # noqa: BLE001  (every error is a failure of the test)
                wrong[name].append(repr(error))
            rounds[name] += 1

    threads = [threading.Thread(target=loop, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert min(rounds.values()) >= 5, rounds
    return wrong


def _plain_gradient(model: torch.nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """The gradient of the target score with respect to the input, with torch alone."""
    leaf = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(leaf)[:, target].sum(), leaf)
    return grad


@pytest.mark.parametrize("cam", ["grad_cam", "ablation_cam"])
def test_a_cam_and_gradients_in_two_threads_equal_sequential_calls(digits, cam):
    model, x = digits
    before = snapshot(model)
    jobs = {
        cam: lambda: sl.explain(model, x, method=cam, target=3).values,
        "gradient": lambda: sl.explain(model, x, method="gradient", target=3).values,
        "torch": lambda: _plain_gradient(model, x, 3),
    }
    expected = {name: job() for name, job in jobs.items()}
    assert all(value.abs().amax() > 0 for value in expected.values())
    wrong = _race(jobs, expected)
    assert wrong == {name: [] for name in jobs}, {name: len(found) for name, found in wrong.items()}
    assert_unchanged(model, before)
    assert not module_globals._global_forward_hooks and not module_globals._global_forward_pre_hooks


def _seeded_draws() -> torch.Tensor:
    torch.manual_seed(123)
    return torch.rand(1000)


def test_model_randomization_in_a_thread_leaves_other_threads_alone(digits):
    model, x = digits
    before = snapshot(model)
    jobs = {
        "randomisation": lambda: model_randomization(
            model, x[:4], method="gradient", mode="independent", progress=False
        )["per_sample"].tolist(),
        "seeded draws": _seeded_draws,
        "grad_cam": lambda: sl.explain(model, x, method="grad_cam", target=3).values,
    }
    expected = {name: job() for name, job in jobs.items()}
    wrong = _race(jobs, expected)
    assert wrong == {name: [] for name in jobs}, {name: len(found) for name, found in wrong.items()}
    assert_unchanged(model, before)
