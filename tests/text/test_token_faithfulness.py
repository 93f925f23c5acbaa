"""Token deletion and insertion on a tiny random BERT, point by point; methods without a reference on text."""

from __future__ import annotations

import os

import pytest
import torch

import saliencelab as sl
from saliencelab.evaluate.tokens import random_token_scores, token_deletion, token_insertion

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

TEXTS = ["cats chase mice", "a dog sleeps on the warm mat"]
OTHER = "a cat sleeps"


@pytest.fixture(scope="module")
def bert(tokenizer):
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.BertModel(config).eval().double()


def similarity(model, tokenizer, ids, mask):
    """Cosine similarity of the mean-pooled embedding of ``ids`` to OTHER's, written out here on purpose."""

    def pooled(encoded):
        hidden = model(**encoded).last_hidden_state
        weights = encoded["attention_mask"][..., None].to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)

    with torch.no_grad():
        other = pooled(tokenizer([OTHER], return_tensors="pt"))
        mine = pooled({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)})
    return torch.nn.functional.cosine_similarity(mine, other, dim=1)


def test_each_point_is_the_target_with_the_top_tokens_replaced_by_pad_in_order(bert, tokenizer):
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    # text 0 is [CLS] cats chase mice [SEP] (and padding): rank 'mice' > 'cats' > 'chase'
    scores = [torch.tensor([0.0, 2.0, 1.0, 3.0, 0.0]), torch.arange(float(mask[1].sum()))]
    assert len(scores[0]) == int(mask[0].sum())  # one score per real token, special tokens included
    target = sl.text.similarity(OTHER)
    deleted = token_deletion(bert, tokenizer, TEXTS, scores, target=target, steps=3)
    inserted = token_insertion(bert, tokenizer, TEXTS, scores, target=target, steps=3)
    pad = tokenizer.pad_token_id
    steps = [ids[0].clone()]
    for column in (3, 1, 2):  # mice, cats, chase
        steps.append(steps[-1].clone())
        steps[-1][column] = pad
    expected = similarity(bert, tokenizer, torch.stack(steps), mask[0].expand(4, -1))
    assert torch.allclose(deleted.curve[0], expected, rtol=0, atol=1e-12)
    # insertion walks back: from every word replaced to the text, the top-ranked word put back first
    back = [steps[3], steps[3].clone(), ids[0].clone(), ids[0]]
    back[1][3] = ids[0, 3]  # mice first, then cats: chase is still replaced
    back[2][2] = pad
    expected = similarity(bert, tokenizer, torch.stack(back), mask[0].expand(4, -1))
    assert torch.allclose(inserted.curve[0], expected, rtol=0, atol=1e-12)
    # text 1 has 7 words: step k of 3 replaces its top k·7 // 3 = 0, 2, 4, 7 words, the last ones first
    reference = ids[1].clone()
    reference[1:8] = pad
    last = similarity(bert, tokenizer, reference[None], mask[1][None])
    assert torch.allclose(deleted.curve[1, -1:], last, rtol=0, atol=1e-12)
    assert torch.allclose(deleted.auc, torch.trapezoid(deleted.curve, dx=1 / 3, dim=1))


def test_a_text_attribution_ranks_its_own_tokens_and_random_orders_are_seeded(bert, tokenizer):
    target = sl.text.similarity(OTHER)
    result = sl.text.explain(bert, tokenizer, TEXTS, method="feature_ablation", target=target)
    from_result = token_deletion(bert, tokenizer, TEXTS, result, target=target)
    from_lists = token_deletion(bert, tokenizer, TEXTS, result.token_scores, target=target)
    assert torch.equal(from_result.curve, from_lists.curve) and from_result.curve.shape == (2, 8)  # 7 words
    orders = random_token_scores(result.tokens, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(orders, random_token_scores(result.tokens, seed=3), strict=True))
    assert not torch.equal(orders[0], random_token_scores(result.tokens, seed=4)[0])


def test_bad_scores_are_refused_with_a_message(bert, tokenizer):
    with pytest.raises(ValueError, match="one score per token"):
        token_deletion(bert, tokenizer, TEXTS, [torch.zeros(3), torch.zeros(9)])
    with pytest.raises(ValueError, match="for 2 texts"):
        token_deletion(bert, tokenizer, TEXTS, [torch.zeros(5)])
    with pytest.raises(ValueError, match="steps must be"):
        token_insertion(bert, tokenizer, TEXTS[:1], [torch.zeros(5)], steps=0)


@pytest.mark.parametrize("method", ["gradient", "gradient_x_input"])
def test_methods_without_a_reference_explain_text_at_the_embeddings(bert, tokenizer, method):
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    result = sl.text.explain(bert, tokenizer, TEXTS, method=method, target=sl.text.similarity(OTHER))
    embeddings = bert.get_input_embeddings()(encoded["input_ids"]).detach().requires_grad_()
    with torch.no_grad():
        other = bert(**tokenizer([OTHER], return_tensors="pt")).last_hidden_state.mean(1)
    hidden = bert(inputs_embeds=embeddings, attention_mask=encoded["attention_mask"]).last_hidden_state
    weights = encoded["attention_mask"][..., None].double()
    pooled = (hidden * weights).sum(1) / weights.sum(1)
    torch.nn.functional.cosine_similarity(pooled, other, dim=1).sum().backward()
    per_token = (embeddings.grad * (embeddings if method == "gradient_x_input" else 1)).sum(-1).detach()
    special = ~encoded["attention_mask"].bool() | torch.isin(encoded["input_ids"], torch.tensor([101, 102]))
    expected = per_token.masked_fill(special, 0.0)
    for row, scores in enumerate(result.token_scores):
        assert torch.allclose(scores, expected[row][: len(scores)], rtol=1e-9, atol=1e-12)
