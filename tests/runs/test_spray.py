"""Tests for SpRAy (saliencelab.runs.spray): the analysis, its store layout, and the planted shortcut it must find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import saliencelab as sl
from saliencelab import zoo
from saliencelab.runs.spray import SpraySettings, analyse_run, downsample, read_analysis, spray, write_analysis
from saliencelab.zoo.datasets import WATERMARK_CLASS

zarr = pytest.importorskip("zarr", reason="the run store needs zarr>=3 (pip install 'saliencelab[runs]')")
from fake_runs import FakeRun, digits_table  # noqa: E402


def blobs(counts: tuple[int, ...], seed: int = 0, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Maps (N, 1, 8, 8) that light up one of len(counts) separate 2x2 squares each, plus noise; the square per map."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(len(counts)), counts)
    maps = noise * rng.normal(size=(len(group), 1, 8, 8))
    for g in range(len(counts)):
        maps[group == g, :, 2 * g : 2 * g + 2, 2 * g : 2 * g + 2] += 3.0
    return maps, group


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# --- the planted shortcut ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradient_x_input", "lrp", "integrated_gradients"])
def test_spray_separates_the_watermarked_sevens(method: str) -> None:
    """The maps of the 45 test 7s of the watermark model: the 18 watermarked ones form a cluster of their own.

    Measured (torch 2.13 CPU, default settings): each method finds two clusters of sizes 27 and 18, the 18 exactly
    the watermarked images; the graph falls in two pieces (two zero eigenvalues), eigengap 0.382 for gradient x input
    and LRP (the same maps for this ReLU network), 0.385 for integrated gradients.
    """
    model = zoo.load("watermarked_digits_cnn")
    _, _, x_test, y_test = zoo.dataset("watermarked_digits")
    _, marked = zoo.watermarked("watermarked_digits")
    sevens = y_test == WATERMARK_CLASS
    maps = sl.explain(model, x_test[sevens], method, target=WATERMARK_CLASS).values.detach().numpy()
    is_marked = marked[sevens].numpy()
    found = spray(maps, np.full(len(maps), WATERMARK_CLASS), method=method).classes[WATERMARK_CLASS]
    assert found.n_clusters >= 2 and found.eigengap > 0
    purity, recall, size = max(
        (is_marked[found.cluster == c].mean(), is_marked[found.cluster == c].sum() / is_marked.sum(), n)
        for c, n in found.sizes.items()
    )
    assert purity >= 0.9 and recall >= 0.9
    assert abs(size - int(is_marked.sum())) <= 2  # the cluster's size reports how many images carry the shortcut


# --- the analysis -----------------------------------------------------------------------------------------------------


def test_downsample_is_adaptive_average_pooling_of_the_channel_sum() -> None:
    maps = np.random.default_rng(0).normal(size=(3, 2, 10, 7))
    expected = F.adaptive_avg_pool2d(torch.tensor(maps).sum(1, keepdim=True), (4, 4)).flatten(1).numpy()
    np.testing.assert_allclose(downsample(maps, grid=4), expected, rtol=1e-12)
    np.testing.assert_array_equal(downsample(maps[:, :, :3, :3], grid=4), maps[:, :, :3, :3].sum(1).reshape(3, 9))
    table = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(downsample(table, grid=1), table)  # (N, D): kept as it is


def test_eigengap_counts_separate_groups_and_the_clusters_are_the_groups() -> None:
    maps, group = blobs((30, 20, 12))
    found = spray(maps, np.zeros(len(maps), dtype=int)).classes[0]
    assert found.n_clusters == 3
    assert found.sizes == {0: 30, 1: 20, 2: 12}  # largest first
    assert same_partition(found.cluster, group)
    # three pieces of the graph: three zero eigenvalues, then the gap
    assert np.allclose(found.eigenvalues[:3], 0, atol=1e-9) and found.eigenvalues[3] > 0.1
    assert found.eigengap == pytest.approx(found.eigenvalues[3] - found.eigenvalues[2])
    assert found.embedding.shape == (62, 2)
    assert np.array_equal(found.members, np.arange(62))


def test_a_stated_number_of_clusters_overrides_the_eigengap() -> None:
    maps, _ = blobs((30, 20, 12))
    found = spray(maps, np.zeros(len(maps), dtype=int), n_clusters=2).classes[0]
    assert found.n_clusters == 2 and sum(found.sizes.values()) == 62
    assert found.eigengap == pytest.approx(found.eigenvalues[2] - found.eigenvalues[1])


def test_prototypes_are_the_members_nearest_their_cluster_mean() -> None:
    maps, _ = blobs((25, 15))
    found = spray(maps, np.zeros(len(maps), dtype=int), prototypes=4).classes[0]
    unit = downsample(maps)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    for c, chosen in found.prototypes.items():
        rows = np.flatnonzero(found.cluster == c)
        distance = np.linalg.norm(unit[rows] - unit[rows].mean(0), axis=1)
        assert chosen == rows[np.argsort(distance)[:4]].tolist()


def test_outlier_scores_are_distances_from_the_class_mean_in_units_of_its_spread() -> None:
    maps = np.random.default_rng(3).normal(size=(40, 1, 4, 4)) + 2.0
    maps[11] *= -1
    found = spray(maps, np.zeros(40, dtype=int)).classes[0]
    assert np.mean(found.outlier_score**2) == pytest.approx(1.0)  # the spread is the root mean square distance
    assert int(np.argmax(found.outlier_score)) == 11
    assert found.candidates().tolist() == [11]
    assert found.candidates(top=0).tolist() == []


def test_classes_are_analysed_apart_with_the_samples_indices() -> None:
    maps, _ = blobs((20, 20))
    labels = np.array([4, 9] * 20)
    indices = np.arange(100, 140)
    result = spray(maps, labels, indices=indices)
    assert list(result.classes) == [4, 9]
    assert result.classes[9].members.tolist() == list(range(101, 140, 2))
    np.testing.assert_allclose(result.classes[4].mean_map["input"], maps[labels == 4].mean(0))
    for analysis in result.classes.values():
        assert all(set(p) <= set(analysis.members.tolist()) for p in analysis.prototypes.values())


def test_the_same_seed_gives_the_same_analysis() -> None:
    maps, _ = blobs((30, 20, 12), noise=0.8)
    first, second = (spray(maps, np.zeros(62, dtype=int), seed=5).classes[0] for _ in range(2))
    for name in ("cluster", "embedding", "eigenvalues", "outlier_score"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.prototypes == second.prototypes


def test_too_small_classes_are_skipped_with_the_reason() -> None:
    maps, _ = blobs((20, 5))
    labels = np.array([0] * 20 + [1] * 5)
    result = spray(maps, labels)
    assert list(result.classes) == [0]
    assert result.skipped == {1: "5 samples, fewer than min_samples=10"}
    assert list(spray(maps, labels, min_samples=5).classes) == [0, 1]


def test_bad_input_is_refused_with_what_was_wrong() -> None:
    maps, _ = blobs((12,))
    labels = np.zeros(12, dtype=int)
    with pytest.raises(ValueError, match=r"12 maps but 11 labels: give one label per map"):
        spray(maps, labels[:11])
    with pytest.raises(ValueError, match=r"labels must be integers"):
        spray(maps, labels.astype(float))
    broken = maps.copy()
    broken[[3, 7], 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"2 maps hold NaN or infinity \(samples 3, 7\)"):
        spray(broken, labels)
    with pytest.raises(ValueError, match=r"different numbers of samples: \{'a': 12, 'b': 11\}"):
        spray({"a": maps, "b": maps[:11]}, labels)
    with pytest.raises(ValueError, match=r"indices must be 12 integers"):
        spray(maps, labels, indices=np.arange(5))
    with pytest.raises(ValueError, match=r"neighbours must be an integer of at least 1; got 0"):
        spray(maps, labels, neighbours=0)
    with pytest.raises(ValueError, match=r"outlier_threshold must be a positive number"):
        SpraySettings(outlier_threshold=0)
    with pytest.raises(TypeError, match="neighbors"):
        spray(maps, labels, neighbors=5)


# --- the store ---------------------------------------------------------------------------------------------------


def test_written_analysis_reads_back_as_it_was() -> None:
    maps, _ = blobs((20, 14))
    result = spray({"input": maps}, np.array([1] * 20 + [3] * 14), method="gradient", min_samples=15)
    root = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    write_analysis(root, result, by="label")
    read = read_analysis(root)
    assert list(read) == [1]
    expected = result.classes[1].record()
    for name, value in expected.items():
        if name == "mean_map":
            np.testing.assert_allclose(read[1]["mean_map"]["input"], value["input"], rtol=1e-6)  # stored as float32
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(read[1][name], value)
        else:
            assert read[1][name] == value
    assert (read[1]["method"], read[1]["downsample"]) == ("gradient", 8)
    attrs = dict(root["analysis"].attrs)
    assert attrs["skipped"] == {"3": "14 samples, fewer than min_samples=15"} and attrs["by"] == "label"
    # a new analysis replaces the old one
    write_analysis(root, spray(maps[:20], np.zeros(20, dtype=int)))
    assert list(read_analysis(root)) == [0]
    assert read_analysis(zarr.open_group(zarr.storage.MemoryStore(), mode="w")) is None


def test_analyse_run_reads_the_store_in_chunks_and_writes_its_analysis(tmp_path) -> None:
    maps, group = blobs((40, 30, 30), noise=0.5)
    labels = np.array([0, 1] * 50)
    predictions = labels.copy()
    predictions[:4] = 1 - predictions[:4]
    table = digits_table(labels, predictions)
    table.loc[5, "label"] = pd.NA
    run = FakeRun(tmp_path / "run.zarr", np.zeros((100, 1, 8, 8)), {"gradient": maps, "lrp": -maps}, table, chunk=16)
    assert run.analysis is None
    result = analyse_run(run, by="label", neighbours=6)
    kept = table["label"].notna().to_numpy()
    stored = maps.astype(np.float32)  # the store keeps float32
    expected = spray(stored[kept], labels[kept], indices=np.flatnonzero(kept), neighbours=6)
    assert list(result.classes) == list(expected.classes) == [0, 1]
    for c in (0, 1):
        np.testing.assert_array_equal(result.classes[c].cluster, expected.classes[c].cluster)
        np.testing.assert_array_equal(result.classes[c].members, expected.classes[c].members)
        np.testing.assert_allclose(
            result.classes[c].mean_map["input"], expected.classes[c].mean_map["input"], atol=1e-12
        )
    assert 5 not in result.classes[1].members
    written = run.analysis
    assert list(written) == [0, 1] and written[0]["method"] == "gradient"
    assert written[1]["sizes"] == result.classes[1].sizes
    by_target = analyse_run(run, "lrp", write=False)
    assert by_target.method == "lrp" and 0 in by_target.classes[1].members  # sample 0 was predicted 1
    assert run.analysis[0]["method"] == "gradient"  # write=False leaves the store alone


def test_analyse_run_refuses_what_the_run_does_not_hold(tmp_path) -> None:
    maps, _ = blobs((12,))
    run = FakeRun(tmp_path / "run.zarr", np.zeros((12, 1, 8, 8)), {"gradient": maps}, digits_table(np.zeros(12, int)))
    with pytest.raises(ValueError, match=r"method 'lrp' is not in this run; its methods: gradient"):
        analyse_run(run, "lrp")
    with pytest.raises(ValueError, match=r"by='class' is not a grouping column; use one of: target, label, prediction"):
        analyse_run(run, by="class")
    run.table = digits_table(np.zeros(13, int))
    with pytest.raises(ValueError, match=r"the table's indices run beyond the 12 stored maps of input 'input'"):
        analyse_run(run)
