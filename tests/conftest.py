"""Shared fixtures for the test suite (the models live in helpers.py)."""

from __future__ import annotations

import pytest
import torch
from helpers import ConvNet, conv_net

torch.set_num_threads(1)


@pytest.fixture
def convnet() -> ConvNet:
    return conv_net()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
