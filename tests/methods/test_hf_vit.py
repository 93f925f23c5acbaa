"""Hugging Face's ViT at its own grid: the CAMs read the token sequence as h×w patches, whatever the image size."""

from __future__ import annotations

import pytest
import torch

import saliencelab as sl

transformers = pytest.importorskip("transformers")


class Logits(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


@pytest.fixture(scope="module")
def vit() -> Logits:
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=40, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=3,
    )  # fmt: skip
    return Logits(transformers.ViTForImageClassification(config).eval().double())


LAYER = "model.vit.layers.1.layernorm_before"  # the last block's input: its patch tokens reach the class token


def test_layer_cam_reads_the_5_by_5_patch_grid_of_a_40_pixel_image(vit):
    x = torch.rand(2, 3, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = sl.explain(vit, x, method="layer_cam", target=1, layer=LAYER, upsample=None)
    assert ours.values.shape == (2, 1, 5, 5)
    seen = {}

    def keep(module, args, out):
        out.retain_grad()
        seen["a"] = out

    handle = vit.get_submodule(LAYER).register_forward_hook(keep)
    try:
        vit(x)[:, 1].sum().backward()
    finally:
        handle.remove()
        vit.zero_grad(set_to_none=True)
    tokens, grads = seen["a"][:, 1:], seen["a"].grad[:, 1:]  # the class token is not a patch
    grid = lambda t: t.transpose(1, 2).reshape(2, 32, 5, 5)  # noqa: E731
    expected = (grid(grads).clamp(min=0) * grid(tokens)).sum(1).clamp(min=0)
    assert torch.allclose(ours.values[:, 0], expected.detach(), atol=1e-12)
    upsampled = sl.explain(vit, x, method="layer_cam", target=1, layer=LAYER)
    assert upsampled.values.shape == (2, 1, 40, 40)


def test_lrp_and_deeplift_run_through_hugging_faces_vit_attention(vit):
    x = torch.rand(2, 3, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    deeplift = sl.explain(vit, x, method="deeplift", target=1)
    assert deeplift.delta.max() < 1e-10  # exact through attention, layer norm and GELU
    lrp = sl.explain(vit, x, method="lrp", target=1)  # the transformer composite: the model has attention modules
    explicit = sl.explain(vit, x, method="lrp", target=1, composite="transformer")
    assert torch.equal(lrp.values, explicit.values) and lrp.values.abs().sum() > 0
    with pytest.raises(sl.UnsupportedOperationError, match="layer_norm"):  # the plain ε rule has none for it
        sl.explain(vit, x, method="lrp", target=1, rule="epsilon")
