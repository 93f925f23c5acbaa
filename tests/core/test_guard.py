"""The model guard: every kind of hook, flag and gradient a call could leave behind is put back."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torch import nn

import saliencelab as sl
from saliencelab.core.guard import _HOOK_DICTS, preserved
from saliencelab.core.validation import model_dtype


def _nested() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))


REGISTRATIONS = {
    "forward": lambda m: m.register_forward_hook(lambda *a: None),
    "forward_with_kwargs": lambda m: m.register_forward_hook(lambda *a: None, with_kwargs=True),
    "forward_always_called": lambda m: m.register_forward_hook(lambda *a: None, always_call=True),
    "forward_pre": lambda m: m.register_forward_pre_hook(lambda *a: None),
    "forward_pre_with_kwargs": lambda m: m.register_forward_pre_hook(lambda *a: None, with_kwargs=True),
    "full_backward": lambda m: m.register_full_backward_hook(lambda *a: None),
    "full_backward_pre": lambda m: m.register_full_backward_pre_hook(lambda *a: None),
    "state_dict": lambda m: m.register_state_dict_post_hook(lambda *a: None),
    "state_dict_pre": lambda m: m.register_state_dict_pre_hook(lambda *a: None),
    "load_state_dict_pre": lambda m: m.register_load_state_dict_pre_hook(lambda *a: None),
    "load_state_dict_post": lambda m: m.register_load_state_dict_post_hook(lambda *a: None),
}


def _hooks(model: nn.Module) -> list[dict]:
    return [{name: dict(getattr(m, name, {})) for name in _HOOK_DICTS} for m in model.modules()]


@pytest.mark.parametrize("kind", sorted(REGISTRATIONS))
@pytest.mark.parametrize("raises", [False, True])
def test_a_hook_registered_during_the_call_is_gone_afterwards(kind, raises):
    model = _nested()
    REGISTRATIONS["forward"](model[1][1])  # the user's own hook stays
    before = _hooks(model)
    with pytest.raises(RuntimeError) if raises else warnings.catch_warnings():
        with preserved(model):
            REGISTRATIONS[kind](model[1][1])
            REGISTRATIONS[kind](model)
            assert _hooks(model) != before
            if raises:
                raise RuntimeError("boom")
    assert _hooks(model) == before


def test_a_users_hook_removed_during_the_call_is_put_back():
    model = _nested()
    calls = []
    handle = model[0].register_forward_hook(lambda *a: calls.append(1))
    with preserved(model):
        handle.remove()
    model(torch.ones(1, 2))
    assert calls == [1]


def test_gradients_and_flags_of_parameters_are_restored_after_a_raising_call():
    model = _nested()
    model(torch.ones(1, 2)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    with pytest.raises(RuntimeError), preserved(model):
        model(torch.ones(1, 2)).sum().backward()  # accumulates into the same .grad tensors
        model[1][1].bias.grad = None
        model[0].weight.grad = torch.zeros(3, 2)
        model[1][1].weight.requires_grad_(False)
        model.train(False)
        raise RuntimeError("boom")
    assert all(p.grad is g for p, g in zip(model.parameters(), grads, strict=True))
    assert all(p.requires_grad for p in model.parameters()) and all(m.training for m in model.modules())


def test_a_module_used_twice_and_a_shared_buffer_are_restored():
    shared = nn.BatchNorm1d(2)
    model = nn.Sequential(shared, nn.Linear(2, 2), shared).train()
    running = shared.running_mean.clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with preserved(model):
            model(torch.randn(4, 2) + 3)
            shared.register_forward_hook(lambda *a: None)
    assert torch.equal(shared.running_mean, running) and not shared._forward_hooks


def test_a_module_without_the_newer_kinds_of_hooks_is_guarded():
    model = _nested()
    for module in model.modules():
        del module.__dict__["_forward_hooks_always_called"]  # as a module pickled by an older torch
    model = pickle.loads(pickle.dumps(model))
    with preserved(model):
        model[0].register_forward_pre_hook(lambda *a: None)
    assert not model[0]._forward_pre_hooks


def test_a_method_call_leaves_no_hook_and_no_gradient_behind_on_a_model_that_raises():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    model[3].register_forward_hook(lambda module, args, out: (_ for _ in ()).throw(RuntimeError("inside")))
    before = _hooks(model)
    for method in ("gradient", "guided_backprop", "deeplift", "lrp", "grad_cam"):
        options = {"layer": model[0]} if method == "grad_cam" else {}
        with pytest.raises(RuntimeError, match="inside"):
            sl.explain(model, torch.ones(1, 1, 4, 4), method=method, target=0, **options)
        assert _hooks(model) == before and all(p.grad is None for p in model.parameters())


def test_the_models_dtype_is_its_first_floating_parameter_in_module_order():
    model = nn.Sequential(nn.Sequential(nn.Identity(), nn.Linear(2, 2).double()), nn.Linear(2, 2))
    model[0].register_parameter("step", nn.Parameter(torch.ones(1, dtype=torch.long), requires_grad=False))
    assert model_dtype(model) == next(p.dtype for p in model.parameters() if p.is_floating_point()) == torch.float64


def test_dropout_in_training_mode_warns_on_a_model_without_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with pytest.warns(UserWarning, match="training mode"), preserved(model):
        pass
    assert model.training
