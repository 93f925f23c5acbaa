"""The CAM family and VisualBackProp: closed forms, Captum, the papers' weights, a scene with a known answer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, conv_net, snapshot
from torch import nn

import saliencelab as sl
from saliencelab.methods.cam.eigen import first_component_projection
from saliencelab.methods.cam.layers import token_grid

D = torch.float64
GRADIENT_CAMS = ["grad_cam", "grad_cam_pp", "xgrad_cam", "hires_cam", "layer_cam"]
ALL_CAMS = [*GRADIENT_CAMS, "score_cam", "ablation_cam", "eigen_cam"]


class Split(nn.Module):
    """``head(features(x))``: the CAM layer is ``features``; its grid is (8, 4, 4) for 8x8 inputs."""

    def __init__(self, classes: int = 3, head: str = "dense") -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU()
        )
        if head == "dense":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, classes))
        else:
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))

    def forward(self, x):
        return self.head(self.features(x))


def _split(seed=0, **kwargs) -> Split:
    torch.manual_seed(seed)
    return Split(**kwargs).double().eval()


def _a_and_g(model: Split, x: torch.Tensor, target: int):
    a = model.features(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(model.head(a)[:, target].sum(), a)
    return a.detach(), g


def _finish(cam: torch.Tensor, size=(8, 8), relu=True) -> torch.Tensor:
    cam = cam.clamp(min=0) if relu else cam
    return F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False)


def test_grad_cam_closed_form_and_captum():
    from captum.attr import LayerAttribution, LayerGradCam

    model = _split()
    x = torch.randn(4, 3, 8, 8, dtype=D)
    a, g = _a_and_g(model, x, 2)
    expected = _finish((g.mean((2, 3), keepdim=True) * a).sum(1))
    ours = sl.GradCam(model, layer="features")(x, target=2)
    torch.testing.assert_close(ours.values, expected)
    assert ours.values.shape == (4, 1, 8, 8) and ours.info["layer"] == "features"
    captum = LayerGradCam(model, model.features).attribute(x, target=2, relu_attributions=True)
    torch.testing.assert_close(ours.values, LayerAttribution.interpolate(captum, (8, 8), "bilinear"))
    signed = sl.GradCam(model, layer="features", relu=False, upsample=None)(x, target=2).values
    torch.testing.assert_close(signed, (g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    assert (signed < 0).any()  # the signed map keeps its sign


def _paper_map(name: str, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Each method's map written channel by channel from its paper's formula."""
    n, c = a.shape[:2]
    out = torch.zeros(n, *a.shape[2:], dtype=a.dtype)
    for i in range(n):
        for k in range(c):
            ak, gk = a[i, k], g[i, k]
            if name == "grad_cam_pp":
                denominator = 2 * gk**2 + ak.sum() * gk**3
                alpha = torch.where(denominator != 0, gk**2 / denominator, torch.zeros_like(gk))
                out[i] += (alpha * F.relu(gk)).sum() * ak
            elif name == "xgrad_cam":
                out[i] += ((ak * gk).sum() / ak.sum() if ak.sum() != 0 else 0.0) * ak
            elif name == "hires_cam":
                out[i] += gk * ak
            elif name == "layer_cam":
                out[i] += F.relu(gk) * ak
            else:
                out[i] += gk.mean() * ak
    return out


@pytest.mark.parametrize("name", GRADIENT_CAMS)
def test_gradient_weighted_maps_follow_their_papers(name):
    model = _split(seed=1)
    x = torch.randn(3, 3, 8, 8, dtype=D)
    a, g = _a_and_g(model, x, 0)
    ours = sl.explain(model, x, method=name, target=0, layer="features", relu=False, upsample=None).values
    torch.testing.assert_close(ours[:, 0], _paper_map(name, a, g))


def test_guided_grad_cam_is_guided_backprop_times_grad_cam():
    from captum.attr import GuidedGradCam

    model = _split(seed=2)
    x = torch.randn(2, 3, 8, 8, dtype=D)
    ours = sl.GuidedGradCam(model, layer="features")(x, target=1).values
    product = sl.GuidedBackprop(model)(x, target=1).values * sl.GradCam(model, layer="features")(x, target=1).values
    torch.testing.assert_close(ours, product)
    captum = GuidedGradCam(model, model.features).attribute(x, target=1, interpolate_mode="bilinear")
    torch.testing.assert_close(ours, captum)


def test_score_cam_weights_are_the_masked_scores_increase():
    model = _split(seed=3)
    x = torch.rand(2, 3, 8, 8, dtype=D)
    a = model.features(x).detach()
    with torch.no_grad():
        blank = model(torch.zeros_like(x)).softmax(1)[:, 1]
        expected = torch.zeros(2, 4, 4, dtype=D)
        for i in range(2):
            for k in range(a.shape[1]):
                h = F.interpolate(a[i : i + 1, k : k + 1], size=(8, 8), mode="bilinear", align_corners=False)
                if h.max() == h.min():
                    continue
                h = (h - h.min()) / (h.max() - h.min())
                weight = model(x[i : i + 1] * h).softmax(1)[0, 1] - blank[i]
                expected[i] += weight * a[i, k]
    ours = sl.ScoreCam(model, layer="features", relu=False, upsample=None)(x, target=1).values
    torch.testing.assert_close(ours[:, 0], expected)
    logits = sl.ScoreCam(model, layer="features", softmax=False, relu=False, upsample=None)(x, target=1).values
    assert not torch.allclose(logits, ours)


class Skipping(Split):
    """A head that also reads the input: only the whole network gives the score (no tail-only re-run)."""

    def forward(self, x):
        return self.head(self.features(x)) + x.mean((1, 2, 3)).unsqueeze(1)


@pytest.mark.parametrize("model_class", [Split, Skipping])
def test_ablation_cam_weights_keep_their_meaning_for_negative_scores(model_class):
    torch.manual_seed(4)
    model = model_class().double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    with torch.no_grad():
        y = model(x)
    target = int(y.mean(0).argmin())  # a class whose scores are negative
    assert (y[:, target] < 0).all()
    a = model.features(x).detach()
    expected = torch.zeros(3, 4, 4, dtype=D)
    with torch.no_grad():
        for k in range(a.shape[1]):
            ablated = a.clone()
            ablated[:, k] = 0
            y_k = model.head(ablated)[:, target]
            if model_class is Skipping:
                y_k = y_k + x.mean((1, 2, 3))
            weight = (y[:, target] - y_k) / y[:, target].abs()
            expected += weight.reshape(-1, 1, 1) * a[:, k]
    ours = sl.AblationCam(model, layer="features", relu=False, upsample=None)(x, target=target).values
    torch.testing.assert_close(ours[:, 0], expected)


def test_eigen_cam_is_the_first_principal_direction_with_a_fixed_sign():
    model = _split(seed=5)
    x = torch.rand(3, 3, 8, 8, dtype=D)
    a = model.features(x).detach()
    ours = sl.EigenCam(model, layer="features", relu=False, upsample=None)(x, target=0).values[:, 0]
    for i in range(3):
        o = a[i].reshape(8, -1).T  # positions x channels
        _, _, vh = torch.linalg.svd(o, full_matrices=False)
        projection = (o @ vh[0]).reshape(4, 4)
        projection = projection if (projection * a[i].mean(0)).sum() >= 0 else -projection
        torch.testing.assert_close(ours[i], projection)
    other_target = sl.EigenCam(model, layer="features", relu=False, upsample=None)(x, target=2).values[:, 0]
    torch.testing.assert_close(other_target, ours)  # class-agnostic


def test_visual_backprop_closed_form():
    torch.manual_seed(6)
    conv1, conv2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3, stride=2, padding=1)
    model = nn.Sequential(conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), nn.Linear(5 * 5 * 5, 2)).double()
    x = torch.rand(2, 3, 12, 12, dtype=D)
    with torch.no_grad():
        h1 = F.relu(conv1(x))
        h2 = F.relu(conv2(h1))
        ones3 = torch.ones(1, 1, 3, 3, dtype=D)
        up = F.conv_transpose2d(h2.mean(1, keepdim=True), ones3, stride=2, padding=1, output_padding=1)
        expected = F.conv_transpose2d(up * h1.mean(1, keepdim=True), ones3)
    ours = sl.VisualBackProp(model)(x).values
    assert ours.shape == (2, 1, 12, 12)
    torch.testing.assert_close(ours, expected)


def _scene(size: int = 16):
    """Three-channel images with one bright 5x5 square and a dim noisy background; the square's box."""
    generator = torch.Generator().manual_seed(7)
    x = 0.1 * torch.rand(2, 3, size, size, generator=generator)
    boxes = [(2, 7, 9, 14), (8, 13, 1, 6)]
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        x[i, :, r0:r1, c0:c1] += 0.9
    return x, boxes


class Detector(nn.Module):
    """Class 0 = bright-square detector (channel 0 of both convolutions); other channels are random."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(8)
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.head = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv1.weight.mul_(0.1)
            self.conv1.weight[0] = 1 / 27
            self.conv1.bias.fill_(-0.3)
            self.conv1.bias[0] = -0.5
            self.conv2.weight.mul_(0.1)
            self.conv2.weight[0] = 0.0
            self.conv2.weight[0, 0, 1, 1] = 1.0
            self.conv2.bias.fill_(-0.1)
            self.conv2.bias[0] = 0.0
            self.head.weight.copy_(torch.tensor([[1.0, 0.1, -0.1, 0.05], [-1.0, 0.2, 0.3, 0.1]]))

    def forward(self, x):
        h = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.head(h.mean((2, 3)))


@pytest.mark.parametrize("name", [*ALL_CAMS, "guided_grad_cam", "visual_backprop"])
def test_every_map_peaks_on_the_object(name):
    model = Detector().eval()
    x, boxes = _scene()
    before = snapshot(model)
    options = {} if name == "visual_backprop" else {"layer": "relu2"}
    values = sl.explain(model, x, method=name, target=0, **options).values
    assert_unchanged(model, before)
    heat = values.abs().sum(1)
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        row, col = divmod(int(heat[i].argmax()), heat.shape[-1])
        assert r0 <= row < r1 and c0 <= col < c1, (name, i, (row, col))


@pytest.mark.parametrize("name", [*ALL_CAMS, "guided_grad_cam", "visual_backprop"])
def test_maps_do_not_depend_on_the_batch_or_the_chunking(name):
    model = _split(seed=9)
    x = torch.rand(3, 3, 8, 8, dtype=D)
    options = {} if name == "visual_backprop" else {"layer": "features"}
    together = sl.explain(model, x, method=name, target=[0, 1, 2], **options).values
    alone = sl.explain(model, x[1:2], method=name, target=1, **options).values
    torch.testing.assert_close(together[1:2], alone)
    chunked = sl.explain(model, x, method=name, target=[0, 1, 2], memory_budget=1, **options).values
    torch.testing.assert_close(chunked, together)


EVERY_MAP = [*ALL_CAMS, "guided_grad_cam", "visual_backprop"]


def _options(name: str) -> dict:
    """The layer ``features`` and signed maps, for the methods that take them."""
    if name == "visual_backprop":
        return {}
    return {"layer": "features"} if name == "guided_grad_cam" else {"layer": "features", "relu": False}


@pytest.mark.parametrize("model_class", [Split, Skipping])
@pytest.mark.parametrize("name", EVERY_MAP)
def test_maps_inside_no_grad_and_inference_mode_equal_those_outside(name, model_class):
    torch.manual_seed(10)
    model = model_class().double().eval()
    x = torch.randn(3, 3, 8, 8, dtype=D)
    outside = sl.explain(model, x, method=name, target=[0, 1, 2], **_options(name)).values
    assert outside.abs().amax() > 0
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            inside = sl.explain(model, x, method=name, target=[0, 1, 2], **_options(name)).values
        torch.testing.assert_close(inside, outside, rtol=0, atol=1e-12, msg=f"{name} under {mode.__name__}")
    with torch.inference_mode():
        made_inside = x.clone()
    from_inference = sl.explain(model, made_inside, method=name, target=[0, 1, 2], **_options(name))
    torch.testing.assert_close(from_inference.values, outside, rtol=0, atol=1e-12)


class InPlace(Split):
    """Doubles and rectifies the CAM layer's output, in place or not; keeps at most two output rows per input row.

    The cut passes Ablation-CAM's check of a re-run of the layers after
    ``features`` alone (one input row, one and two rows of activations) and
    then fails it on a chunk of more rows, which are re-run through the whole
    network with the same ablated activations.
    """

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.in_place = in_place

    def forward(self, x):
        h = self.features(x)
        h = h.mul_(2).relu_() if self.in_place else h.mul(2).relu()
        return self.head(h)[: 2 * x.shape[0]]


@pytest.mark.parametrize("name", ALL_CAMS)
def test_in_place_operations_after_the_layer_do_not_change_the_maps(name):
    torch.manual_seed(11)
    out_of_place = InPlace(in_place=False).double().eval()
    in_place = InPlace(in_place=True).double().eval()
    in_place.load_state_dict(out_of_place.state_dict())
    x = torch.randn(3, 3, 8, 8, dtype=D)
    expected = sl.explain(out_of_place, x, method=name, target=1, **_options(name)).values
    ours = sl.explain(in_place, x, method=name, target=1, **_options(name)).values
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_eigen_cam_in_half_precision_is_the_float32_map_cast_back(dtype):
    model = _split(seed=12).to(dtype)
    x = torch.rand(3, 3, 8, 8).to(dtype)
    ours = sl.EigenCam(model, layer="features", relu=False, upsample=None)(x).values[:, 0]
    assert ours.dtype == dtype
    with torch.no_grad():
        grid = model.features(x).float()
    expected = first_component_projection(grid)
    torch.testing.assert_close(ours, expected.to(dtype), rtol=0, atol=0)
    assert expected.abs().amax() > 0.1


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.bfloat16, 0.05), (torch.float16, 0.01)])
def test_score_cam_in_half_precision_is_close_to_the_float32_map(dtype, tolerance):
    half = _split().to(dtype)
    x = torch.rand(3, 3, 8, 8).to(dtype)
    same_weights = _split().to(dtype).float()  # the half model's weights and input, computed in float32
    options = {"layer": "features", "relu": False, "upsample": None}
    expected = sl.ScoreCam(same_weights, **options)(x.float(), target=1).values
    ours = sl.ScoreCam(half, **options)(x, target=1).values
    assert ours.dtype == dtype
    assert (ours.float() - expected).abs().amax() < tolerance * expected.abs().amax()


def test_default_layer_functional_models_and_plain_functions():
    model = conv_net("functional", classes=3).double()
    x = torch.rand(2, 3, 8, 8, dtype=D)
    default = sl.GradCam(model)(x, target=1)
    assert default.info["layer"] == "conv2"  # the last module with a spatial output
    torch.testing.assert_close(default.values, sl.GradCam(model, layer=model.conv2)(x, target=1).values)
    as_function = sl.GradCam(lambda t: model(t), layer=model.conv2)(x, target=1)  # a function, a module layer
    torch.testing.assert_close(as_function.values, default.values)
    resnet = sl.zoo.load("resnet18_shaped", num_classes=4, seed=0)
    assert sl.GradCam(resnet)(torch.rand(1, 3, 64, 64), target=0).info["layer"] == "layer4"


@pytest.mark.parametrize("class_token", [True, False])
def test_vision_transformer_tokens_become_a_grid(class_token):
    model = sl.zoo.load("vit_tiny_shaped", class_token=class_token, seed=1).double()
    x = torch.rand(2, 3, 32, 32, dtype=D)
    layer = model.blocks[-1]
    seen = {}
    handle = layer.register_forward_hook(lambda m, i, o: seen.update(tokens=o))
    try:
        out = model(x)
    finally:
        handle.remove()
    (g,) = torch.autograd.grad(out[:, 3].sum(), seen["tokens"])
    a, g = token_grid(seen["tokens"].detach()), token_grid(g)
    assert a.shape == (2, 64, 8, 8)
    expected = _finish((g.mean((2, 3), keepdim=True) * a).sum(1), size=(32, 32))
    ours = sl.GradCam(model, layer="blocks.3")(x, target=3).values
    torch.testing.assert_close(ours, expected)
    for name in GRADIENT_CAMS:  # every gradient CAM on the token grid, against its paper's formula
        raw = sl.explain(model, x, method=name, target=3, layer="blocks.3", relu=False, upsample=None).values
        torch.testing.assert_close(raw[:, 0], _paper_map(name, a, g))
    for name in ("score_cam", "ablation_cam", "eigen_cam"):
        values = sl.explain(model, x, method=name, target=3, layer="blocks.3").values
        assert values.shape == (2, 1, 32, 32) and torch.isfinite(values).all() and (values >= 0).all()
    custom = sl.GradCam(model, layer="blocks.3", reshape=token_grid)(x, target=3).values
    torch.testing.assert_close(custom, ours)


def test_ablation_of_a_token_channel_keeps_the_class_token():
    model = sl.zoo.load("vit_tiny_shaped", seed=2).double()
    x = torch.rand(1, 3, 32, 32, dtype=D)
    layer = model.blocks[-1]
    ours = sl.AblationCam(model, layer=layer, relu=False, upsample=None)(x, target=0).values[0, 0]
    with torch.no_grad():
        y = model(x)[0, 0]
        tokens = {}
        handle = layer.register_forward_hook(lambda m, i, o: tokens.update(a=o))
        model(x)
        handle.remove()
        a = tokens["a"]
        expected = torch.zeros(8, 8, dtype=D)
        for k in range(a.shape[2]):
            ablated = a.clone()
            ablated[:, 1:, k] = 0  # channel k of the patch tokens; the class token stays
            replace = layer.register_forward_hook(lambda m, i, o, t=ablated: t)
            y_k = model(x)[0, 0]
            replace.remove()
            expected += (y - y_k) / y.abs() * token_grid(a)[0, k]
    torch.testing.assert_close(ours, expected)


class Tokens(nn.Module):
    """Pixels as tokens: a 2x3 image gives 6 tokens, neither a square nor a square and a class token."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.head = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.proj(x.flatten(2).transpose(1, 2)).mean(1))


def test_bad_layers_and_options_are_clear_errors():
    model = _split()
    x = torch.rand(1, 3, 8, 8, dtype=D)
    before = snapshot(model)
    with pytest.raises(ValueError, match="no layer named 'feature'"):
        sl.GradCam(model, layer="feature")
    with pytest.raises(ValueError, match="did not run"):
        sl.GradCam(model, layer=nn.ReLU())(x, target=0)
    reused = nn.Sequential(model.features[1], model.features[1])
    with pytest.raises(ValueError, match="more than once"):
        sl.GradCam(lambda t: model.head(reused(model.features(t))), layer=model.features[1])(x, target=0)
    with pytest.raises(ValueError, match="upsample must be one of"):
        sl.GradCam(model, upsample="cubic")
    with pytest.raises(ValueError, match="spatial dimensions"):
        sl.GradCam(nn.Linear(4, 2), layer="")(torch.rand(2, 4), target=0)
    with pytest.raises(ValueError, match="no layer with a spatial output"):
        sl.GradCam(nn.Sequential(nn.Flatten(), nn.Linear(192, 2)))(x.float(), target=0)
    with pytest.raises(ValueError, match="neither a square grid"):
        sl.GradCam(Tokens(), layer="proj")(torch.rand(1, 3, 2, 3), target=0)  # 6 tokens
    assert_unchanged(model, before)
