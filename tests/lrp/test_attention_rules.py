"""The AttnLRP rules (Achtibat et al. 2024) against their closed forms, conservation, the default composite.

Each rule is run through the relevance mode on a minimal module in float64 with
the stabilizers at 1e-12, and compared with the relevance built by hand from
the rule's formula with exact division. Tolerance: 1e-7 absolute on relevances
of up to about 50. The rules divide by ``z + 1e-12·sign z``, which moves a
relevance by about ``1e-12·|R|/z²`` (measured: at most 2e-8 on these seeded
inputs, whose smallest |z| are near 1e-3); a wrong rule (a missing half, a
missing ``s_i Σ_j R_j`` term) is off by more than 1e-2.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot
from torch import nn

import saliencelab as sl
from saliencelab.lrp.composites import transformer
from saliencelab.lrp.engine import RelevanceMode

D = torch.float64
TOL = 1e-7


def relevance(fn, inputs, out_relevance, *, bias="ignore"):
    """The model output and the relevance of each input, for ``out_relevance`` put in at the output."""
    mode = RelevanceMode(transformer(epsilon=1e-12), bias=bias, method="lrp", stabilizer=1e-12)
    leaves = [mode.mark(x.clone().requires_grad_(True)) for x in inputs]
    with mode:
        out = fn(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves, out_relevance)


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def softmax_rule(x, out_relevance):
    """AttnLRP's softmax rule by its formula, zero where the softmax is 0 (masked)."""
    s = x.softmax(-1)
    expected = x * (out_relevance - s * out_relevance.sum(-1, keepdim=True))
    return torch.where(s == 0, torch.zeros_like(expected), expected)


def uniform_matmul(a, b, out_relevance):
    """Uniform rule for ``a @ b``: term ``a_ik b_kj`` gets ``a_ik b_kj / z_ij · R_ij``, half to each factor."""
    terms = torch.einsum("...ik,...kj->...ikj", a, b) * (out_relevance / (2 * (a @ b))).unsqueeze(-2)
    return terms.sum(-1), terms.sum(-3)


# ------------------------------------------------------------------------------------------- single rules


def test_softmax_rule_is_the_taylor_decomposition_at_the_input():
    x, r = randn(3, 5), randn(3, 5, seed=1)
    out, (got,) = relevance(lambda t: torch.softmax(t, -1), [x], r)
    assert torch.allclose(out, x.softmax(-1))
    assert torch.allclose(got, softmax_rule(x, r), atol=TOL, rtol=0)
    assert not torch.allclose(got.sum(-1), r.sum(-1), atol=1e-3)  # not conservative, as the paper says


def test_softmax_rule_gives_masked_entries_nothing():
    x = randn(2, 4).masked_fill(torch.tensor([[False, True, False, False]] * 2), float("-inf"))
    _, (got,) = relevance(lambda t: F.softmax(t, dim=1), [x], randn(2, 4, seed=1))
    assert torch.isfinite(got).all() and (got[:, 1] == 0).all()


@pytest.mark.parametrize("product", [torch.matmul, torch.bmm, lambda a, b: torch.einsum("nik,nkj->nij", a, b)])
def test_a_product_of_two_activations_splits_each_term_in_halves(product):
    a, b, r = randn(2, 3, 4), randn(2, 4, 5, seed=1), randn(2, 3, 5, seed=2)
    out, (got_a, got_b) = relevance(product, [a, b], r)
    want_a, want_b = uniform_matmul(a, b, r)
    assert torch.allclose(out, a @ b)
    assert torch.allclose(got_a, want_a, atol=TOL, rtol=0) and torch.allclose(got_b, want_b, atol=TOL, rtol=0)
    assert torch.allclose(got_a.sum(), r.sum() / 2) and torch.allclose(got_b.sum(), r.sum() / 2)


def test_an_elementwise_gate_gives_each_factor_half():
    a, b, r = randn(2, 6), randn(2, 6, seed=1), randn(2, 6, seed=2)
    _, (got_a, got_b) = relevance(lambda x, g: F.silu(g) * x, [a, b], r)  # SiLU passes its relevance on
    assert torch.allclose(got_a, r / 2, atol=TOL, rtol=0) and torch.allclose(got_b, r / 2, atol=TOL, rtol=0)


WRITTEN_OUT = {
    "GPT-2's tanh GELU": lambda t: 0.5 * t * (1.0 + torch.tanh(0.79788 * (t + 0.044715 * torch.pow(t, 3.0)))),
    "x * sigmoid(x)": lambda t: t * torch.sigmoid(t),
    "x / (1 + exp(-x))": lambda t: t / (1 + torch.exp(-t)),
}


@pytest.mark.parametrize("name", WRITTEN_OUT)
@pytest.mark.parametrize("bias", ["ignore", "absorb"])
def test_a_nonlinearity_written_out_passes_its_relevance_on(name, bias):
    x, r = randn(3, 4), randn(3, 4, seed=1)
    _, (got,) = relevance(WRITTEN_OUT[name], [x], r, bias=bias)
    assert torch.equal(got, r)


@pytest.mark.parametrize("bias", ["ignore", "absorb"])
def test_layer_norm_is_a_linear_map_with_its_std_held_constant(bias):
    x, r = randn(3, 6), randn(3, 6, seed=1)
    w, b = randn(6, seed=2), randn(6, seed=3)
    out, (got,) = relevance(lambda t: F.layer_norm(t, (6,), w, b), [x], r, bias=bias)
    sigma = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    z = out - b if bias == "ignore" else out  # the denominator: with or without the bias
    share = w * r / z  # R_j / z_j times the weight; x_i (δ_ij − 1/N) / σ are the contributions
    expected = x / sigma * (share - share.mean(-1, keepdim=True))
    assert torch.allclose(got, expected, atol=TOL, rtol=0)
    if bias == "ignore":
        assert torch.allclose(got.sum(-1), r.sum(-1), atol=TOL, rtol=0)


RMS_NORMS = {
    "written out": lambda t: t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * torch.linspace(1, 2, 6),
    "divided by the norm": lambda t: t / t.norm(dim=-1, keepdim=True),
    "divided by the std": lambda t: (t - t.mean(-1, keepdim=True)) / t.std(-1, keepdim=True),
}
if hasattr(F, "rms_norm"):
    RMS_NORMS["F.rms_norm"] = lambda t: F.rms_norm(t, (6,), torch.linspace(1, 2, 6, dtype=D))


@pytest.mark.parametrize("name", RMS_NORMS)
def test_rms_norm_holds_its_normalising_factor_constant(name):
    x, r = randn(3, 6), randn(3, 6, seed=1)
    _, (got,) = relevance(lambda t: RMS_NORMS[name](t.to(D)), [x], r)
    if name == "divided by the std":  # the centring x − mean(x) shares by the ε rule on x_i (δ_ij − 1/N)
        z = x - x.mean(-1, keepdim=True)
        expected = x * (r / z - (r / z).mean(-1, keepdim=True))
    else:
        expected = r
    assert torch.allclose(got, expected, atol=TOL, rtol=0)


NORMALISED = {
    "F.normalize": (
        lambda t, v: (F.normalize(t, dim=-1) * v).sum(-1),
        lambda t, v: (t / t.norm(dim=-1, keepdim=True) * v).sum(-1),
    ),
    "F.cosine_similarity": (
        lambda t, v: F.cosine_similarity(t, v.expand_as(t), dim=-1),
        lambda t, v: (t / t.norm(dim=-1, keepdim=True) * v / v.norm()).sum(-1),
    ),
}


@pytest.mark.parametrize("name", NORMALISED)
def test_normalize_and_cosine_similarity_hold_the_norm_constant(name):
    """Sentence-embedding heads: with the norm a normaliser, the terms ``z_i = t_i v_i / ‖t‖`` (/ ‖v‖) share R."""
    fused, written_out = NORMALISED[name]
    x, r, v = randn(3, 6), randn(3, seed=1), randn(6, seed=2)
    out, (got,) = relevance(lambda t: fused(t, v), [x], r)
    _, (expected,) = relevance(lambda t: written_out(t, v), [x], r)
    assert torch.allclose(out, fused(x, v), atol=1e-12, rtol=0)
    assert torch.allclose(got, expected, atol=TOL, rtol=0)
    z = x * v / x.norm(dim=-1, keepdim=True) / (v.norm() if "cosine" in name else 1)
    assert torch.allclose(got, z / z.sum(-1, keepdim=True) * r[:, None], atol=TOL, rtol=0)


@pytest.mark.parametrize("spelling", ["expand_as", "type_as"])
def test_a_constant_shaped_like_an_activation_stays_a_constant(spelling):
    """``v.expand_as(h)`` reads only h's shape: the product with h is linear, its relevance all h's (not half)."""
    x, r, v = randn(3, 6), randn(3, 6, seed=1), randn(6, seed=2)
    _, (got,) = relevance(lambda t: t * getattr(v, spelling)(t), [x], r)
    assert torch.allclose(got, r, atol=TOL, rtol=0)


def test_a_statistic_used_other_than_as_a_normaliser_raises():
    with pytest.raises(sl.UnsupportedOperationError, match="'var'.*normaliser"):
        relevance(lambda t: t.var(-1), [randn(2, 3)], torch.ones(2, dtype=D))


def attention_by_hand(q, k, v, r, *, mask=None):
    """SDPA's relevance built from the three rules: uniform for q·kᵀ and A·v, the softmax rule between."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    r_weights, r_v = uniform_matmul(weights, v, r)
    r_scores = softmax_rule(scores, r_weights)  # the scaling and the mask pass relevance on
    r_q, r_kt = uniform_matmul(q, k.transpose(-2, -1), r_scores)
    return r_q, r_kt.transpose(-2, -1), r_v


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_is_the_composition_of_the_rules(causal):
    q, k, v = randn(2, 2, 4, 3), randn(2, 2, 4, 3, seed=1), randn(2, 2, 4, 3, seed=2)
    r = randn(2, 2, 4, 3, seed=3)
    out, got = relevance(lambda *t: F.scaled_dot_product_attention(*t, is_causal=causal), [q, k, v], r)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal))
    mask = torch.ones(4, 4, dtype=torch.bool).tril() if causal else None
    for got_one, want in zip(got, attention_by_hand(q, k, v, r, mask=mask), strict=True):
        assert torch.allclose(got_one, want, atol=TOL, rtol=0)


def test_fused_attention_with_a_boolean_mask():
    q, k, v = randn(1, 2, 4, 3), randn(1, 2, 4, 3, seed=1), randn(1, 2, 4, 3, seed=2)
    mask = torch.tensor([True, True, False, True]).expand(4, 4)
    r = randn(1, 2, 4, 3, seed=3)
    _, got = relevance(lambda *t: F.scaled_dot_product_attention(*t, attn_mask=mask), [q, k, v], r)
    for got_one, want in zip(got, attention_by_hand(q, k, v, r, mask=mask), strict=True):
        assert torch.allclose(got_one, want, atol=TOL, rtol=0)
    assert (got[1][..., 2, :] == 0).all() and (got[2][..., 2, :] == 0).all()  # the masked key


# ------------------------------------------------------------------------------------------- whole models


class Stack(nn.Module):
    """Embedding → layer norm → MLP with GELU → residual → RMS norm written out → linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.norm = nn.LayerNorm(8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        h = self.norm(self.embed(ids))
        h = h + self.mlp(h)
        h = self.scale * h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return self.head(h.mean(1))


def test_the_transformer_composite_conserves_relevance_without_attention():
    torch.manual_seed(0)
    model = Stack().double().eval()
    ids = torch.randint(0, 20, (3, 5))
    a = sl.explain(
        model,
        ids,
        "lrp",
        target=1,
        layer=model.embed,
        composite="transformer",
        epsilon=1e-12,
        bias="ignore",
        stabilizer=1e-12,
    )
    with torch.no_grad():
        logit = model(ids)[:, 1]
    assert torch.allclose(a.values.sum((1, 2)), logit, atol=1e-6, rtol=0)


class TinyAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, h):
        q, k, v = self.qkv(h).unflatten(-1, (3, 2, 4)).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(2)


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.attention, self.head = nn.LayerNorm(8), TinyAttention(), nn.Linear(8, 2)

    def forward(self, x):
        h = x + self.attention(self.norm(x))
        return self.head(h[:, -1])


def test_the_transformer_composite_is_the_default_for_attention_models():
    torch.manual_seed(0)
    model = TinyTransformer().double().eval()
    assert sl.LRP(model).composite == transformer()
    assert sl.LRP(model, epsilon=0.1).composite == transformer(epsilon=0.1)
    assert not sl.LRP(Stack()).composite.attention
    x = torch.randn(2, 4, 8, dtype=D)
    before = snapshot(model)
    a = sl.explain(model, x, "lrp", target=0)
    assert_unchanged(model, before)
    with torch.no_grad():
        logit = model(x)[:, 0]
    print(f"tiny transformer: relevance sums {a.values.sum((1, 2)).tolist()}, logits {logit.tolist()}")
    assert torch.isfinite(a.values).all() and a.values.abs().sum() > 0
    assert torch.allclose(a.delta, (a.values.sum((1, 2)) - logit).abs())


def test_other_composites_still_refuse_attention():
    model = TinyTransformer().double().eval()
    with pytest.raises(sl.UnsupportedOperationError, match="'layer_norm'"):
        sl.explain(model, torch.randn(2, 4, 8, dtype=D), "lrp", target=0, rule="epsilon")


@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_runs_as_its_steps(need_weights):
    """nn.MultiheadAttention written out: the relevance of a fused call equals that of the same steps by hand."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(6, 2, batch_first=True).double().eval()
    x, r = randn(2, 3, 6), randn(2, 3, 6, seed=1)
    causal = torch.ones(3, 3, dtype=torch.bool).triu(1)
    padding = torch.tensor([[False, False, False], [False, False, True]])

    def module(t):
        return mha(t, t, t, attn_mask=causal, key_padding_mask=padding, need_weights=need_weights)[0]

    def by_hand(t):
        q, k, v = (
            F.linear(t, w, b) for w, b in zip(mha.in_proj_weight.chunk(3), mha.in_proj_bias.chunk(3), strict=True)
        )
        q, k, v = (u.unflatten(-1, (2, 3)).transpose(1, 2) for u in (q, k, v))
        allowed = ~causal & ~padding[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return F.linear(out.transpose(1, 2).flatten(2), mha.out_proj.weight, mha.out_proj.bias)

    out, (got,) = relevance(module, [x], r, bias="absorb")
    want_out, (want,) = relevance(by_hand, [x], r, bias="absorb")
    with torch.no_grad():
        assert torch.allclose(out, module(x)) and torch.allclose(want_out, module(x))
    assert torch.allclose(got, want, atol=TOL, rtol=0)


def test_multihead_attention_options_it_cannot_write_out_raise():
    mha = nn.MultiheadAttention(6, 2, add_bias_kv=True, batch_first=True).double().eval()
    with pytest.raises(sl.UnsupportedOperationError, match="'multi_head_attention_forward'.*bias_k"):
        relevance(lambda t: mha(t, t, t)[0], [randn(2, 3, 6)], randn(2, 3, 6, seed=1))


# ------------------------------------------------------------------------------------------- transformers


class Logits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids, attention_mask):
        return self.model(ids, attention_mask=attention_mask, use_cache=False).logits


def tiny(family: str, implementation: str) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    shared = {"vocab_size": 50, "num_labels": 3, "pad_token_id": 0, "attn_implementation": implementation}
    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    configs = {
        "bert": lambda: transformers.BertForSequenceClassification(
            transformers.BertConfig(**shared, **sizes, max_position_embeddings=16)
        ),
        "gpt2": lambda: transformers.GPT2ForSequenceClassification(
            transformers.GPT2Config(**shared, n_embd=32, n_layer=2, n_head=2, n_positions=16)
        ),
        "llama": lambda: transformers.LlamaForSequenceClassification(
            transformers.LlamaConfig(**shared, **sizes, num_key_value_heads=1, max_position_embeddings=16)
        ),
    }
    torch.manual_seed(0)
    return Logits(configs[family]().double().eval())


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_lrp_runs_at_the_embeddings_of_tiny_transformers(family, record_property):
    """Eager and fused (SDPA) attention give the same relevance: the fused call runs as the eager steps.

    Tolerance 1e-6: the eager LLaMA and GPT-2 paths run their softmax (and LLaMA its RMS norm) in float32.
    """
    ids = torch.randint(1, 50, (2, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, -2:] = 0  # right padding
    ids[1, -2:] = 0  # the pad token: the classifier reads the last token that is not one
    maps = []
    for implementation in ("eager", "sdpa"):
        model = tiny(family, implementation)
        embeddings = model.model.get_input_embeddings()
        a = sl.explain(model, ids, "lrp", target=1, layer=embeddings, forward_args={"attention_mask": mask})
        with torch.no_grad():
            logit = model(ids, mask)[:, 1]
        sums = a.values.sum((1, 2))
        record_property(
            f"{implementation}: relevance sum, logit", list(zip(sums.tolist(), logit.tolist(), strict=True))
        )
        print(f"{family} {implementation}: relevance sums {sums.tolist()}, logits {logit.tolist()}")
        assert a.values.shape == (2, 6, 32) and torch.isfinite(a.values).all()
        assert (a.values[1, -2:] == 0).all()  # padding tokens are seen by no one
        assert torch.allclose(a.delta, (sums - logit).abs())
        maps.append(a.values)
    assert torch.allclose(maps[0], maps[1], atol=1e-6, rtol=0)
