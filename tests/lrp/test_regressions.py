"""Regressions of LRP and Deep Taylor, each a defect of commit b587d9a (these tests fail there).

They use only the public API of that commit (``sl.LRP``, ``sl.DeepTaylor``,
``sl.lrp.Composite``, ``sl.lrp.rule``) so that they run, and fail, on it.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot
from torch import nn

import saliencelab as sl
from saliencelab.lrp import Composite, rule

D = torch.float64
WAIT = 20.0
"""Seconds a thread waits for the other before the test gives up (it never needs more than milliseconds)."""


def _head(channels: int, side: int, classes: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(channels * side * side, classes))


def _score(model, x, target):
    with torch.no_grad():
        return model(x)[:, target]


# ------------------------------------------------------------------------------- 1. threads share the model


class Paced(nn.Module):
    """Runs ``net``; the forward pass with gradients of each named thread first calls that thread's step."""

    def __init__(self, net: nn.Module, steps: dict) -> None:
        super().__init__()
        self.net, self.steps = net, steps

    def forward(self, x):
        step = self.steps.get(threading.current_thread().name)
        if step is not None and torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
            step()
        return self.net(x)


def test_two_threads_running_lrp_on_one_model_leave_it_trainable():
    """Thread A is inside LRP when thread B starts; A finishes first, then B.

    The old LRP set every parameter's ``requires_grad`` to False for its call;
    B's model guard saw A's temporary state and put it back at the end, so the
    model stayed frozen for good (and was frozen for every other thread
    meanwhile).
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), _head(4, 6)).double()
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    seen_by_b: list[bool] = []

    def step_a():
        a_inside.set()
        assert b_inside.wait(WAIT)

    def step_b():
        seen_by_b.extend(p.requires_grad for p in net.parameters())
        b_inside.set()
        assert a_done.wait(WAIT)

    model = Paced(net, {"A": step_a, "B": step_b})
    x = torch.randn(2, 3, 8, 8, dtype=D)
    alone = sl.LRP(net, rule="epsilon")(x, target=1).values
    results: dict[str, torch.Tensor] = {}

    def explain(name):
        results[name] = sl.LRP(model, rule="epsilon")(x, target=1).values
        if name == "A":
            a_done.set()

    a = threading.Thread(target=explain, args=("A",), name="A")
    b = threading.Thread(target=lambda: (a_inside.wait(WAIT), explain("B")), name="B")
    a.start(), b.start()
    a.join(WAIT), b.join(WAIT)
    assert seen_by_b == [True] * 4, "the model was frozen while another thread ran LRP on it"
    assert all(p.requires_grad for p in net.parameters()), "the model was left frozen"
    assert torch.equal(results["A"], alone) and torch.equal(results["B"], alone)  # bit-identical
    net(x).sum().backward()  # a training step after both
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# ------------------------------------------------------------------------------- 2. wrapped callables


class Logits(nn.Module):
    """A model that returns a dict, as many Hugging Face models do."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return {"logits": self.net(x)}


def _small_net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), _head(4, 6)).double().eval()


@pytest.mark.parametrize("options", [{"rule": "epsilon"}, {"composite": "epsilon_plus"}, {"rule": "zplus"}])
def test_lrp_on_a_wrapped_callable_gives_the_modules_numbers(options):
    """``lambda t: net(t)["logits"]`` (what the library's errors recommend) and a plain closure."""
    net = _small_net()
    wrapped = Logits(net)
    x = torch.randn(3, 3, 8, 8, dtype=D)
    expected = sl.LRP(net, **options)(x, target=2).values

    def closure(t):
        return net(t)

    for model in (lambda t: wrapped(t)["logits"], closure):
        torch.testing.assert_close(sl.LRP(model, **options)(x, target=2).values, expected, rtol=0, atol=0)
    by_class = Composite({nn.Conv2d: rule("zplus"), nn.Linear: rule("epsilon", epsilon=0.1)})
    torch.testing.assert_close(
        sl.LRP(closure, composite=by_class)(x, target=2).values,
        sl.LRP(net, composite=by_class)(x, target=2).values,
        rtol=0,
        atol=0,
    )


def test_a_composite_naming_layers_refuses_a_model_without_layer_names():
    net = _small_net()
    by_name = Composite({"0": rule("zplus")})
    with pytest.raises(ValueError, match=r"names layers \['0'\].*not an nn.Module"):
        sl.LRP(lambda t: net(t), composite=by_name)


# ------------------------------------------------------------------------------- 3. options of a composite


def test_composite_options_are_used():
    net = _small_net()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    for name, options, by_hand in [
        (
            "epsilon_plus",
            {"epsilon": 0.5},
            Composite({"dense": rule("epsilon", epsilon=0.5), "conv": rule("zplus")}),
        ),
        (
            "epsilon_gamma_box",
            {"epsilon": 0.5, "gamma": 2.0, "low": -1.0, "high": 1.0},
            Composite(
                {"dense": rule("epsilon", epsilon=0.5), "conv": rule("gamma", gamma=2.0)},
                first=rule("zbox", low=-1.0, high=1.0),
            ),
        ),
    ]:
        named = sl.LRP(net, composite=name, **options)(x, target=0).values
        torch.testing.assert_close(named, sl.LRP(net, composite=by_hand)(x, target=0).values, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("options", "unused"),
    [
        ({"composite": "epsilon_plus", "gamma": 0.5}, "gamma"),
        ({"composite": "epsilon_alpha2_beta1", "alpha": 3.0, "beta": 2.0}, "alpha"),
        ({"composite": "epsilon_plus_flat", "low": 0.0, "high": 1.0}, "high"),
        ({"composite": Composite(), "epsilon": 0.1}, "epsilon"),
        ({"rule": "epsilon", "gamma": 0.5}, "gamma"),
        ({"rule": "zplus", "epsilon": 0.5}, "epsilon"),
    ],
)
def test_options_a_composite_or_rule_does_not_use_are_refused(options, unused):
    with pytest.raises(TypeError, match=unused):
        sl.LRP(_small_net(), **options)


# ------------------------------------------------------------------------------- 5. batch-norm merging


class ConvBN(nn.Module):
    """A (transposed) convolution, a batch norm straight after it, and a head."""

    def __init__(self, transposed: bool, groups: int = 1) -> None:
        super().__init__()
        layer = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = layer(4, 6, 3, groups=groups)
        side = 8 if transposed else 4
        self.bn, self.head = nn.BatchNorm2d(6), _head(6, side)
        with torch.no_grad():
            self.bn.running_mean.normal_()
            self.bn.running_var.uniform_(0.5, 2.0)
            self.bn.weight.uniform_(-1.5, 1.5)  # negative scales too
            self.bn.bias.normal_()

    def forward(self, x):
        return self.head(self.bn(self.conv(x)))


def _merged_by_hand(model: ConvBN) -> ConvBN:
    """The same function with the batch norm folded into the convolution, channel by channel."""
    merged = copy.deepcopy(model)
    bn, conv = merged.bn, merged.conv
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    with torch.no_grad():
        for out_channel in range(6):
            if isinstance(conv, nn.ConvTranspose2d):  # weight (in, out / groups, kh, kw)
                per_group = conv.weight.shape[1]
                group, j = divmod(out_channel, per_group)
                rows = slice(group * 4 // conv.groups, (group + 1) * 4 // conv.groups)
                conv.weight[rows, j] *= scale[out_channel]
            else:  # weight (out, in / groups, kh, kw)
                conv.weight[out_channel] *= scale[out_channel]
        conv.bias.copy_(scale * conv.bias + shift)
    merged.bn = nn.Identity()
    return merged


@pytest.mark.parametrize(("transposed", "groups"), [(False, 1), (False, 2), (True, 1), (True, 2)])
@pytest.mark.parametrize("name", ["zplus", "alpha_beta", "gamma"])
def test_merging_batch_norm_equals_the_merged_model(transposed, groups, name):
    """After a transposed convolution the old merge silently did nothing (and would have scaled axis 0)."""
    torch.manual_seed(7)
    model = ConvBN(transposed, groups).double().eval()
    by_hand = _merged_by_hand(model)
    x = torch.randn(3, 4, 6, 6, dtype=D)
    with torch.no_grad():
        torch.testing.assert_close(by_hand(x), model(x), rtol=1e-12, atol=1e-12)  # the same function
    before = snapshot(model)
    merged = sl.LRP(model, rule=name, batch_norm="merge", stabilizer=1e-12)(x, target=0).values
    assert_unchanged(model, before)
    expected = sl.LRP(by_hand, rule=name, stabilizer=1e-12)(x, target=0).values
    torch.testing.assert_close(merged, expected, rtol=1e-9, atol=1e-12)
    own_rule = sl.LRP(model, rule=name, stabilizer=1e-12)(x, target=0).values
    assert (own_rule - merged).abs().max() > 1e-3 * merged.abs().max()  # merging changes these rules' maps


class ReadBeforeNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.head = nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), _head(2, 6, 2)

    def forward(self, x):
        z = self.conv(x)
        skip = z * 0.5  # read before the batch norm: merging would change what it sees
        return self.head(self.bn(z) + skip)


def test_merging_refuses_a_layer_output_read_before_its_batch_norm():
    with pytest.raises(sl.UnsupportedOperationError, match="merged into"):
        sl.LRP(ReadBeforeNorm().eval(), batch_norm="merge")(torch.randn(2, 3, 8, 8), target=0)


# ------------------------------------------------------------------------------- 6. in-place residual blocks


class Residual(nn.Module):
    """A stem and the most common residual block: ``out = bn(conv(h)); out += h; out = relu_(out)``."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.inplace = inplace
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=inplace)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        with torch.no_grad():
            self.bn.running_mean.normal_()
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        h = self.relu(self.stem(x))
        out = self.bn(self.conv(h))
        if self.inplace:
            out += h
        else:
            out = out + h
        out = self.relu(out)
        return self.fc(F.avg_pool2d(out, 2).flatten(1))


def _residual_pair() -> tuple[Residual, Residual]:
    torch.manual_seed(3)
    inplace = Residual(inplace=True).double().eval()
    out_of_place = Residual(inplace=False).double().eval()
    out_of_place.load_state_dict(inplace.state_dict())
    return inplace, out_of_place


@pytest.mark.parametrize(
    "explain",
    [
        lambda m: sl.LRP(m, rule="epsilon", epsilon=1e-9, bias="ignore", stabilizer=1e-12),
        lambda m: sl.LRP(m, composite="epsilon_plus", bias="ignore"),
        lambda m: sl.LRP(m, rule="alpha_beta", batch_norm="merge"),
        lambda m: sl.DeepTaylor(m),
    ],
    ids=["epsilon_ignore", "epsilon_plus", "alpha_beta_merge", "deep_taylor"],
)
def test_an_inplace_residual_block_gives_the_out_of_place_numbers(explain):
    inplace, out_of_place = _residual_pair()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    before = snapshot(inplace)
    ours = explain(inplace)(x, target=1)
    assert_unchanged(inplace, before)
    torch.testing.assert_close(ours.values, explain(out_of_place)(x, target=1).values, rtol=0, atol=1e-6)


def test_an_inplace_residual_block_conserves_relevance():
    inplace, _ = _residual_pair()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    a = sl.LRP(inplace, rule="epsilon", epsilon=1e-9, bias="ignore", stabilizer=1e-12)(x, target=1)
    score = _score(inplace, x, 1)
    torch.testing.assert_close(a.values.flatten(1).sum(1), score, rtol=1e-6, atol=1e-9)
    assert a.delta.max() < 1e-6 * score.abs().max()


# ------------------------------------------------------------------------------- 7. Deep Taylor's bounds


def test_deep_taylor_maps_do_not_depend_on_the_batch():
    """The default z^B bounds are each sample's own range: a wide-range image joining the batch changes nothing."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).double()
    x = torch.rand(1, 1, 8, 8, dtype=D)
    wide = 6 * torch.rand(1, 1, 8, 8, dtype=D) - 3
    alone = sl.DeepTaylor(model)(x, target=0).values
    together = sl.DeepTaylor(model)(torch.cat([x, wide]), target=0).values
    torch.testing.assert_close(together[:1], alone, rtol=0, atol=1e-6 * alone.abs().max().item())
    low, high = x.min().item(), x.max().item()
    explicit = sl.DeepTaylor(model, low=low, high=high)(torch.cat([x, wide]), target=0).values
    torch.testing.assert_close(explicit[:1], alone, rtol=0, atol=1e-12)
