"""dinucleotide_shuffle keeps dinucleotide counts and ends, draws uniformly, and rejects bad input clearly."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from saliencelab.genomics import dinucleotide_shuffle


def encode(sequence: str) -> np.ndarray:
    """One-hot ``(L, 4)`` float64 array of a string over A, C, G, T."""
    return np.eye(4)[["ACGT".index(base) for base in sequence]]


def decode(onehot: np.ndarray) -> str:
    return "".join("ACGT"[index] for index in onehot.argmax(axis=-1))


def random_sequence(length: int, seed: int, composition: tuple[float, ...] = (0.25,) * 4) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=length, p=composition))


def dinucleotide_counts(onehot: np.ndarray) -> np.ndarray:
    """``counts[..., a, b]``: how often base ``b`` follows base ``a`` (batched over leading axes)."""
    return np.einsum("...ia,...ib->...ab", onehot[..., :-1, :], onehot[..., 1:, :]).astype(np.int64)


def pairs(sequence: str) -> Counter[str]:
    return Counter(sequence[i : i + 2] for i in range(len(sequence) - 1))


def valid_shuffles(sequence: str) -> set[str]:
    """Every sequence with the same ends and dinucleotide counts as ``sequence``, by brute force."""
    middles = set(itertools.permutations(sequence[1:-1]))
    candidates = (sequence[0] + "".join(middle) + sequence[-1] for middle in middles)
    return {candidate for candidate in candidates if pairs(candidate) == pairs(sequence)}


@pytest.mark.parametrize(
    "sequence",
    [
        random_sequence(2, seed=0),
        random_sequence(3, seed=1),
        random_sequence(10, seed=2),
        random_sequence(200, seed=3),
        random_sequence(2000, seed=4, composition=(0.7, 0.05, 0.05, 0.2)),
        "A" * 50 + "C" + "A" * 50,
    ],
    ids=["L2", "L3", "L10", "L200", "L2000-skewed", "self-loops"],
)
def test_every_shuffle_keeps_the_dinucleotide_counts_and_both_ends(sequence):
    onehot = encode(sequence)
    shuffles = dinucleotide_shuffle(onehot, n=50, seed=0)
    assert shuffles.shape == (50, len(sequence), 4)
    assert np.isin(shuffles, (0.0, 1.0)).all() and (shuffles.sum(axis=-1) == 1).all()
    assert (dinucleotide_counts(shuffles) == dinucleotide_counts(onehot)).all()
    assert {decode(s)[0] for s in shuffles} == {sequence[0]}
    assert {decode(s)[-1] for s in shuffles} == {sequence[-1]}


@pytest.mark.parametrize("sequence", ["G", "TA", "CCCCCC"])
def test_a_sequence_with_one_possible_shuffle_comes_back_n_times(sequence):
    shuffles = dinucleotide_shuffle(encode(sequence), n=3)
    assert shuffles.shape == (3, len(sequence), 4)
    assert (shuffles == encode(sequence)).all()


def test_shuffles_differ_from_the_input_and_from_each_other():
    onehot = encode(random_sequence(100, seed=5))
    shuffles = dinucleotide_shuffle(onehot, n=200, seed=0)
    differing_positions = (shuffles != onehot).any(axis=-1).sum(axis=-1)
    assert (differing_positions > 0).sum() >= 195
    assert len({decode(s) for s in shuffles}) >= 195
    assert differing_positions.mean() > 50  # two random length-100 sequences differ at about 75 positions


@pytest.mark.parametrize(
    "sequence",
    ["AACAAGAC", "ACCGAACAG"],
    ids=["self-loops-12-valid", "three-last-exit-trees-24-valid"],
)
def test_shuffles_are_uniform_over_all_valid_sequences(sequence):
    # ACCGAACAG admits three last-exit trees of weights 2, 1, 1: picking a tree uniformly
    # (rather than by weight) would make the sequences of the heavier tree too rare.
    valid = valid_shuffles(sequence)
    assert len(valid) in (12, 24)
    draws = 200 * len(valid)
    seen = Counter(decode(s) for s in dinucleotide_shuffle(encode(sequence), n=draws, seed=1))
    assert set(seen) == valid
    frequencies = np.array([seen[s] for s in sorted(valid)])
    # Tolerance: about 200 draws each (standard deviation ~14); a chi-square p-value above 0.001
    # and no sequence more than 25 % away from its expected count.
    assert chisquare(frequencies).pvalue > 1e-3
    assert np.abs(frequencies / 200 - 1).max() < 0.25


def test_the_same_seed_gives_the_same_shuffles_and_another_seed_different_ones():
    onehot = encode(random_sequence(100, seed=6))
    first = dinucleotide_shuffle(onehot, n=5, seed=7)
    assert np.array_equal(first, dinucleotide_shuffle(onehot, n=5, seed=7))
    assert not np.array_equal(first, dinucleotide_shuffle(onehot, n=5, seed=8))
    assert not np.array_equal(
        dinucleotide_shuffle(onehot, n=5, seed=None), dinucleotide_shuffle(onehot, n=5, seed=None)
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int8, np.bool_])
def test_numpy_in_gives_numpy_out_of_the_same_dtype(dtype):
    onehot = encode("ACGTTGCAAC").astype(dtype)
    shuffles = dinucleotide_shuffle(onehot, n=4)
    assert type(shuffles) is np.ndarray and shuffles.dtype == dtype
    assert (dinucleotide_counts(shuffles) == dinucleotide_counts(onehot)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool])
def test_a_tensor_gives_a_tensor_of_the_same_dtype_and_device(dtype):
    onehot = encode("ACGTTGCAAC")
    shuffles = dinucleotide_shuffle(torch.tensor(onehot, dtype=dtype, requires_grad=dtype.is_floating_point), n=4)
    assert isinstance(shuffles, torch.Tensor) and shuffles.dtype == dtype and shuffles.device.type == "cpu"
    assert np.array_equal(shuffles.double().numpy(), dinucleotide_shuffle(onehot, n=4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_tensor_gives_a_cuda_tensor():
    onehot = torch.tensor(encode("ACGTTGCAAC"), dtype=torch.float32, device="cuda")
    shuffles = dinucleotide_shuffle(onehot, n=4)
    assert shuffles.device == onehot.device
    assert np.array_equal(shuffles.cpu().double().numpy(), dinucleotide_shuffle(encode("ACGTTGCAAC"), n=4))


def with_row(row: list[float]) -> np.ndarray:
    onehot = encode("ACGTAC")
    onehot[3] = row
    return onehot


@pytest.mark.parametrize(
    ("onehot", "n", "error", "match"),
    [
        ([[1, 0, 0, 0], [0, 1, 0, 0]], 2, TypeError, "numpy array or a torch tensor"),
        (np.array([["1", "0", "0", "0"]]), 2, TypeError, "bool, int or float dtype"),
        (np.stack([encode("ACGT")] * 3), 2, ValueError, "batch.*one sequence at a time"),
        (np.zeros(4), 2, ValueError, r"shape \(L, 4\).*1 dimension"),
        (np.eye(5), 2, ValueError, r"shape \(L, 4\).*\(5, 5\)"),
        (encode("ACGTAC").T, 2, ValueError, r"channels-first \(4, L\).*transpose"),
        (np.zeros((0, 4)), 2, ValueError, "empty"),
        (with_row([0, 0, 0, 0]), 2, ValueError, "all-zero row.*position 3.*N bases or padding"),
        (with_row([0.5, 0.5, 0, 0]), 2, ValueError, r"not one-hot: row 3 is \[0.5, 0.5, 0.0, 0.0\]"),
        (with_row([1, 1, 0, 0]), 2, ValueError, "not one-hot: row 3"),
        (with_row([np.nan, 0, 0, 1]), 2, ValueError, "not one-hot: row 3"),
        (encode("ACGTAC"), 0, ValueError, "n, the number of shuffles, must be at least 1; got 0"),
        (encode("ACGTAC"), 2.0, TypeError, "n, the number of shuffles, must be an int; got 2.0"),
        (encode("ACGTAC"), True, TypeError, "must be an int"),
    ],
    ids=[
        "list",
        "strings",
        "batch",
        "1-d",
        "five-columns",
        "channels-first",
        "empty",
        "all-zero-row",
        "fractional-row",
        "two-hot-row",
        "nan-row",
        "n-zero",
        "n-float",
        "n-bool",
    ],
)
def test_bad_input_is_rejected_with_a_message_that_names_the_problem(onehot, n, error, match):
    with pytest.raises(error, match=match):
        dinucleotide_shuffle(onehot, n=n)


def test_a_tensor_with_an_all_zero_row_is_rejected_like_an_array():
    with pytest.raises(ValueError, match="all-zero row"):
        dinucleotide_shuffle(torch.tensor(with_row([0, 0, 0, 0])), n=2)
