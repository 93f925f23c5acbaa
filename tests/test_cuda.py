"""Every method on a CUDA device: the same map as on the CPU, on the inputs' device, the model left as it was.

Marked ``cuda`` and skipped where torch sees no CUDA device (run them with ``python -m pytest -m cuda`` on a
machine with one). The CPU is the reference: float32 on both sides, so the maps agree to float32 rounding of
different kernels (relative 1e-4 of the map's largest value), not bit for bit.
"""

from __future__ import annotations

import pytest
import torch
from helpers import assert_unchanged, conv_net, explain_quickly, snapshot, tiny_word_tokenizer

import saliencelab as sl

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())"),
]

CUDA = torch.device("cuda")
INPUTS = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))


def _close_to_cpu(on_cuda: torch.Tensor, on_cpu: torch.Tensor) -> None:
    scale = on_cpu.abs().max().clamp_min(1e-12)
    torch.testing.assert_close(on_cuda.cpu() / scale, on_cpu / scale, rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", sl.available_methods())
def test_every_method_on_cuda_equals_the_cpu_and_leaves_the_model_as_it_was(method):
    on_cpu = explain_quickly(conv_net("module", seed=41), INPUTS, method)
    model = conv_net("module", seed=41).to(CUDA)
    before = snapshot(model)
    result = explain_quickly(model, INPUTS.to(CUDA), method)
    assert result.values.device.type == "cuda"
    _close_to_cpu(result.values, on_cpu.values)
    assert_unchanged(model, before)
    assert all(p.device.type == "cuda" for p in model.parameters())


def test_inputs_on_another_device_than_the_model_are_refused_with_the_fix():
    model = conv_net("module", seed=41).to(CUDA)
    with pytest.raises(ValueError, match=r"inputs are on cpu, the model's parameters on cuda:0: move them"):
        sl.explain(model, INPUTS, method="gradient", target=1)


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "lrp"])
def test_text_explain_on_cuda_equals_the_cpu(method):
    transformers = pytest.importorskip("transformers")
    tokenizer = tiny_word_tokenizer()
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=3,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        classifier = transformers.BertForSequenceClassification(config).eval()
    texts = ["the cat sat on the mat", "a big dog ran"]
    on_cpu = sl.text.explain(classifier, tokenizer, texts, method=method, target=[2, 0])
    on_cuda = sl.text.explain(classifier.to(CUDA), tokenizer, texts, method=method, target=[2, 0])
    for cuda_scores, cpu_scores in zip(on_cuda.token_scores, on_cpu.token_scores, strict=True):
        _close_to_cpu(torch.as_tensor(cuda_scores), torch.as_tensor(cpu_scores))
