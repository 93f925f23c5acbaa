"""Test helpers: small random-weight models written in every spelling, and a model snapshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from saliencelab.evaluate.witnesses import InvarianceF, InvarianceG  # noqa: F401  (the IG paper's networks, for the method tests)

RELU_SPELLINGS = {
    "functional": F.relu,
    "torch": torch.relu,
    "method": lambda x: x.relu(),
    "threshold": lambda x: F.threshold(x, 0.0, 0.0),
    "clamp": lambda x: x.clamp(min=0),
    "clamp_min": lambda x: torch.clamp_min(x, 0.0),
    "maximum": lambda x: torch.maximum(x, torch.zeros((), dtype=x.dtype)),
    "where": lambda x: torch.where(x > 0, x, 0.0),
    "mask": lambda x: x * (x > 0),
}
"""ReLU written in other ways than a module."""


class ConvNet(nn.Module):
    """Conv-ReLU-Conv-ReLU-MaxPool-Linear-ReLU-Linear with the ReLU written as ``relu``.

    ``relu`` names the spelling: "module" (one nn.ReLU per use), "functional"
    (F.relu), "torch" (torch.relu), "method" (Tensor.relu), "reused" (one nn.ReLU
    module called three times), "inplace" (nn.ReLU(inplace=True)), "nn_threshold"
    (nn.Threshold(0, 0)), or a key of :data:`RELU_SPELLINGS` (threshold, clamp,
    clamp_min, maximum, where, mask).
    """

    def __init__(self, relu: str = "module", channels: int = 3, classes: int = 5, size: int = 8) -> None:
        super().__init__()
        self.relu_spelling = relu
        self.conv1 = nn.Conv2d(channels, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * (size // 2) ** 2, 16)
        self.fc2 = nn.Linear(16, classes)
        if relu == "module":
            self.act1, self.act2, self.act3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        elif relu in ("reused", "inplace"):
            shared = nn.ReLU(inplace=relu == "inplace")
            self.act1 = self.act2 = self.act3 = shared
        elif relu == "nn_threshold":
            self.act1, self.act2, self.act3 = nn.Threshold(0.0, 0.0), nn.Threshold(0.0, 0.0), nn.Threshold(0.0, 0.0)

    def _relu(self, index: int, x: torch.Tensor) -> torch.Tensor:
        if self.relu_spelling in ("module", "reused", "inplace", "nn_threshold"):
            return getattr(self, f"act{index}")(x)
        return RELU_SPELLINGS[self.relu_spelling](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._relu(1, self.conv1(x))
        x = F.max_pool2d(self._relu(2, self.conv2(x)), 2)
        x = self._relu(3, self.fc1(x.flatten(1)))
        return self.fc2(x)


def conv_net(relu: str = "module", seed: int = 0, **kwargs) -> ConvNet:
    """A ConvNet with weights drawn from ``seed`` (the same for every spelling)."""
    torch.manual_seed(seed)
    model = ConvNet("module", **kwargs)
    twin = ConvNet(relu, **kwargs)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


class TrainingModeNet(nn.Module):
    """Batch norm and dropout before a ConvNet: in training mode they update buffers and draw randomness."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.1)
        self.body = conv_net("reused")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.drop(self.norm(x)))


def snapshot(model: nn.Module) -> dict:
    """Everything about a model that a method must leave as it was."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": [m.training for m in model.modules()],
        "hooks": [
            {
                name: list(getattr(m, name).items())
                for name in dir(m)
                if name.endswith("hooks") and isinstance(getattr(m, name), dict)
            }
            for m in model.modules()
        ],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    for name, value in before["state"].items():
        assert torch.equal(value, after["state"][name]), f"{name} changed"
    assert before["training"] == after["training"]
    assert before["hooks"] == after["hooks"]
    assert before["requires_grad"] == after["requires_grad"]
    assert all(a is b for a, b in zip(before["grads"], after["grads"], strict=True))


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it"
)


def image_widths_in_chromium(page: Path) -> dict[str, int]:
    """Open ``page`` in headless Chromium and return each image's ``src`` with its loaded width (0: broken).

    A copy of the page beside it gets a script that lists ``naturalWidth`` once
    the page has loaded; Chromium prints the resulting DOM.
    """
    probe = page.parent / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const out = document.createElement('pre');"
        " out.id = 'probe'; out.textContent = Array.from(document.images).map("
        " i => i.getAttribute('src') + '=' + (i.complete ? i.naturalWidth : 0)).join(' ');"
        " document.body.appendChild(out); });</script></body>"
    )
    probe.write_text(page.read_text().replace("</body>", script))
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom"]
    try:
        dom = subprocess.run([*command, probe.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        probe.unlink()
    listed = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1).split()
    return {source: int(width) for source, width in (item.rsplit("=", 1) for item in listed)}
