"""Feature ablation: agreement with Captum in float64, the closed form on linear models, groups, chunking, errors."""

from __future__ import annotations

import pytest
import torch
from helpers import TrainingModeNet, assert_unchanged, conv_net, snapshot

import saliencelab as sl

captum_attr = pytest.importorskip("captum.attr")

EXACT = {"rtol": 0, "atol": 1e-10}
"""Both compute f(x) − f(ablated) from the same float64 inputs; only the batch size of the forward passes
differs (Captum runs N rows per feature id), which can change the last bits of a convolution or a matmul."""

TARGETS = torch.tensor([0, 1, 2, 3])
CONV_IMAGES = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
TABLE = torch.randn(4, 7, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def conv64() -> torch.nn.Module:
    return conv_net("module", seed=3).double()


def mlp64() -> torch.nn.Module:
    torch.manual_seed(4)
    layers = [torch.nn.Linear(7, 12), torch.nn.Tanh(), torch.nn.Linear(12, 12), torch.nn.ReLU(), torch.nn.Linear(12, 5)]
    return torch.nn.Sequential(*layers).double().eval()


def ids(shape: tuple[int, ...], seed: int, values: list[int]) -> torch.Tensor:
    """Random group ids drawn from ``values`` (non-contiguous and negative ids included on purpose)."""
    pick = torch.randint(0, len(values), shape, generator=torch.Generator().manual_seed(seed))
    return torch.tensor(values)[pick]


def both(model, inputs, mask=None, baseline=None, captum_mask=None, captum_baseline=None):
    ours = sl.explain(model, inputs, method="feature_ablation", target=TARGETS, feature_mask=mask, baseline=baseline)
    theirs = captum_attr.FeatureAblation(model).attribute(
        inputs,
        target=TARGETS,
        feature_mask=mask if captum_mask is None else captum_mask,
        baselines=baseline if captum_baseline is None else captum_baseline,
    )
    return ours, theirs


CONV_CASES = {
    "every element its own group": {},
    "shared pixel groups, all channels together": {"mask": ids((1, 1, 8, 8), 5, [-3, 0, 4, 9, 20])},
    "shared groups per element": {"mask": ids((1, 3, 8, 8), 6, [1, 2, 3, 7])},
    "per-sample groups, different ids per sample": {
        "mask": torch.cat([ids((1, 1, 8, 8), 7 + i, [0, 2 + i, 5, 11 * i]) for i in range(4)])
    },
    "a scalar baseline": {"baseline": 0.25},
    "a shared tensor baseline": {"baseline": torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(8))},
    "a per-sample tensor baseline and per-sample groups": {
        "baseline": torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(9)).double(),
        "mask": ids((4, 3, 8, 8), 10, [0, 1, 2]),
    },
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_equals_captum_on_a_conv_net_in_float64(case):
    options = CONV_CASES[case]
    baseline = options.get("baseline")
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.double()
    ours, theirs = both(conv64(), CONV_IMAGES, options.get("mask"), baseline)
    assert theirs.dtype == ours.values.dtype == torch.float64
    torch.testing.assert_close(ours.values, theirs, **EXACT)
    assert ours.delta is None and ours.method == "feature_ablation" and ours.target.tolist() == TARGETS.tolist()
    assert ours.values.abs().sum() > 0


MLP_CASES = {
    "every feature its own group": {},
    "shared groups": {"mask": torch.tensor([[4, 4, -1, 8, 8, 8, 0]])},
    "per-sample groups": {"mask": ids((4, 7), 11, [0, 1, 3])},
    "a scalar baseline": {"baseline": -1.5},
    "a tensor baseline without a batch dimension": {
        "baseline": torch.linspace(-1, 1, 7, dtype=torch.float64),
        "mask": torch.tensor([[0, 1, 1, 2, 2, 3, 3]]),
    },
}


@pytest.mark.parametrize("case", MLP_CASES)
def test_equals_captum_on_an_mlp_in_float64(case):
    options = MLP_CASES[case]
    ours, theirs = both(mlp64(), TABLE, options.get("mask"), options.get("baseline"))
    torch.testing.assert_close(ours.values, theirs, **EXACT)


def test_a_mask_without_the_batch_dimension_is_shared_like_a_batch_of_one():
    mask = ids((8, 8), 12, [0, 1, 2, 3])
    ours, theirs = both(conv64(), CONV_IMAGES, mask, captum_mask=mask[None, None])
    torch.testing.assert_close(ours.values, theirs, **EXACT)


def test_a_scalar_baseline_that_float32_cannot_represent_equals_captum_in_float64():
    ours, theirs = both(mlp64(), TABLE, baseline=0.3)
    torch.testing.assert_close(ours.values, theirs, **EXACT)


@pytest.mark.parametrize("shape", [(3, 6), (3, 2, 5), (3, 2, 3, 4)])
def test_a_linear_model_with_one_element_groups_gives_w_times_x_minus_baseline(shape):
    # tabular, sequence and image inputs; f(x) − f(x with x_i = b_i) = w_i (x_i − b_i) exactly in real numbers
    features = int(torch.tensor(shape[1:]).prod())
    generator = torch.Generator().manual_seed(13)
    weight = torch.randn(2, features, generator=generator, dtype=torch.float64)
    model = lambda x: x.flatten(1) @ weight.T  # noqa: E731
    x = torch.randn(shape, generator=generator, dtype=torch.float64)
    baseline = torch.randn((1, *shape[1:]), generator=generator, dtype=torch.float64)
    a = sl.FeatureAblation(model)(x, target=1, baseline=baseline)
    expected = (weight[1] * (x - baseline).flatten(1)).reshape(shape)
    torch.testing.assert_close(a.values, expected, rtol=0, atol=1e-12)  # float64 rounding of a difference of sums


def test_a_group_gets_its_joint_effect_and_the_group_values_are_reported():
    # f = x0 x1 + x2: ablating {0, 1} removes the product once; each singleton would remove it too
    model = lambda x: (x[:, 0] * x[:, 1] + x[:, 2])[:, None]  # noqa: E731
    x = torch.tensor([[2.0, 3.0, 5.0], [1.0, 4.0, -2.0]])
    a = sl.FeatureAblation(model, feature_mask=torch.tensor([[7, 7, 1], [0, 1, 1]]))(x)
    assert a.values.tolist() == [[6.0, 6.0, 5.0], [4.0, 2.0, 2.0]]
    assert a.info["groups"].tolist() == [2, 2]
    # ids in increasing order: sample 0 has {1: x2, 7: x0 x1}, sample 1 has {0: x0, 1: x1 x2}
    assert [v.tolist() for v in a.info["group_values"]] == [[5.0, 6.0], [4.0, 2.0]]


def test_presets_and_callables_give_the_groups_they_describe():
    model = conv64()
    explain = lambda mask: sl.explain(model, CONV_IMAGES, method="feature_ablation", target=TARGETS, feature_mask=mask)  # noqa: E731
    default_grid, cells = sl.methods.perturbation.grid(), sl.methods.perturbation.grid(2)
    assert torch.equal(explain("grid").values, explain(default_grid).values)
    by_callable = explain(cells)
    theirs = captum_attr.FeatureAblation(model).attribute(CONV_IMAGES, target=TARGETS, feature_mask=cells(CONV_IMAGES))
    torch.testing.assert_close(by_callable.values, theirs, **EXACT)
    assert by_callable.info["groups"].tolist() == [16] * 4  # 2×2 cells on 8×8 images, channels together


def test_each_sample_costs_its_own_number_of_groups_in_batched_passes():
    model = conv64()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    mask = torch.zeros(4, 1, 8, 8, dtype=torch.long)
    for i in range(4):
        mask[i, :, :, 4:] = 1 + i  # sample i: 2 groups ...
        mask[i, :, : i + 1, :] = 10  # ... plus a top band: 3 groups
    sl.explain(model, CONV_IMAGES, method="feature_ablation", target=0, feature_mask=mask)
    rows = seen[1:]  # the first call measures one row's activations
    assert sum(rows) == 4 + 4 * 3 and max(rows) > 4  # the clean inputs, then 12 ablated rows in one pass


def test_chunking_does_not_change_the_values():
    model = conv64()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    whole = sl.explain(model, CONV_IMAGES, method="feature_ablation", target=TARGETS)
    largest_whole, seen[:] = max(seen), []
    chunked = sl.explain(model, CONV_IMAGES, method="feature_ablation", target=TARGETS, memory_budget=30_000)
    assert max(seen) < largest_whole // 10  # it did run in many small chunks
    # each row's score is computed alone and written in place: only a kernel's choice by batch size can differ
    torch.testing.assert_close(chunked.values, whole.values, rtol=0, atol=1e-12)


def test_a_sample_gets_the_same_map_alone_and_in_a_batch():
    model = conv64()
    whole = sl.explain(model, CONV_IMAGES, method="feature_ablation", target=TARGETS, feature_mask="grid")
    for i in range(4):
        alone = sl.explain(model, CONV_IMAGES[i : i + 1], method="feature_ablation", target=i, feature_mask="grid")
        torch.testing.assert_close(alone.values, whole.values[i : i + 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("training", [False, True])
def test_the_model_is_left_exactly_as_it_was(training, images):
    model = TrainingModeNet().train(training)
    model.body.fc1.register_forward_hook(lambda module, args, output: None)
    model.body.conv1.weight.grad = torch.ones_like(model.body.conv1.weight)
    before = snapshot(model)
    if training:
        with pytest.warns(UserWarning, match="training mode"):
            sl.explain(model, images, method="feature_ablation", target=1, feature_mask="grid")
    else:
        sl.explain(model, images, method="feature_ablation", target=1, feature_mask="grid")
    assert_unchanged(model, before)
    with pytest.raises(ValueError, match="out of range"):
        sl.explain(model, images, method="feature_ablation", target=99, feature_mask="grid")
    assert_unchanged(model, before)


def test_progress_bar_only_when_asked(images, capsys):
    model = conv_net()
    sl.explain(model, images, method="feature_ablation", target=0)  # 768 rows, not a terminal: quiet
    assert capsys.readouterr().err == ""
    sl.explain(model, images, method="feature_ablation", target=0, progress=True)
    assert "feature_ablation (groups)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "mask, error, message",
    [
        (torch.zeros(8, 8), TypeError, "integer group ids; got dtype torch.float32"),
        (torch.ones(1, 1, 8, 8, dtype=torch.bool), TypeError, "integer group ids"),
        (torch.zeros(1, 1, 7, 8, dtype=torch.long), ValueError, r"shape \(1, 1, 7, 8\) does not broadcast"),
        (torch.zeros(3, 1, 8, 8, dtype=torch.long), ValueError, r"\(N, 3, 8, 8\) \(one grouping per sample\)"),
        ("superpixels", ValueError, "unknown feature_mask preset 'superpixels'; the presets are slic, grid"),
        (lambda x: [0, 1], TypeError, "the feature_mask callable must return a tensor; it returned list"),
        ([[0, 1]], TypeError, "feature_mask must be a tensor of group ids"),
    ],
)
def test_bad_masks_are_clear_errors(mask, error, message, images):
    with pytest.raises(error, match=message):
        sl.explain(conv_net(), images, method="feature_ablation", target=0, feature_mask=mask)


def test_bad_baselines_and_options_are_clear_errors(images):
    model = conv_net()
    with pytest.raises(ValueError, match="one baseline per sample; got 3 references"):
        sl.explain(model, images, method="feature_ablation", target=0, baseline=sl.references(images[:3]))
    with pytest.raises(ValueError, match=r"baseline of shape \(5,\) does not broadcast"):
        sl.explain(model, images, method="feature_ablation", target=0, baseline=torch.zeros(5))
    with pytest.raises(TypeError, match="feature_ablation does not take the option"):
        sl.explain(model, images, method="feature_ablation", target=0, window=3)
    with pytest.raises(TypeError, match="progress must be"):
        sl.FeatureAblation(model, progress="yes")


# ------------------------------------------------------------------ several inputs, forward_args, token ids


class TwoInputs(torch.nn.Module):
    """An image branch and a tabular branch added, times an optional per-sample scale (not attributed)."""

    def __init__(self) -> None:
        super().__init__()
        self.image = conv64()
        torch.manual_seed(14)
        self.table = torch.nn.Sequential(torch.nn.Linear(7, 9), torch.nn.Tanh(), torch.nn.Linear(9, 5)).double()

    def forward(self, image, table, scale=None):
        out = self.image(image) + self.table(table)
        return out if scale is None else out * scale[:, None]


def test_several_inputs_equal_captum_with_a_baseline_per_input():
    model = TwoInputs().eval()
    image_baseline = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(15)).double()
    ours = sl.explain(
        model, (CONV_IMAGES, TABLE), method="feature_ablation", target=TARGETS, baseline=(image_baseline, -0.5)
    )
    theirs = captum_attr.FeatureAblation(model).attribute(
        (CONV_IMAGES, TABLE), target=TARGETS, baselines=(image_baseline, -0.5)
    )
    assert isinstance(ours.values, tuple) and len(ours.values) == 2
    for mine, captums in zip(ours.values, theirs, strict=True):
        torch.testing.assert_close(mine, captums, **EXACT)
    as_dict = sl.explain(
        lambda image, table: model(image, table),
        {"image": CONV_IMAGES, "table": TABLE},
        method="feature_ablation",
        target=TARGETS,
        baseline={"image": image_baseline, "table": -0.5},
    )
    assert torch.equal(as_dict.values["image"], ours.values[0]) and torch.equal(as_dict.values["table"], ours.values[1])


def test_a_packed_mask_groups_features_across_inputs_like_captums_cross_tensor_groups():
    model = TwoInputs().eval()
    image_ids = ids((1, 3, 8, 8), 16, [0, 1, 2, 3])
    table_ids = torch.tensor([[0, 0, 4, 4, 2, 5, 5]])  # 0 and 2 span both inputs
    packed = torch.cat([image_ids.flatten(1), table_ids], dim=1)
    ours = sl.explain(model, (CONV_IMAGES, TABLE), method="feature_ablation", target=TARGETS, feature_mask=packed)
    theirs = captum_attr.FeatureAblation(model).attribute(
        (CONV_IMAGES, TABLE), target=TARGETS, feature_mask=(image_ids, table_ids)
    )
    for mine, captums in zip(ours.values, theirs, strict=True):
        torch.testing.assert_close(mine, captums, **EXACT)
    assert ours.info["groups"].tolist() == [6] * 4


def test_a_per_sample_forward_argument_follows_its_sample_like_captums_additional_forward_args():
    model = TwoInputs().eval()
    scale = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    ours = sl.explain(model, (CONV_IMAGES, TABLE), method="feature_ablation", target=TARGETS, forward_args=(scale,))
    theirs = captum_attr.FeatureAblation(model).attribute(
        (CONV_IMAGES, TABLE), target=TARGETS, additional_forward_args=(scale,)
    )
    for mine, captums in zip(ours.values, theirs, strict=True):
        torch.testing.assert_close(mine, captums, **EXACT)


def test_token_ids_are_ablated_to_the_baseline_id_and_get_float_values():
    torch.manual_seed(17)
    embedding, head = torch.nn.Embedding(20, 6).double(), torch.nn.Linear(6, 5).double()
    model = lambda tokens: head(torch.tanh(embedding(tokens)).mean(dim=1))  # noqa: E731
    tokens = torch.randint(1, 20, (4, 9), generator=torch.Generator().manual_seed(18))
    ours = sl.explain(model, tokens, method="feature_ablation", target=TARGETS, baseline=0)  # 0: the padding id
    theirs = captum_attr.FeatureAblation(model).attribute(tokens, target=TARGETS, baselines=0)
    assert ours.values.dtype == torch.get_default_dtype()
    torch.testing.assert_close(ours.values, theirs.to(ours.values.dtype), rtol=1e-6, atol=1e-7)  # float32 values
    assert ours.values.abs().min() > 0  # every token counts: nothing was truncated to an integer
