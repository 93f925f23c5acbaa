"""Shared fixtures of the explorer's tests: Chromium through Playwright, its pages, and a real run store.

Screenshots go to a folder under pytest's tmp path (printed; run with ``-s``
to see the paths).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium (``apt-get install chromium``), driven by Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=shutil.which("chromium"))
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """The folder the screenshots of every view go to."""
    return tmp_path_factory.mktemp("explorer-screenshots")


class ExplorerPage:
    """A browser page on the explorer that records console errors, failed scripts and dialogs (an alert would be
    a script run from the run's strings)."""

    def __init__(self, browser: Any, base: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.base, self.problems = base, []
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("dialog", lambda d: (self.problems.append("dialog: " + d.message), d.dismiss()))

    def open(self, route: str) -> None:
        """Go to ``route`` (``#/...``) and wait until the page has drawn it."""
        self.page.goto(self.base + route)
        self.ready(route)

    def ready(self, route: str) -> None:
        """Wait until the page has drawn ``route`` and loaded every tile."""
        self.page.wait_for_selector(f'body[data-ready="{route}"]', state="attached")
        self.page.wait_for_load_state("networkidle")

    def shot(self, folder: Path, name: str) -> Path:
        """Save a full-page screenshot as ``folder/name.png`` and print its path.

        Tiles load lazily as they scroll into view; they are all loaded first, so the whole page is in the picture.
        """
        self.page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager' })")
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        path = folder / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        print("screenshot:", path)
        return path

    def indices(self) -> list[int]:
        """The sample indices of the grid's cards, in order."""
        found = self.page.locator("#grid .card").evaluate_all("cards => cards.map(c => c.dataset.index)")
        return [int(i) for i in found]

    def cards(self) -> list[str]:
        """The class names shown on the grid's cards."""
        return self.page.locator("#grid .card .label-name").all_text_contents()

    def sort_values(self) -> list[float]:
        """The sorted column's value on each card."""
        return [float(t.split("= ")[1]) for t in self.page.locator("#grid .sort-value").all_text_contents()]

    def controls_redraw(self, tile: Any) -> list[str]:
        """Change each map control in turn; the controls after which ``tile`` kept its address or its pixels.

        The clipping changes first, on the signed map: on an absolute map whose
        smallest values are 0 (a gradient x input map of an image with black
        pixels) both clippings span the same values and draw the same picture.
        """
        before_url, before_pixels = tile.get_attribute("src"), tile.screenshot()
        unchanged = []
        changes = [("#control-clip", "percentile"), ("#control-sign", "absolute"), ("#control-cmap", "viridis"),
                   ("#control-percentile", "80"), ("#control-opacity", "0.3")]  # fmt: skip
        for selector, value in changes:
            if selector in ("#control-percentile", "#control-opacity"):
                self.page.fill(selector, value)
                self.page.dispatch_event(selector, "change")
            else:
                self.page.select_option(selector, value)
            self.page.wait_for_load_state("networkidle")
            tile.evaluate("img => img.decode()")
            url, pixels = tile.get_attribute("src"), tile.screenshot()
            if url == before_url or pixels == before_pixels:
                unchanged.append(selector)
            before_url, before_pixels = url, pixels
        return unchanged


@pytest.fixture
def open_page(browser) -> Callable[[str], ExplorerPage]:
    """``open_page(base_url)``: a new :class:`ExplorerPage` on the explorer served (or exported) at ``base_url``."""
    return lambda base: ExplorerPage(browser, base)


@dataclass(frozen=True)
class DigitsRun:
    """A run store of watermarked digits (``run``) and the run's samples that carry the watermark."""

    run: Any
    watermarked: frozenset[int]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> DigitsRun:
    """A real run store: the watermark CNN's test 7s and 8 samples of every other digit, two methods, the
    deletion, insertion and sparseness checks, and SpRAy (which finds the watermarked 7s as a cluster)."""
    pytest.importorskip("zarr")
    pytest.importorskip("pyarrow")
    import saliencelab as sl
    from saliencelab.runs.spray import analyse_run
    from saliencelab.zoo.datasets import WATERMARK_CLASS

    _, _, images, labels = sl.zoo.dataset("watermarked_digits")
    _, marked = sl.zoo.watermarked("watermarked_digits")
    chosen = [torch.nonzero(labels == c)[:, 0] if c == WATERMARK_CLASS else torch.nonzero(labels == c)[:8, 0]
              for c in range(10)]  # fmt: skip
    keep = torch.cat(chosen).sort().values
    run = sl.run(
        sl.zoo.load("watermarked_digits_cnn"), (images[keep], labels[keep]),
        methods={"gradient_x_input": {}, "integrated_gradients": {"steps": 16}},
        checks={"deletion": {"steps": 16}, "insertion": {"steps": 16}, "sparseness": {}},
        store=tmp_path_factory.mktemp("digits") / "digits-run.zarr", batch_size=64,
        classes=[str(digit) for digit in range(10)],
    )  # fmt: skip
    analyse_run(run)
    return DigitsRun(sl.load_run(run.path), frozenset(torch.nonzero(marked[keep])[:, 0].tolist()))



NASTY_TOKEN = "<img src=x onerror=alert(1)>"
"""A token of the text run's vocabulary that would run a script if a page wrote it as HTML."""

TEXTS = ["the cat sat on the mat", f"a big dog ran to the {NASTY_TOKEN} park", "red", "the small cat ran"]
"""The text run's samples (padded on the left to the longest)."""


class Logits(torch.nn.Module):
    """A Hugging Face sequence classifier as a model that returns its logits (a run explains tensors)."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        return self.classifier(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


@dataclass(frozen=True)
class TextRun:
    """A text run store (``run``), its ``texts`` and the vocabulary's token that looks like HTML (``nasty_token``)."""

    run: Any
    texts: list[str]
    nasty_token: str


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> TextRun:
    """A real text run: a tiny random BERT classifier (built offline) on :data:`TEXTS`, gradient x input at its
    word embeddings, with the tokenizer's strings in the table."""
    pytest.importorskip("zarr")
    pytest.importorskip("pyarrow")
    transformers = pytest.importorskip("transformers")
    from helpers import tiny_word_tokenizer

    import saliencelab as sl

    tokenizer = tiny_word_tokenizer()
    tokenizer.add_tokens([NASTY_TOKEN])
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, num_labels=3)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Logits(transformers.BertForSequenceClassification(config).eval())
    tokenizer.padding_side = "left"  # the real tokens are not the first positions of the maps
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    data = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    run = sl.run(model, data, methods={"gradient_x_input": {"layer": "classifier.bert.embeddings.word_embeddings"}},
                 checks=["sparseness"], store=tmp_path_factory.mktemp("text") / "text-run.zarr",
                 tokenizer=tokenizer)  # fmt: skip
    return TextRun(run, TEXTS, NASTY_TOKEN)
