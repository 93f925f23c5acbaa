"""TorchScript and torch.export models: every method refuses them or gives the eager model's numbers.

On a TorchScript model the engine sees no operation and no layer, so every
method that replaces or records operations, or hooks layers, must raise
(before this, Guided Backprop and DeconvNet silently returned the plain
gradient there, and DeepLIFT and LRP were off by 4e-2 and 6e-2). On a
``torch.export`` graph the engine sees the ATen operations, so the rule
methods must give the eager model's numbers; only layer hooks (CAMs, LRP's
per-layer rules) must raise. Methods that need only the model's outputs and
gradients must give the eager numbers on all of them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals

import saliencelab as sl
from saliencelab.engine import op_name, opaque_kind, require_sight
from saliencelab.engine.ops import functional_call, out_of_place

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

EXACT = {"rtol": 0.0, "atol": 1e-6}
"""Eager and compiled models run the same float32 kernels in the same order: equal to rounding."""


class SmallNet(nn.Module):
    """Conv-BatchNorm-ReLU(in place)-Conv-ReLU + skip-MaxPool-AvgPool-Linear-ReLU-Linear, scriptable and exportable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 4 * 4, 8)
        self.fc2 = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn(self.conv1(x)))
        y = F.max_pool2d(F.relu(self.conv2(h)) + h, 2)
        y = F.adaptive_avg_pool2d(y, 4).flatten(1)
        return self.fc2(torch.relu(self.fc1(y)))


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs (3 samples), references (4) and pattern fitting data (64), 1×16×16."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 1, 16, 16, generator=g), torch.randn(4, 1, 16, 16, generator=g), torch.randn(64, 1, 16, 16)


@pytest.fixture(scope="module")
def models(data, tmp_path_factory) -> dict[str, nn.Module]:
    """The eager net with random weights and statistics, and its TorchScript and torch.export twins."""
    torch.manual_seed(0)
    net = SmallNet().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    x = data[0]
    path = tmp_path_factory.mktemp("compiled")
    torch.jit.save(torch.jit.script(net), path / "net.ts")
    program = torch.export.export(net, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, path / "net.pt2")
    return {
        "eager": net,
        "script": torch.jit.load(path / "net.ts"),
        "trace": torch.jit.trace(net, x),
        "export": torch.export.load(path / "net.pt2").module(),
    }


def _options(method: str, data) -> dict:
    _, refs, fit = data
    return {
        "deeplift": {"baseline": refs[:1]},
        "deepshap": {"baseline": refs},
        "pattern_net": {"fit_data": fit},
        "pattern_attribution": {"fit_data": fit},
        "smoothgrad": {"samples": 3},
        "integrated_gradients": {"steps": 8},
        "expected_gradients": {"baseline": refs, "samples": 6},
        "gradient_shap": {"baseline": refs, "samples": 6},
        "occlusion": {"window": (1, 4, 4)},
        "shapley_sampling": {"feature_mask": _blocks(), "samples": 4},
        "kernel_shap": {"feature_mask": _blocks(), "samples": 40},
        "lime": {"feature_mask": _blocks(), "samples": 40},
        "rise": {"samples": 40, "grid": 4},
        "prediction_difference": {"window": (1, 4, 4), "stride": 4, "samples": 2, "baseline": refs},
        "meaningful_perturbation": {"steps": 5, "resolution": 4},
    }.get(method, {})


def _blocks() -> torch.Tensor:
    """Sixteen 4×4 feature groups."""
    return torch.arange(16).reshape(1, 1, 4, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)


def _explain(model, method: str, data, **extra) -> torch.Tensor:
    return sl.explain(model, data[0], method=method, target=1, **_options(method, data), **extra).values


# ------------------------------------------------------------------------------------------------ TorchScript

SEES_INSIDE = [
    "deconvnet",
    "guided_backprop",
    "deeplift",
    "deepshap",
    "lrp",
    "deep_taylor",
    "visual_backprop",
    "grad_cam",
    "guided_grad_cam",
    "grad_cam_pp",
    "score_cam",
    "layer_cam",
    "xgrad_cam",
    "hires_cam",
    "eigen_cam",
    "ablation_cam",
]
"""Methods that replace or record operations, or hook a layer (pattern methods: see below)."""


@pytest.mark.parametrize("kind", ["script", "trace"])
@pytest.mark.parametrize("method", SEES_INSIDE)
def test_torchscript_is_refused_by_every_method_that_sees_inside(models, data, kind, method):
    with pytest.raises(sl.UnsupportedOperationError, match=f"^{method} cannot see inside this TorchScript") as error:
        _explain(models[kind], method, data)
    assert "Pass the eager nn.Module" in str(error.value) and "silently" in str(error.value)
    assert error.value.method == method


def test_wrappers_and_scripted_submodules_are_refused_too(models, data):
    """SmoothGrad over Guided Backprop, incremental occlusion, a scripted layer inside an eager model."""
    x = data[0]
    with pytest.raises(sl.UnsupportedOperationError, match="^smoothgrad cannot see inside this TorchScript"):
        sl.explain(models["script"], x, method="smoothgrad", base="guided_backprop", samples=2, target=1)
    with pytest.raises(sl.UnsupportedOperationError, match="runs the model on patched activations"):
        sl.explain(models["script"], x, method="occlusion", window=(1, 4, 4), incremental=True, target=1)
    wrapped = nn.Sequential(models["trace"], nn.Identity())
    with pytest.raises(sl.UnsupportedOperationError, match="^deeplift cannot see inside this TorchScript"):
        sl.explain(wrapped, x, method="deeplift", baseline="zeros", target=1)


@pytest.mark.parametrize("method", ["pattern_net", "pattern_attribution"])
def test_patterns_fitted_elsewhere_are_refused_on_torchscript(models, data, method):
    eager = sl.core.registry.get(method)(models["eager"], fit_data=data[2])
    twin = sl.core.registry.get(method)(models["script"])
    twin.patterns, twin.weights = eager.patterns, eager.weights
    with pytest.raises(sl.UnsupportedOperationError, match=f"^{method} cannot see inside this TorchScript"):
        twin(data[0], target=1)


# ------------------------------------------------------------------------------------------------ torch.export

EXPORT_EXACT = [
    ("guided_backprop", {}),
    ("deconvnet", {}),
    ("deeplift", {}),
    ("deeplift", {"rule": "reveal_cancel"}),
    ("deepshap", {}),
    ("visual_backprop", {}),
    ("pattern_net", {}),
    ("pattern_attribution", {}),
    ("smoothgrad", {"base": "guided_backprop"}),
    ("occlusion", {"incremental": True}),
    ("lrp", {"composite": "epsilon_alpha2_beta1_flat"}),
    ("lrp", {"rule": "epsilon"}),
    ("deep_taylor", {}),
]


@pytest.mark.parametrize(("method", "extra"), EXPORT_EXACT)
def test_exported_graph_gives_the_eager_numbers(models, data, method, extra):
    eager = _explain(models["eager"], method, data, **extra)
    torch.testing.assert_close(_explain(models["export"], method, data, **extra), eager, **EXACT)


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
def test_exported_vision_transformer_gives_the_eager_deeplift(rule):
    """An exported graph's ``aten.layer_norm`` (with its extra cuDNN flag) and attention take the eager rules."""
    torch.manual_seed(0)
    vit = sl.zoo.load("vit_tiny_shaped", num_classes=4, image_size=8, seed=2).double()
    x, ref = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    exported = torch.export.export(vit, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    eager = sl.explain(vit, x, method="deeplift", rule=rule, target=1, baseline=ref)
    graph = sl.explain(exported, x, method="deeplift", rule=rule, target=1, baseline=ref)
    torch.testing.assert_close(graph.values, eager.values, rtol=0.0, atol=1e-12)
    assert graph.delta.max() < 1e-12


def test_exported_rules_are_not_the_plain_gradient(models, data):
    """Guided Backprop and DeconvNet used to return exactly the gradient on exported graphs."""
    gradient = _explain(models["export"], "gradient", data)
    scale = gradient.abs().max()
    for method in ("guided_backprop", "deconvnet"):
        assert (_explain(models["export"], method, data) - gradient).abs().max() > 0.1 * scale


@pytest.mark.parametrize("method", ["grad_cam", "guided_grad_cam", "score_cam", "eigen_cam"])
def test_exported_graph_is_refused_by_layer_hooks(models, data, method):
    with pytest.raises(sl.UnsupportedOperationError, match=f"^{method} cannot see inside this torch.export") as error:
        _explain(models["export"], method, data)
    assert "watches the model's layers with module hooks" in str(error.value)


def test_lrp_composites_that_name_layers_are_refused_on_exported_graphs(models, data):
    by_class = sl.lrp.Composite({torch.nn.Conv2d: sl.lrp.rule("zplus")})
    with pytest.raises(sl.UnsupportedOperationError, match="^lrp cannot see inside this torch.export"):
        _explain(models["export"], "lrp", data, composite=by_class)


# ------------------------------------------------------------------------------------------------ outputs only

GRADIENT_ONLY = [
    "gradient",
    "gradient_x_input",
    "integrated_gradients",
    "smoothgrad",
    "expected_gradients",
    "gradient_shap",
    "occlusion",
    "shapley_sampling",
    "kernel_shap",
    "lime",
    "rise",
    "prediction_difference",
    "meaningful_perturbation",
]


@pytest.mark.parametrize("method", GRADIENT_ONLY)
def test_methods_of_outputs_and_gradients_give_the_eager_numbers(models, data, method):
    eager = _explain(models["eager"], method, data)
    assert eager.abs().max() > 0
    for kind in ("script", "trace", "export"):
        torch.testing.assert_close(_explain(models[kind], method, data), eager, **EXACT, msg=f"{method} on {kind}")


# ------------------------------------------------------------------------------------------------ no trace left


def test_a_refusal_leaves_the_model_and_torch_as_they_were(models, data):
    for kind in ("script", "export"):
        model = models[kind]
        before, training = {k: v.clone() for k, v in model.state_dict().items()}, model.training
        with pytest.raises(sl.UnsupportedOperationError):
            _explain(model, "grad_cam", data)
        after = model.state_dict()
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
        assert model.training == training
    assert not module_globals._global_forward_pre_hooks and not module_globals._global_forward_hooks
    assert not torch.overrides._get_current_function_mode_stack()
    torch.testing.assert_close(models["script"](data[0]), models["eager"](data[0]), **EXACT)


# ------------------------------------------------------------------------------------------------ engine pieces


def test_aten_overloads_are_named_as_their_functional_ops():
    aten = torch.ops.aten
    assert op_name(aten.relu.default) == ("relu", False)
    assert op_name(aten.relu_.default) == ("relu", True)
    assert op_name(aten.conv2d.default) == ("conv2d", False)
    assert op_name(aten.max_pool2d_with_indices.default) == ("max_pool2d_with_indices", False)
    assert op_name(aten.add_.Tensor) == ("add", True)
    assert op_name(torch.ops.prims.add.default) == ("prims::add", False)  # no rule may match another namespace
    assert op_name(aten.batch_norm.default) == ("aten::batch_norm", False)  # its arguments come in another order
    assert out_of_place(aten.relu_.default) is aten.relu.default


def test_functional_call_reorders_batch_norm_and_computes_the_same():
    g = torch.Generator().manual_seed(1)
    x, w, b, mean = (torch.randn(shape, generator=g) for shape in ((2, 3, 4, 4), 3, 3, 3))
    var = torch.rand(3, generator=g) + 0.5
    aten_args = (x, w, b, mean, var, False, 0.1, 1e-5, False)
    func, args, kwargs = functional_call(torch.ops.aten.batch_norm.default, aten_args, {})
    assert func is F.batch_norm
    expected = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5) * w[:, None, None] + b[:, None, None]
    torch.testing.assert_close(func(*args, **kwargs), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.ops.aten.batch_norm.default(*aten_args), expected, rtol=0, atol=1e-6)


def test_opaque_kind_and_a_gradient_under_require_sight(models, data):
    assert [opaque_kind(models[k]) is None for k in ("eager", "script", "trace", "export")] == [1, 0, 0, 0]
    assert opaque_kind(torch.fx.symbolic_trace(models["eager"])) is None  # calls torch functions: the modes see them
    with require_sight("gradient"):
        torch.testing.assert_close(models["trace"](data[0]), models["eager"](data[0]), **EXACT)
