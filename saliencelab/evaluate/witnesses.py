"""Small networks whose attributions are known, one per axiom (the witnesses of :mod:`.axioms`).

Each witness is a float64 ``nn.Module`` built from ``nn.Linear``, ``nn.Conv2d``
and ReLUs (functional ReLUs only where the paper writes the network that way), so
that every method with a rule for these operations can run on it. Random
weights come from ``seed`` through :func:`saliencelab.core.sampling.generator`,
never from the global RNG.

Example
-------
>>> import torch
>>> unit = saturating_unit()
>>> unit(torch.tensor([[0.0], [2.0]], dtype=torch.float64)).flatten().tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from saliencelab.core.sampling import generator

DTYPE = torch.float64
"""Witnesses run in float64 so that exact properties can be checked to round-off (~1e-15)."""

KINK = 10.0
"""Where the continuity witness ``max(0, x1 + x2 − 10)`` bends (Shrikumar et al. 2017's f(x) = max(0, x − 10))."""


def _linear(weight: list[list[float]] | torch.Tensor, bias: list[float] | torch.Tensor) -> nn.Linear:
    """An ``nn.Linear`` holding exactly ``weight`` (out, in) and ``bias`` (out,)."""
    weight = torch.as_tensor(weight, dtype=DTYPE)
    layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=DTYPE)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(torch.as_tensor(bias, dtype=DTYPE))
    return layer


def _normal(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=generator(seed, torch.device("cpu")), dtype=DTYPE)


def random_mlp(sizes: tuple[int, ...], seed: int = 0) -> nn.Sequential:
    """Linear-ReLU-...-Linear with N(0, 1/fan_in) weights and N(0, 0.5²) biases drawn from ``seed``.

    Example
    -------
    >>> random_mlp((4, 8, 3), seed=1)(torch.zeros(2, 4, dtype=torch.float64)).shape
    torch.Size([2, 3])
    """
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        weight = _normal(seed * 1000 + 2 * index, fan_out, fan_in) / fan_in**0.5
        layers += [_linear(weight, 0.5 * _normal(seed * 1000 + 2 * index + 1, fan_out)), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def saturating_unit() -> nn.Sequential:
    """f(x) = 1 − ReLU(1 − x), the sensitivity example of Sundararajan et al. 2017.

    f(0) = 0 and f(2) = 1, yet the gradient is 0 for every x > 1: the network
    saturates. Written as Linear(w=−1, b=1) → ReLU → Linear(w=−1, b=1).

    Example
    -------
    >>> saturating_unit()(torch.tensor([[0.5], [2.0], [3.0]], dtype=torch.float64)).flatten().tolist()
    [0.5, 1.0, 1.0]
    """
    return nn.Sequential(_linear([[-1.0]], [1.0]), nn.ReLU(), _linear([[-1.0]], [1.0])).eval()


def dummy_feature_net(seed: int = 0, dummy: int = 2) -> nn.Sequential:
    """A 3-feature ReLU net that reads feature ``dummy`` and still does not depend on it.

    The first layer has a random non-zero column for the dummy feature, but that
    column lies in the null space of the second layer (Linear-Linear before the
    first ReLU), so ``f`` does not depend mathematically on it. A method can only
    give it zero attribution by following the network, not by reading weights.

    Example
    -------
    >>> net = dummy_feature_net()
    >>> x = torch.randn(4, 3, dtype=torch.float64)
    >>> moved = x.clone(); moved[:, 2] += 5.0
    >>> torch.allclose(net(x), net(moved), atol=1e-12)
    True
    """
    first = _normal(seed * 1000 + 1, 6, 3)
    second = _normal(seed * 1000 + 2, 5, 6)
    null = torch.linalg.svd(second).Vh[-1]  # second @ null == 0 (6 columns, rank 5)
    first[:, dummy] = 2.0 * null
    return nn.Sequential(
        _linear(first, _normal(seed * 1000 + 3, 6)),
        _linear(second, _normal(seed * 1000 + 4, 5)),
        nn.ReLU(),
        _linear(_normal(seed * 1000 + 5, 1, 5), [0.3]),
    ).eval()


def kink_net() -> nn.Sequential:
    """f(x1, x2) = max(0, x1 + x2 − 10): Shrikumar et al. 2017's max(0, x − 10) with a second input.

    On x2 = 0 it is the paper's example, whose gradient jumps from 0 to 1 (and
    gradient × input from 0 to 10) at x1 = 10. The second feature gives the input
    a value range, so noise-based methods have noise to add.

    Example
    -------
    >>> kink_net()(torch.tensor([[9.0, 0.0], [12.0, 0.0]], dtype=torch.float64)).flatten().tolist()
    [0.0, 2.0]
    """
    return nn.Sequential(_linear([[1.0, 1.0]], [-KINK]), nn.ReLU()).eval()


class InvarianceF(nn.Module):
    """f(x1, x2) = ReLU(ReLU(x1) − 1 − ReLU(x2)), the IG paper's first network (Sundararajan et al. 2017).

    Example
    -------
    >>> InvarianceF()(torch.tensor([[3.0, 1.0]], dtype=torch.float64)).item()
    1.0
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.relu(x[:, :1]) - 1 - F.relu(x[:, 1:2]))


class InvarianceG(nn.Module):
    """g(x1, x2) = ReLU(ReLU(x1 − 1) − ReLU(x2)): the same function as :class:`InvarianceF`.

    Example
    -------
    >>> InvarianceG()(torch.tensor([[3.0, 1.0]], dtype=torch.float64)).item()
    1.0
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.relu(x[:, :1] - 1) - F.relu(x[:, 1:2]))


def symmetric_net(seed: int = 0) -> nn.Sequential:
    """A 3-feature ReLU MLP with f(x1, x2, x3) = f(x2, x1, x3) whose units are not symmetric.

    The first layer's units come in pairs, the second of each pair reading x1 and
    x2 with the first one's weights swapped; the second layer gives both units of a
    pair the same weight. No single unit is symmetric, the network is.

    Example
    -------
    >>> net = symmetric_net()
    >>> x = torch.randn(4, 3, dtype=torch.float64)
    >>> torch.allclose(net(x), net(x[:, [1, 0, 2]]), atol=1e-12)
    True
    """
    half = _normal(seed * 1000 + 1, 4, 3)
    first = torch.cat([half, half[:, [1, 0, 2]]])
    bias = _normal(seed * 1000 + 2, 4)
    second = _normal(seed * 1000 + 3, 5, 4) / 2
    return nn.Sequential(
        _linear(first, torch.cat([bias, bias])),
        nn.ReLU(),
        _linear(torch.cat([second, second], dim=1), _normal(seed * 1000 + 4, 5)),
        nn.ReLU(),
        _linear(_normal(seed * 1000 + 5, 1, 5), [0.1]),
    ).eval()


class LinearCombination(nn.Module):
    """a · f1(x) + b · f2(x), the combination is a bias-free ``nn.Linear`` over the two outputs.

    Both networks map (N, ...) to (N, classes); class c of the combination is
    a · f1(x)_c + b · f2(x)_c.

    Example
    -------
    >>> f1, f2 = random_mlp((4, 8, 3), seed=1), random_mlp((4, 8, 3), seed=2)
    >>> x = torch.randn(2, 4, dtype=torch.float64)
    >>> torch.allclose(LinearCombination(f1, f2, 0.7, 1.8)(x), 0.7 * f1(x) + 1.8 * f2(x))
    True
    """

    def __init__(self, f1: nn.Module, f2: nn.Module, a: float, b: float) -> None:
        super().__init__()
        self.f1, self.f2 = f1, f2
        self.combine = nn.Linear(2, 1, bias=False, dtype=DTYPE)
        with torch.no_grad():
            self.combine.weight.copy_(torch.tensor([[a, b]], dtype=DTYPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(torch.stack([self.f1(x), self.f2(x)], dim=-1)).squeeze(-1)


def random_convnet(seed: int = 0, channels: int = 2, classes: int = 3, size: int = 6) -> nn.Sequential:
    """Conv(3×3)-ReLU-Conv(3×3)-ReLU-Flatten-Linear without padding, weights drawn from ``seed``.

    Example
    -------
    >>> random_convnet()(torch.zeros(2, 2, 6, 6, dtype=torch.float64)).shape
    torch.Size([2, 3])
    """
    conv1 = nn.Conv2d(channels, 4, 3, dtype=DTYPE)
    conv2 = nn.Conv2d(4, 4, 3, dtype=DTYPE)
    head = nn.Linear(4 * (size - 4) ** 2, classes, dtype=DTYPE)
    for index, layer in enumerate((conv1, conv2, head)):
        fan_in = layer.weight[0].numel()
        with torch.no_grad():
            layer.weight.copy_(_normal(seed * 1000 + 2 * index, *layer.weight.shape) / fan_in**0.5)
            layer.bias.copy_(0.5 * _normal(seed * 1000 + 2 * index + 1, *layer.bias.shape))
    return nn.Sequential(conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), head).eval()
