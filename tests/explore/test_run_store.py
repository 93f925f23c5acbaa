"""What the explorer reads from real run stores (``sl.run``): class names, text runs' tokens, unfinished runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import saliencelab as sl
from saliencelab.explore.pages import ExplorerData
from saliencelab.explore.view import RunView

pytest.importorskip("zarr")
pytest.importorskip("pyarrow")


def test_a_run_of_the_zoos_watermarked_digits_names_its_classes(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    run = sl.run(model, "watermarked_digits", methods=["gradient"], checks=[], store=tmp_path / "r.zarr",
                 batch_size=256)  # fmt: skip
    assert run.classes == [str(digit) for digit in range(10)]


def test_a_text_run_stores_each_samples_real_tokens(text_run):
    nasty, run = text_run.nasty_token, text_run.run
    words = [text.replace(nasty, " ").split() for text in text_run.texts]
    stored = [list(tokens) for tokens in run.table["tokens"]]
    assert [[t for t in tokens if t != nasty] for tokens in stored] == words
    assert nasty in stored[1]
    mask = np.asarray(run.inputs["attention_mask"][:])
    assert [len(tokens) for tokens in stored] == mask.sum(axis=1).tolist() and (mask == 0).any()
    assert run.provenance["tokenizer"]["class"].startswith("transformers.")
    assert len(run.provenance["tokenizer"]["vocabulary_hash"]) == 64


def test_the_explorer_gives_each_real_token_its_value_and_hides_the_mask(text_run):
    text_run = text_run.run
    data = ExplorerData(text_run)
    assert data.view.kinds == {"input_ids": "text"}  # the attention mask has no map
    index = int(np.argmin(np.asarray(text_run.inputs["attention_mask"][:]).sum(axis=1)))  # the most padded text
    found = data.tokens(index, {"method": "gradient_x_input"})
    values = np.asarray(text_run.maps["gradient_x_input"]["input_ids"][index])
    real = np.asarray(text_run.inputs["attention_mask"][index]) != 0
    assert found["tokens"] == list(text_run.table.at[index, "tokens"])
    assert found["values"] == pytest.approx(values[real].tolist())
    assert data.run_info()["inputs"] == [{"name": "input_ids", "kind": "text", "shape": [real.size]}]


def test_an_unfinished_run_is_refused_with_how_to_finish_it(digits_run):
    class Unfinished:
        def __getattr__(self, name):
            return getattr(digits_run.run, name)

        table = digits_run.run.table.iloc[:64]

    with pytest.raises(ValueError, match=r"not finished: its table has 64 of its 117 samples\. Finish it by calling"):
        RunView(Unfinished())


def test_a_tokenizer_needs_token_ids(tmp_path):
    class Letters:
        def convert_ids_to_tokens(self, ids):
            return [str(i) for i in ids]

    with pytest.raises(ValueError, match="no input holds token ids"):
        sl.run(torch.nn.Linear(3, 2), torch.ones(4, 3), methods=["gradient"], store=tmp_path / "r.zarr",
               tokenizer=Letters())  # fmt: skip
    with pytest.raises(TypeError, match="tokenizer must be a Hugging Face tokenizer"):
        sl.run(torch.nn.Linear(3, 2), torch.ones(4, 3), methods=["gradient"], store=tmp_path / "r.zarr",
               tokenizer="bert-base-uncased")  # fmt: skip
    assert not (tmp_path / "r.zarr").exists()
