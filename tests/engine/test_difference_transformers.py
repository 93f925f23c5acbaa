"""DeepLIFT through the operations Hugging Face transformers use, and through small random transformers.

The rules are checked against closed forms on minimal modules in float64 (summation-to-delta to 1e-10: the
differences are exact up to the rounding of a few hundred float64 operations), then end to end on tiny
random-weight BERT, GPT-2 and LLaMA models built offline from their configs.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import saliencelab as sl
from saliencelab.engine.difference.composite import DECOMPOSITIONS


class Single(nn.Module):
    """``fn(x)`` summed per sample against fixed output weights, so every output element counts."""

    def __init__(self, fn, width: int):
        super().__init__()
        self.fn = fn
        self.register_buffer("w", torch.randn(width, dtype=torch.float64, generator=torch.Generator().manual_seed(9)))

    def forward(self, x):
        return (self.fn(x).flatten(1) * self.w).sum(1, keepdim=True)


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=torch.float64, generator=g), torch.randn(shape, dtype=torch.float64, generator=g)


def _change(model, x, ref):
    with torch.no_grad():
        return (model(x) - model(ref)).squeeze(1)


def _rotary(x):
    """LLaMA's rotary embedding of ``(N, heads, T, d)`` with constant cos and sin: slices, ``neg``, ``cat``."""
    t, d = x.shape[-2], x.shape[-1]
    angles = torch.arange(t, dtype=x.dtype)[:, None] / 10 ** (torch.arange(0, d, 2, dtype=x.dtype) / d)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    rotated = torch.cat((-x[..., d // 2 :], x[..., : d // 2]), dim=-1)
    return x * cos + rotated * sin


def _rms_norm_written_out(x):
    variance = x.pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(variance + 1e-6) * 1.5


def _new_gelu(x):
    """GPT-2's ``NewGELUActivation``, written out with ``tanh`` and ``pow``."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


_MASK = torch.tensor([[True, False, True, True, False, True]])
_CAUSAL = torch.ones(4, 4, dtype=torch.bool).tril()
_MIN = torch.finfo(torch.float64).min
_WEIGHT = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
_ADDITIVE = torch.zeros(1, 6, dtype=torch.float64).masked_fill(~_MASK, _MIN)

OPERATIONS = {
    "normalize": (lambda x: F.normalize(x, dim=-1), (3, 2, 6)),
    "normalize_p3_tensor_norm": (lambda x: F.normalize(x, p=3, dim=1) + x.norm(dim=(1, 2), keepdim=True), (3, 2, 6)),
    "vector_norms": (
        lambda x: torch.stack([torch.linalg.vector_norm(x, o, dim=-1) for o in (1, 2, math.inf, 0.5)], -1),
        (3, 2, 6),
    ),
    "rms_norm": (lambda x: F.rms_norm(x, (6,), torch.linspace(0.5, 2, 6, dtype=torch.float64)), (3, 2, 6)),
    "rms_norm_written_out": (_rms_norm_written_out, (3, 2, 6)),
    "rotary": (_rotary, (3, 2, 4, 6)),
    "masked_fill_finfo_min_softmax": (lambda x: torch.softmax(x.masked_fill(~_MASK, _MIN), -1), (3, 6)),
    "additive_mask_softmax_float32": (
        lambda x: F.softmax(x + _ADDITIVE, dim=-1, dtype=torch.float32).to(x.dtype),
        (3, 6),
    ),
    "where_mask": (lambda x: torch.where(_MASK, x.tanh(), torch.tensor(_MIN)).softmax(-1), (3, 6)),
    "sdpa": (lambda x: F.scaled_dot_product_attention(x, x.flip(-1), x.tanh()), (3, 2, 4, 6)),
    "sdpa_causal": (lambda x: F.scaled_dot_product_attention(x, 2 * x, x, is_causal=True), (3, 2, 4, 6)),
    "sdpa_bool_mask": (lambda x: F.scaled_dot_product_attention(x, x, x, attn_mask=_CAUSAL), (3, 2, 4, 6)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), (3, 6)),
    "new_gelu_written_out": (_new_gelu, (3, 6)),
    "silu_gated_product": (lambda x: F.silu(x[:, :3]) * x[:, 3:], (3, 6)),
    "cosine_similarity_to_a_constant": (
        lambda x: F.cosine_similarity(x, torch.linspace(-1, 2, 6, dtype=torch.float64), dim=-1)[:, None],
        (3, 6),
    ),
    "cosine_similarity_of_two_activations": (lambda x: F.cosine_similarity(x[:, :3], x[:, 3:].tanh())[:, None], (3, 6)),
    "addmm_conv1d": (lambda x: torch.addmm(torch.ones(5, dtype=x.dtype), x, _WEIGHT, beta=0.5).tanh(), (3, 6)),
    "baddbmm": (lambda x: torch.baddbmm(x.sum(-1, keepdim=True), x, x.transpose(1, 2), alpha=0.3), (3, 4, 4)),
}


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
@pytest.mark.parametrize("name", OPERATIONS)
def test_operations_keep_summation_to_delta(name, rule):
    fn, shape = OPERATIONS[name]
    x, ref = _pair(shape, seed=len(name))
    with torch.no_grad():
        width = fn(x).flatten(1).shape[1]
    model = Single(fn, width)
    a = sl.DeepLift(model, rule=rule)(x, baseline=ref)
    change = _change(model, x, ref)
    assert (change.abs() > 1e-5).all()  # far above the tolerance: the check is not vacuous
    # the additive float32 softmax is exact only to float32's rounding (6e-8 relative) of its logits
    atol = 1e-6 if "float32" in name else 1e-10
    torch.testing.assert_close(a.values.flatten(1).sum(1), change, atol=atol, rtol=0)


DEFINITIONS = {
    "rms_norm": lambda x: F.rms_norm(x, (4, 6), torch.linspace(0, 2, 24, dtype=torch.float64).view(4, 6)),
    "rms_norm_default_eps": lambda x: F.rms_norm(x * 1e-5, (6,)),
    "linalg_vector_norm": lambda x: torch.linalg.vector_norm(x, 3, dim=(1, 2), keepdim=True, dtype=torch.float64),
    "norm": lambda x: torch.norm(x, dim=-1) + x.norm(p=1, dim=1).sum(-1, keepdim=True) + x.norm(math.inf, 2)[..., :1],
    "normalize": lambda x: F.normalize(x, p=1.5, dim=1, eps=0.3),
    "cosine_similarity_broadcast": lambda x: F.cosine_similarity(x, x[:1, :1] + 0.5, dim=-1, eps=0.1),
    "addmm": lambda x: torch.addmm(x[0, 0, :4], x[:, 0], x[0].T, beta=2, alpha=-1),
    "baddbmm_ignores_input_at_beta_zero": lambda x: torch.baddbmm(
        torch.full((1,), math.nan, dtype=x.dtype), x, x.mT, beta=0
    ),
}


@pytest.mark.parametrize("name", DEFINITIONS)
def test_definitions_equal_torch(name):
    """The definitions the difference mode runs give torch's own values (1e-12 in float64)."""
    torch.manual_seed(3)
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    with _Decomposed() as decomposed:
        ours = DEFINITIONS[name](x)
    assert decomposed.used
    torch.testing.assert_close(ours, DEFINITIONS[name](x), atol=1e-12, rtol=1e-12)


class _Decomposed(torch.overrides.TorchFunctionMode):
    """Runs every operation that has a definition as that definition, the rest unchanged."""

    def __init__(self):
        super().__init__()
        self.used: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        from saliencelab.engine.ops import op_name

        name = op_name(func)[0]
        if name in DECOMPOSITIONS:
            self.used.append(name)
            func = DECOMPOSITIONS[name]
        return func(*args, **(kwargs or {}))


SECANTS = {
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "rsqrt": lambda x: torch.rsqrt(x.abs() + 0.1),
    "sqrt": lambda x: torch.sqrt(x.abs() + 0.1),
    "pow": lambda x: x.pow(3),
    "tanh": torch.tanh,
}


@pytest.mark.parametrize("name", SECANTS)
def test_elementwise_multipliers_are_secants(name):
    """One elementwise op: the Rescale multiplier is ``(f(x) − f(x′)) / (x − x′)`` exactly (1e-12 relative).

    (``rsqrt``/``sqrt`` are composed with ``abs``, whose own secant is checked against the product.)
    """
    f = SECANTS[name]
    x, ref = _pair((4, 5), seed=7)
    a = sl.DeepLift(lambda t: f(t).sum(1, keepdim=True))(x, baseline=ref)
    torch.testing.assert_close(a.values / (x - ref), (f(x) - f(ref)) / (x - ref), atol=1e-12, rtol=1e-12)


def test_two_norm_multipliers_are_its_closed_form():
    """``‖x‖ = sqrt(Σ x²)``: the multiplier of ``xᵢ`` is ``(xᵢ + x′ᵢ) / (‖x‖ + ‖x′‖)``."""
    x, ref = _pair((4, 7), seed=8)
    a = sl.DeepLift(lambda t: torch.linalg.vector_norm(t, dim=1, keepdim=True))(x, baseline=ref)
    expected = (x + ref) / (x.norm(dim=1, keepdim=True) + ref.norm(dim=1, keepdim=True))
    torch.testing.assert_close(a.values / (x - ref), expected, atol=1e-12, rtol=1e-12)


def test_normalize_contributions_are_its_closed_form():
    """``y = x·q``, ``q = 1/‖x‖``, scored by ``w·y``: the product splits Shapley-wise and ``q`` by its secant,

    ``Cᵢ = wᵢΔxᵢ (q + q′)/2 + (Σⱼ wⱼ (xⱼ + x′ⱼ)/2) · (q − q′)(xᵢ + x′ᵢ)Δxᵢ / (‖x‖² − ‖x′‖²)``.
    """
    x, ref = _pair((4, 7), seed=10)
    model = Single(lambda t: F.normalize(t, dim=1), 7)
    a = sl.DeepLift(model)(x, baseline=ref)
    w, dx = model.w, x - ref
    n, n_ref = x.norm(dim=1, keepdim=True), ref.norm(dim=1, keepdim=True)
    q, q_ref = 1 / n, 1 / n_ref
    shared = (w * (x + ref) / 2).sum(1, keepdim=True) * (q - q_ref) / (n**2 - n_ref**2)
    expected = w * dx * (q + q_ref) / 2 + shared * (x + ref) * dx
    torch.testing.assert_close(a.values, expected, atol=1e-12, rtol=1e-10)


def test_rms_norm_contributions_are_its_closed_form():
    """``y = x·r``, ``r = rsqrt(mean x² + ε)``, scored by ``w·y``:

    ``Cᵢ = wᵢΔxᵢ (r + r′)/2 + (Σⱼ wⱼ (xⱼ + x′ⱼ)/2) · s · (xᵢ + x′ᵢ)Δxᵢ / n``, ``s`` the secant of rsqrt.
    """
    x, ref = _pair((4, 6), seed=11)
    eps = 1e-6
    model = Single(lambda t: F.rms_norm(t, (6,), eps=eps), 6)
    a = sl.DeepLift(model)(x, baseline=ref)
    w, dx = model.w, x - ref
    v, v_ref = (x * x).mean(1, keepdim=True) + eps, (ref * ref).mean(1, keepdim=True) + eps
    r, r_ref = v.rsqrt(), v_ref.rsqrt()
    secant = (r - r_ref) / (v - v_ref)
    expected = w * dx * (r + r_ref) / 2 + (w * (x + ref) / 2).sum(1, keepdim=True) * secant * (x + ref) * dx / 6
    torch.testing.assert_close(a.values, expected, atol=1e-12, rtol=1e-10)


def test_masking_with_finfo_min_is_removing_the_masked_logits():
    """A softmax over logits masked to ``finfo.min`` (``masked_fill``, added, or ``where``) gives the masked
    logits nothing and the others what a softmax over the kept logits alone gives them (1e-12)."""
    x, ref = _pair((3, 6), seed=12)
    kept = _MASK[0]
    w = torch.randn(6, dtype=torch.float64)
    alone = sl.DeepLift(lambda t: (torch.softmax(t, -1) * w[kept]).sum(1, keepdim=True))(
        x[:, kept], baseline=ref[:, kept]
    )
    for masked in (
        lambda t: t.masked_fill(~_MASK, _MIN),
        lambda t: t + _ADDITIVE,
        lambda t: torch.where(_MASK, t, torch.tensor(_MIN)),
    ):
        a = sl.DeepLift(lambda t, masked=masked: (torch.softmax(masked(t), -1) * w).sum(1, keepdim=True))(
            x, baseline=ref
        )
        assert (a.values[:, ~kept] == 0).all()
        torch.testing.assert_close(a.values[:, kept], alone.values, atol=1e-12, rtol=0)


def test_causal_flag_bool_mask_and_additive_mask_give_the_same_attention_attributions():
    x, ref = _pair((2, 2, 4, 6), seed=13)
    additive = torch.zeros(4, 4, dtype=torch.float64).masked_fill(~_CAUSAL, _MIN)
    results = [
        sl.DeepLift(Single(fn, 48))(x, baseline=ref).values
        for fn in (
            lambda t: F.scaled_dot_product_attention(t, t.tanh(), t, is_causal=True),
            lambda t: F.scaled_dot_product_attention(t, t.tanh(), t, attn_mask=_CAUSAL),
            lambda t: F.scaled_dot_product_attention(t, t.tanh(), t, attn_mask=additive),
            lambda t: torch.softmax(t @ t.tanh().mT / math.sqrt(6) + additive, -1) @ t,
        )
    ]
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "fn, op, why",
    [
        (lambda x: x.norm(), "norm", "whole tensor"),
        (lambda x: torch.linalg.vector_norm(x, dim=(0, 1)), "linalg_vector_norm", "batch dimension"),
        (lambda x: torch.linalg.vector_norm(x, 0, dim=1), "linalg_vector_norm", "ord=0"),
        (lambda x: F.normalize(x, p=-math.inf, dim=1), "normalize", "ord=-inf"),
        (lambda x: x.norm(p="nuc", dim=(0, 1)), "norm", "matrix norm"),
    ],
)
def test_norms_without_exact_rules_raise(fn, op, why):
    with pytest.raises(sl.UnsupportedOperationError, match=f"'{op}'.*{why}"):
        sl.DeepLift(lambda x: fn(x).sum() + x.new_zeros(len(x), 1))(torch.randn(2, 3))


# --- tiny random transformers, built offline from their configs ---------------------------------------------

SIZES = {
    "vocab_size": 40,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 16,
}


@cache
def _model(kind: str, attn: str):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "bert":
        config = transformers.BertConfig(intermediate_size=64, num_labels=3, attn_implementation=attn, **SIZES)
        model = transformers.BertForSequenceClassification(config)
    elif kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=40, n_embd=32, n_layer=2, n_head=4, n_positions=16, attn_implementation=attn
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            intermediate_size=64, num_key_value_heads=2, attn_implementation=attn, **SIZES
        )
        model = transformers.LlamaForCausalLM(config)
    return model.double().eval()


def _attribute(kind: str, attn: str, **options):
    """DeepLIFT of the classifier's logit 1 (BERT) or the last position's logit 1 (GPT-2, LLaMA) at the input
    embeddings, against random token ids; the second sample has two padding positions at the end."""
    model = _model(kind, attn)
    g = torch.Generator().manual_seed(1)
    ids, refs = torch.randint(3, 40, (2, 6), generator=g), torch.randint(3, 40, (2, 6), generator=g)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0

    def logits(input_ids, attention_mask):
        out = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return out if kind == "bert" else out[:, -1]

    with warnings.catch_warnings():
        # LLaMA's RMS norm and eager softmax run in float32 inside a float64 model: the gap is float32's rounding,
        # which the method's check measures against float32's epsilon, so it raises no false alarm
        warnings.filterwarnings("error", "deeplift: the contributions miss", UserWarning)
        a = sl.explain(
            logits,
            ids,
            method="deeplift",
            layer=model.get_input_embeddings(),
            baseline=refs,
            forward_args={"attention_mask": mask},
            target=1,
            **options,
        )
    return a


# float64 throughout for BERT and GPT-2; LLaMA casts its RMS norm (and its eager softmax) to float32
SUMMATION = {"bert": 1e-12, "gpt2": 1e-12, "llama": 1e-6}


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", SUMMATION)
def test_transformers_keep_summation_to_delta(kind, attn):
    a = _attribute(kind, attn)
    assert a.values.shape == (2, 6, 32)
    assert (a.delta < SUMMATION[kind]).all()
    assert (a.values.sum((1, 2)).abs() > 1e-4).all()


@pytest.mark.parametrize(
    "kind, tolerance",
    # LLaMA's eager attention takes its softmax in float32: its own logits differ from SDPA's by ~1e-8
    [("bert", 1e-8), ("gpt2", 1e-8), ("llama", 1e-6)],
)
def test_eager_and_sdpa_attention_give_the_same_attributions(kind, tolerance):
    torch.testing.assert_close(
        _attribute(kind, "eager").values, _attribute(kind, "sdpa").values, atol=tolerance, rtol=0
    )


@pytest.mark.slow
def test_reveal_cancel_keeps_summation_to_delta_on_llama():
    assert (_attribute("llama", "sdpa", rule="reveal_cancel").delta < 1e-6).all()


def test_sentence_embedding_with_mean_pooling_and_normalize():
    """A sentence-transformers head (masked mean pooling, then ``F.normalize``) on BERT: exact to 1e-12."""
    pytest.importorskip("transformers")
    bert = _model("bert", "sdpa").bert
    g = torch.Generator().manual_seed(2)
    ids, refs = torch.randint(3, 40, (2, 5), generator=g), torch.randint(3, 40, (2, 5), generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])

    def embed(input_ids, attention_mask):
        hidden = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    a = sl.explain(
        embed,
        ids,
        method="deeplift",
        layer=bert.get_input_embeddings(),
        baseline=refs,
        forward_args={"attention_mask": mask},
        target=0,
    )
    assert (a.delta < 1e-12).all() and (a.values.sum((1, 2)).abs() > 1e-4).all()


def test_the_inexactness_check_measures_rounding_in_the_coarsest_dtype_the_model_used():
    """A float64 model that runs a softmax in float32 is exact to float32's rounding: no false alarm, but a real
    gap (a .detach() in the model) still warns."""

    def softmax_in_float32(x: torch.Tensor) -> torch.Tensor:
        return (x.float().softmax(dim=1).double() * torch.arange(1.0, 5.0, dtype=torch.float64)).sum(1, keepdim=True)

    x, ref = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "deeplift: the contributions miss", UserWarning)
        a = sl.explain(softmax_in_float32, x, method="deeplift", baseline=ref)
    assert a.delta.max() < 1e-5  # float32's rounding, not float64's

    def cut(x: torch.Tensor) -> torch.Tensor:
        return softmax_in_float32(x) + x[:, :1].detach() * 3

    with pytest.warns(UserWarning, match="contributions miss"):
        sl.explain(cut, x, method="deeplift", baseline=ref)


def test_a_causal_mask_with_more_keys_than_queries_is_torchs_top_left_one():
    """LRP's written-out attention aligned the causal mask bottom-right (wrong by up to 1.08 here); DeepLIFT's and
    LRP's now share one definition, equal to the fused kernel."""
    from saliencelab.engine.attention import attention_decomposed

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, n, 4, dtype=torch.float64, generator=g) for n in (3, 5, 5))
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(attention_decomposed(q, k, v, is_causal=True), fused, atol=1e-12)


def test_deeplift_is_exact_through_torchs_own_transformer_encoder():
    """nn.MultiheadAttention calls F.multi_head_attention_forward, now written out for DeepLIFT too."""
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval().double()
    head = torch.nn.Linear(16, 3).double()
    x, ref = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 5, 16, dtype=torch.float64)
    a = sl.explain(lambda h: head(encoder(h).mean(1)), x, method="deeplift", target=1, baseline=ref)
    assert a.delta.max() < 1e-10
    lrp = sl.explain(lambda h: head(encoder(h).mean(1)), x, method="lrp", target=1, composite="transformer")
    assert torch.isfinite(lrp.values).all()
