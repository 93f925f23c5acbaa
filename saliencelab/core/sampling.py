"""Seeded randomness and noise scales shared by the stochastic methods.

Nothing draws from the global RNG: each call makes its own generator from
``seed``, and draws one set of noise shared by every sample of the batch, so a
sample's result depends only on that sample and the seed, never on the rest of
the batch. Large draws (one noise tensor per copy of the input) come from one
generator per draw (:func:`normal_draws`), so that they can be drawn chunk by
chunk and still be the same whatever the chunks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from saliencelab.core.validation import check_seed


def generator(seed: int, device: torch.device) -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``seed``.

    Example
    -------
    >>> a = torch.rand(2, generator=generator(0, torch.device("cpu")))
    >>> torch.equal(a, torch.rand(2, generator=generator(0, torch.device("cpu"))))
    True
    """
    return torch.Generator(device=device).manual_seed(check_seed(seed))


def substream_seed(seed: int, index: int) -> int:
    """The seed of draw ``index`` under ``seed``: a fixed mix, so a draw never depends on the chunking.

    Example
    -------
    >>> substream_seed(0, 1) != substream_seed(1, 0), substream_seed(3, 5) == substream_seed(3, 5)
    (True, True)
    """
    return (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 1) % (1 << 63)


def normal_draws(
    seed: int, index: torch.Tensor, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Standard normal draws ``index``, shape ``(len(index), *shape)``, each from its own generator.

    Draw ``i`` is the same whichever other draws are asked for with it, so
    noise can be drawn chunk by chunk instead of all at once.

    Example
    -------
    >>> cpu = torch.device("cpu")
    >>> both = normal_draws(0, torch.tensor([2, 5]), (3,), cpu, torch.float32)
    >>> torch.equal(both[1], normal_draws(0, torch.tensor([5]), (3,), cpu, torch.float32)[0])
    True
    """
    return torch.stack(
        [
            torch.randn(shape, generator=generator(substream_seed(seed, i), device), device=device, dtype=dtype)
            for i in index.tolist()
        ]
    )


@contextmanager
def global_rng_untouched() -> Iterator[None]:
    """Run third-party code (an import, a fit) that may draw from global RNG state, then restore it.

    Python's ``random``, numpy's global generator and torch's CPU generator are
    left as they were, whatever the code inside drew.

    Example
    -------
    >>> state = random.getstate()
    >>> with global_rng_untouched():
    ...     _ = random.random(), np.random.rand(), torch.rand(1)
    >>> random.getstate() == state
    True
    """
    python, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)


def noise_scale(inputs: torch.Tensor, noise: float) -> torch.Tensor:
    """Standard deviation of the noise for each sample: ``noise · (max(x_i) − min(x_i))``.

    SmoothGrad (Smilkov et al. 2017) sets σ as a fraction of the input's
    value range, 10-20 % being a good default. Returned with shape ``(N, 1, ..., 1)``.

    Example
    -------
    >>> noise_scale(torch.tensor([[0.0, 2.0], [1.0, 1.5]]), 0.1).flatten()
    tensor([0.2000, 0.0500])
    """
    if not 0 <= noise < float("inf"):
        raise ValueError(f"noise must be a non-negative fraction of each sample's value range; got {noise}")
    dims = tuple(range(1, inputs.ndim))
    value_range = inputs.amax(dim=dims, keepdim=True) - inputs.amin(dim=dims, keepdim=True)
    return noise * value_range
