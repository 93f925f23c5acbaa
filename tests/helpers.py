"""Test helpers: small random-weight models written in every spelling, and a model snapshot."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
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


CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu"]
"""Debian's Chromium, headless (it runs as root in CI, hence no sandbox)."""
PROBE = """<script>window.addEventListener('load', () => {
  const shown = e => e && e.getClientRects().length > 0;
  const size = e => parseFloat(getComputedStyle(e).fontSize);
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim(), parent = walker.currentNode.parentElement;
    if (text && shown(parent) && size(parent) < 11)
      small.push(parent.tagName + ' ' + size(parent) + 'px: ' + text.slice(0, 40));
  }
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete ? i.naturalWidth : 0, i.width]),
    scrollWidth: document.scrollingElement.scrollWidth,
    clientWidth: document.scrollingElement.clientWidth,
    innerWidth: window.innerWidth,
    smallText: small,
    labelSizes: Array.from(document.querySelectorAll('.badge, .label')).filter(shown).map(size),
  });
  document.body.appendChild(out);
});</script></body>"""
"""Measures the loaded page and writes the numbers into it, for ``--dump-dom`` to print."""


@dataclass(frozen=True)
class PageInChromium:
    """What headless Chromium measured on a page once it had loaded.

    ``images`` gives each ``<img>``'s ``src``, its loaded width (0: broken) and
    its width on the page (0: not shown);
    ``scroll_width`` is the page's width, ``client_width`` the window's width
    less its vertical scroll bar, ``inner_width`` the window's width;
    ``small_text`` lists the shown text smaller than 11 px; ``label_sizes`` are
    the font sizes (px) of the shown check badges and labels.
    """

    images: list[tuple[str, int, int]]
    scroll_width: int
    client_width: int
    inner_width: int
    small_text: list[str]
    label_sizes: list[float]


def open_in_chromium(page: Path, *, width: int = 1280, height: int = 800) -> PageInChromium:
    """Open ``page`` in headless Chromium with a ``width`` x ``height`` window and measure it.

    A copy of the page beside it gets a script (:data:`PROBE`) that writes the
    measurements into the page once it has loaded; Chromium prints the resulting DOM.
    """
    probe = page.parent / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    command = [*CHROMIUM, f"--window-size={width},{height}", "--virtual-time-budget=10000", "--dump-dom"]
    try:
        dom = subprocess.run([*command, probe.as_uri()], capture_output=True, text=True, timeout=180, check=True).stdout
    finally:
        probe.unlink()
    found = json.loads(html.unescape(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1)))
    return PageInChromium(
        [(source, int(loaded), int(shown)) for source, loaded, shown in found["images"]],
        found["scrollWidth"],
        found["clientWidth"],
        found["innerWidth"],
        found["smallText"],
        found["labelSizes"],
    )


def screenshot_in_chromium(page: Path, path: Path, *, width: int = 1280, height: int = 800) -> Path:
    """Save a ``width`` x ``height`` screenshot of ``page`` (its top) as a PNG at ``path``, for a reviewer."""
    command = [*CHROMIUM, f"--window-size={width},{height}", f"--screenshot={path}", page.as_uri()]
    subprocess.run(command, capture_output=True, text=True, timeout=180, check=True, cwd=path.parent)
    return path


def tiny_word_tokenizer():
    """A word-level fast tokenizer built in memory (no download): 40 ids, the first three special."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "<pad> <unk> <eos> the cat sat on mat a dog ran to park big small red".split()
    vocab = {word: i for i, word in enumerate(words + [f"w{i}" for i in range(40 - len(words))])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>", padding_side="right"
    )


QUICK_REFERENCES = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(11))
"""References for the methods that draw them, for 3×8×8 inputs (the ConvNet's)."""
QUICK_FIT_DATA = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(12))
"""Fit data for the methods that learn from data (PatternNet), for 3×8×8 inputs."""


def call_options(method: str, device: torch.device | str = "cpu") -> tuple[dict, torch.Tensor | None]:
    """The method's quick options, fit data where it takes some, and references where it draws them, on ``device``."""
    from saliencelab.core import registry

    cls = registry.get(method)
    options = dict(cls.quick_options)
    if "fit_data" in registry.option_names(cls):
        options["fit_data"] = QUICK_FIT_DATA.to(device)
    return options, QUICK_REFERENCES.to(device) if cls.draws_references else None


def explain_quickly(model: nn.Module, inputs: torch.Tensor, method: str, target=1, **extra):
    """``method``'s map of ``target`` with its quick options; a method that takes a layer gets the ConvNet's conv2.

    Every registered method runs this way on the ConvNet's 3×8×8 inputs, on the inputs' device.
    """
    import saliencelab as sl
    from saliencelab.core import registry

    options, baseline = call_options(method, inputs.device)
    if any("layer" in registry.option_names(cls) for cls in registry.get(method).__mro__[:-2]):
        options["layer"] = next(name for name, _ in model.named_modules() if name.endswith("conv2"))
    return sl.explain(model, inputs, method=method, target=target, baseline=baseline, **{**options, **extra})
