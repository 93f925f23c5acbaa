"""Runs round-trip every input structure through the store, record their provenance and refuse other options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import assert_unchanged, snapshot
from PIL import Image
from torch import nn

import saliencelab as sl
from saliencelab.runs import StoreExistsError
from saliencelab.runs.store import parameter_hash


def _linear(inputs: int, classes: int = 3) -> nn.Linear:
    generator = torch.Generator().manual_seed(0)
    model = nn.Linear(inputs, classes)
    with torch.no_grad():
        model.weight.copy_(torch.randn(classes, inputs, generator=generator))
        model.bias.zero_()
    return model


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image, self.table = _linear(16), _linear(3)

    def forward(self, image: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return self.image(image.flatten(1)) + self.table(table)


class Keywords(TwoInputs):
    def forward(self, pixels: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(pixels, extra)


class Bag(nn.Module):
    """Token ids and their attention mask: a masked sum of embeddings, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding, self.head = nn.Embedding(10, 4), _linear(4, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head((self.embedding(input_ids) * attention_mask[..., None]).sum(1))


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


def test_single_image_input_round_trips_with_labels_checks_and_the_model_unchanged(tmp_path):
    model = nn.Sequential(nn.Flatten(), _linear(16))
    x, y = _x(10, 1, 4, 4), torch.arange(10) % 3
    before = snapshot(model)
    run = sl.run(model, (x, y), methods=["gradient_x_input", "integrated_gradients"], store=tmp_path / "r.zarr",
                 batch_size=4)  # fmt: skip
    assert_unchanged(model, before)
    loaded = sl.load_run(tmp_path / "r.zarr")
    assert loaded.n == 10 and loaded.methods == ["gradient_x_input", "integrated_gradients"]
    np.testing.assert_array_equal(loaded.inputs["input"][:], x.numpy())
    expected = sl.explain(model, x, "gradient_x_input", target=model(x).argmax(1)).values
    np.testing.assert_array_equal(loaded.maps["gradient_x_input"]["input"][:], expected.numpy())
    table = loaded.table
    assert table["index"].tolist() == list(range(10)) and table["label"].tolist() == y.tolist()
    assert table["correct"].tolist() == (model(x).argmax(1) == y).tolist()
    np.testing.assert_allclose(table["score"], model(x).max(1).values.detach().numpy(), rtol=1e-6)
    # a linear model: gradient x input is exact, so completeness holds for IG and is undefined for gradient x input
    assert table["integrated_gradients.completeness_error"].max() < 1e-4
    assert table["gradient_x_input.completeness_error"].isna().all()
    auc = sl.evaluate.deletion(model, x, expected, target=torch.tensor(table["target"].values)).auc
    np.testing.assert_allclose(table["gradient_x_input.deletion_auc"], auc.numpy())
    sparseness = sl.evaluate.sparseness(expected)
    np.testing.assert_allclose(table["gradient_x_input.sparseness"], sparseness.numpy())
    assert run.complete and not table["gradient_x_input.degenerate"].any()


def test_two_positional_inputs_round_trip(tmp_path):
    model, image, extra = TwoInputs(), _x(6, 1, 4, 4), _x(6, 3)
    run = sl.run(model, (image, extra), methods=["gradient_x_input"], store=tmp_path / "r.zarr", batch_size=4)
    expected = sl.explain(model, (image, extra), "gradient_x_input", target=model(image, extra).argmax(1)).values
    maps = run.maps["gradient_x_input"]
    assert sorted(maps) == ["input_0", "input_1"] and list(run.table.columns)[-3:] == [
        "gradient_x_input.completeness_error", "gradient_x_input.degenerate", "gradient_x_input.sparseness"]
    np.testing.assert_array_equal(maps["input_0"][:], expected[0].numpy())
    np.testing.assert_array_equal(maps["input_1"][:], expected[1].numpy())
    np.testing.assert_array_equal(run.inputs["input_1"][:], extra.numpy())


def test_dict_inputs_round_trip_from_a_dataset_with_labels(tmp_path):
    samples = [{"pixels": _x(1, 4, 4)[0], "extra": _x(3)[:3] + i, "label": i % 3} for i in range(5)]
    model = Keywords()
    run = sl.run(model, samples_dataset(samples), methods=["gradient"], store=tmp_path / "r.zarr", batch_size=2)
    pixels = torch.stack([s["pixels"] for s in samples])
    extra = torch.stack([s["extra"] for s in samples])
    target = model(pixels, extra).argmax(1)
    expected = sl.explain(model, {"pixels": pixels, "extra": extra}, "gradient", target=target).values
    for name in ("pixels", "extra"):
        np.testing.assert_array_equal(run.maps["gradient"][name][:], expected[name].numpy())
    assert run.table["label"].tolist() == [0, 1, 2, 0, 1]


def samples_dataset(samples: list) -> torch.utils.data.Dataset:
    class Listed(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(samples)

        def __getitem__(self, index: int):
            return samples[index]

    return Listed()


def test_token_ids_are_stored_per_token_with_their_mask(tmp_path):
    torch.manual_seed(0)
    model = Bag()
    ids = torch.tensor([[1, 5, 7, 0], [2, 3, 0, 0], [4, 4, 4, 9]])
    mask = (ids > 0).long()
    data = {"input_ids": ids, "attention_mask": mask}
    options = {"integrated_gradients": {"layer": "embedding", "baseline": 0, "steps": 16}}
    run = sl.run(model, data, methods=options, store=tmp_path / "r.zarr", batch_size=2)
    target = model(ids, mask).argmax(1)
    expected = sl.explain(model, {"input_ids": ids}, "integrated_gradients", target=target, baseline=0,
                          layer="embedding", steps=16, forward_args={"attention_mask": mask})  # fmt: skip
    stored = run.maps["integrated_gradients"]
    assert list(stored) == ["input_ids"] and sorted(run.inputs) == ["attention_mask", "input_ids"]
    np.testing.assert_array_equal(stored["input_ids"][:], sl.text.token_scores(expected).numpy())
    np.testing.assert_array_equal(run.inputs["attention_mask"][:], mask.numpy())
    assert "integrated_gradients.deletion_auc" not in run.table  # deletion does not apply to token ids
    with pytest.raises(ValueError, match="deletion check perturbs one input of images"):
        sl.run(model, data, methods=options, checks=["deletion"], store=tmp_path / "s.zarr")


def test_table_data_from_the_zoo_round_trips_with_curves(tmp_path):
    model = sl.zoo.load("breast_cancer_mlp")
    run = sl.run(model, "breast_cancer", methods=["gradient_x_input"], store=tmp_path / "r.zarr", batch_size=50)
    x, y = sl.zoo.dataset("breast_cancer")[2:]
    np.testing.assert_array_equal(run.inputs["input"][:], x.numpy())
    assert run.classes == ["malignant", "benign"] and run.table["label"].tolist() == y.tolist()
    expected = sl.explain(model, x, "gradient_x_input", target=model(x).argmax(1)).values
    insertion = sl.evaluate.insertion(model, x, expected, target=model(x).argmax(1), baseline="zeros").auc
    np.testing.assert_allclose(run.table["gradient_x_input.insertion_auc"], insertion.numpy())


def test_a_folder_of_pngs_in_class_subfolders_is_read_as_the_cli_reads_it(tmp_path):
    images = np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8) * 3
    for i, image in enumerate(images):
        (tmp_path / "data" / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "data" / f"class{i % 2}" / f"{i}.png")
    model = sl.zoo.load("digits_cnn")
    source = sl.runs.folder(tmp_path / "data", model, mean=[0.5], std=[0.25])
    run = sl.run(model, source, methods=["gradient"], store=tmp_path / "r.zarr", batch_size=3)
    order = [0, 2, 1, 3]  # class0/0.png, class0/2.png, class1/1.png, class1/3.png
    expected = (torch.from_numpy(images[order] / 255.0).float()[:, None] - 0.5) / 0.25
    np.testing.assert_allclose(run.inputs["input"][:], expected.numpy(), rtol=1e-6)
    assert run.classes == ["class0", "class1"] and run.table["label"].tolist() == [0, 0, 1, 1]


def test_provenance_is_complete_and_the_parameter_hash_follows_the_weights(tmp_path):
    model = nn.Sequential(nn.Flatten(), _linear(16))
    x = _x(4, 1, 4, 4)
    run = sl.run(model, x, methods={"smoothgrad": {"samples": 3}}, store=tmp_path / "r.zarr", seed=5)
    provenance = run.provenance
    assert {"saliencelab", "torch", "zarr", "pyarrow"} <= set(provenance["versions"])
    assert {"platform", "processor", "cpu_count"} <= set(provenance["machine"])
    assert provenance["methods"]["smoothgrad"]["samples"] == 3 and "noise" in provenance["methods"]["smoothgrad"]
    assert provenance["checks"]["deletion"]["baseline"] == "zeros" and provenance["seed"] == 5
    assert provenance["batch_size"] == 64 and provenance["engine"] == "local"
    assert provenance["started"] <= provenance["finished"] and len(provenance["sessions"]) == 1
    first = provenance["model"]["parameter_hash"]
    with torch.no_grad():
        model[1].weight[0, 0] += 1
    changed = sl.run(model, x, methods={"smoothgrad": {"samples": 3}}, store=tmp_path / "s.zarr", seed=5)
    assert changed.provenance["model"]["parameter_hash"] != first
    with pytest.raises(StoreExistsError, match="other options"):  # the same store refuses the changed model
        sl.run(model, x, methods={"smoothgrad": {"samples": 3}}, store=tmp_path / "r.zarr", seed=5)


def test_a_model_with_batch_norm_is_hashed_with_its_scalar_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2)).eval()
    first = parameter_hash(model)  # num_batches_tracked is a 0-dim int64 buffer
    model[1].num_batches_tracked += 1
    assert parameter_hash(model) != first


def test_other_options_are_refused_unless_overwrite_and_the_same_ones_resume(tmp_path):
    model, x, path = nn.Sequential(nn.Flatten(), _linear(16)), _x(5, 1, 4, 4), tmp_path / "r.zarr"
    sl.run(model, x, methods=["gradient"], store=path, batch_size=2)
    with pytest.raises(StoreExistsError, match="other options"):
        sl.run(model, x, methods=["gradient"], store=path, batch_size=2, seed=1)
    with pytest.raises(StoreExistsError, match="already holds this run"):
        sl.run(model, x, methods=["gradient"], store=path, batch_size=2, resume=False)
    (path / "done" / "000001").unlink()
    resumed = sl.run(model, x, methods=["gradient"], store=path, batch_size=2)
    assert resumed.provenance["sessions"][-1]["chunks"] == 1 and resumed.complete
    replaced = sl.run(model, x, methods=["gradient_x_input"], store=path, batch_size=2, overwrite=True)
    assert replaced.methods == ["gradient_x_input"] and not (path / "maps" / "gradient").exists()


def test_overwrite_never_deletes_a_folder_that_is_not_a_run_store(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(StoreExistsError, match="not a run store"):
        sl.run(nn.Linear(2, 2), torch.ones(2, 2), store=tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_random_methods_draw_per_chunk_and_an_fsspec_url_store_works():
    model = nn.Sequential(nn.Flatten(), _linear(16, 8), nn.Tanh(), _linear(8))  # nonlinear: noise changes gradients
    x = _x(1, 1, 4, 4).expand(4, 1, 4, 4).contiguous()  # the same sample in two chunks of 2
    run = sl.run(model, x, methods={"smoothgrad": {"samples": 4}}, store="memory://runs/noise.zarr", batch_size=2)
    maps = run.maps["smoothgrad"]["input"][:]
    assert run.path == "memory://runs/noise.zarr"
    np.testing.assert_array_equal(maps[0], maps[1])  # one chunk: one draw of noise for all its samples
    assert not np.array_equal(maps[0], maps[2])  # another chunk: another seed
    again = sl.load_run("memory://runs/noise.zarr")
    np.testing.assert_array_equal(again.maps["smoothgrad"]["input"][:], maps)


def test_a_shuffling_dataloader_is_refused_and_a_sequential_one_is_batched_by_the_run(tmp_path):
    dataset = torch.utils.data.TensorDataset(_x(5, 3), torch.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match="shuffles"):
        sl.run(_linear(3), torch.utils.data.DataLoader(dataset, shuffle=True), store=tmp_path / "r.zarr")
    run = sl.run(_linear(3), torch.utils.data.DataLoader(dataset, batch_size=4), store=tmp_path / "r.zarr",
                 batch_size=2)  # fmt: skip
    assert run.done == {0, 1, 2} and run.table["label"].tolist() == [0, 1, 2, 0, 1]


def test_unknown_engine_and_the_ray_engine_before_it_exists():
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        sl.run(nn.Linear(2, 2), torch.ones(2, 2), store="memory://e.zarr", engine="spark")
    try:
        import saliencelab.runs.ray  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(NotImplementedError, match="engine='ray' is not available"):
            sl.run(nn.Linear(2, 2), torch.ones(2, 2), store="memory://e.zarr", engine="ray")


def test_importing_saliencelab_imports_neither_zarr_nor_the_runs():
    code = "import sys, saliencelab; print(sorted(m for m in ('zarr', 'saliencelab.runs') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_runs_a_zoo_data_set_and_refuses_other_options(tmp_path):
    from typer.testing import CliRunner

    from saliencelab.cli import app

    store = str(tmp_path / "r.zarr")
    command = ["run", "--data", "lfw_faces", "--model", "zoo:lfw_cnn", "-m", "gradient", "--store", store,
               "--batch-size", "16", "--check", "sparseness"]  # fmt: skip
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "50 samples, accuracy 1.000" in result.output
    assert sl.load_run(store).table["gradient.sparseness"].notna().all()
    refused = CliRunner().invoke(app, [*command, "--seed", "1"])
    assert refused.exit_code == 10 and "other options" in refused.output
    replaced = CliRunner().invoke(app, [*command, "--seed", "1", "--overwrite"])
    assert replaced.exit_code == 0 and sl.load_run(store).provenance["seed"] == 1


def test_a_session_counts_the_chunk_the_driver_computes_first_with_its_seconds(tmp_path):
    x = torch.linspace(-1, 1, 40).view(10, 4)
    run = sl.run(torch.nn.Linear(4, 3), x, methods=["gradient"], checks=[], store=str(tmp_path / "one.zarr"),
                 batch_size=10, progress=False)  # fmt: skip
    session = run.provenance["sessions"][0]
    assert session["chunks"] == 1 and session["compute_seconds"] > 0 and session["write_seconds"] > 0


def test_a_batch_size_larger_than_the_data_makes_one_chunk_of_the_data(tmp_path):
    x = torch.linspace(-1, 1, 40).view(10, 4)
    model = torch.nn.Linear(4, 3)
    huge = sl.run(model, x, methods=["gradient"], checks=[], store=str(tmp_path / "huge.zarr"), batch_size=10**6,
                  progress=False)  # fmt: skip
    exact = sl.run(model, x, methods=["gradient"], checks=[], store=str(tmp_path / "ten.zarr"), batch_size=10,
                   progress=False)  # fmt: skip
    assert huge.maps["gradient"]["input"].chunks == (10, 4)
    assert np.array_equal(huge.maps["gradient"]["input"][...], exact.maps["gradient"]["input"][...])
