"""Dinucleotide-preserving shuffles of one-hot DNA, the usual references for DeepSHAP on genomics models.

DeepLIFT and DeepSHAP explain a prediction relative to reference inputs (Shrikumar et al., 2017;
Lundberg & Lee, 2017). For a model of one-hot DNA, an all-zero or uniform reference is far from
any real sequence. The usual choice instead is a set of shuffles of the input that keep its exact
dinucleotide (adjacent pair) counts: they keep the base composition and GC/CpG content, but
destroy the motifs the model has learned, so the attribution highlights the motifs themselves.

The shuffle is the Altschul–Erickson algorithm (Altschul & Erickson, 1985): a uniformly random
Eulerian path, from the first base to the last, through the graph whose vertices are the four
bases and whose edges are the sequence's dinucleotides.

Example
-------
>>> import numpy as np
>>> onehot = np.eye(4)[[0, 1, 0, 1, 2, 3, 0, 1]]  # ACACGTAC
>>> dinucleotide_shuffle(onehot, n=5).shape
(5, 8, 4)
"""

from __future__ import annotations

import itertools
import math
from typing import TypeVar

import numpy as np
import torch

OneHot = TypeVar("OneHot", np.ndarray, torch.Tensor)

_BASES = 4
"""Size of the alphabet: the columns A, C, G, T."""

_LAST_IN_ORDER = 2.0
"""Sort key (above any draw from ``random()``) that puts a vertex's last-exit edge last."""


def dinucleotide_shuffle(onehot: OneHot, n: int, seed: int | None = 0) -> OneHot:
    """Shuffle a one-hot DNA sequence ``n`` times, keeping its dinucleotide counts and its ends.

    Each shuffle is drawn uniformly from all sequences with the same first base and the same
    count of each of the 16 dinucleotides as ``onehot`` (and hence the same base composition
    and the same last base), with the Altschul–Erickson algorithm.

    Parameters
    ----------
    onehot : numpy.ndarray or torch.Tensor
        One sequence of shape ``(L, 4)``, columns A, C, G, T, every row exactly one-hot
        (a single 1 and three 0s), any float, int or bool dtype.
    n : int
        Number of shuffles, at least 1.
    seed : int or None, default 0
        Seed of :func:`numpy.random.default_rng`: the same seed gives the same shuffles.
        ``None`` draws fresh randomness from the operating system.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The shuffles, shape ``(n, L, 4)``, of the input's type and dtype (and, for a tensor,
        device). A sequence with a single possible shuffle (length 1 or 2, or a single
        distinct base) comes back as ``n`` copies of itself.

    Raises
    ------
    TypeError
        If ``onehot`` is neither a numpy array nor a torch tensor, or has a non-numeric dtype,
        or ``n`` is not an integer.
    ValueError
        If ``onehot`` is not of shape ``(L, 4)`` with ``L >= 1`` (a batch ``(N, L, 4)`` included:
        shuffle one sequence at a time), if a row is not one-hot (all-zero rows from N bases or
        padding included), or if ``n < 1``.

    Notes
    -----
    Let the bases be the vertices of a graph with one edge ``a -> b`` for each dinucleotide ``ab``
    of the sequence, and call the final base the root. Every base other than the root that has
    out-edges picks one of them as its last exit, such that the last exits form a tree pointing
    to the root. The remaining out-edges of each base are put in random order, followed by its
    last exit. Walking from the first base, always leaving a base by its next unused out-edge,
    then uses every edge once and ends at the root: a new sequence with the same dinucleotides.

    Every such sequence arises from exactly one tree and one set of edge orders. A tree whose
    last exit from ``a`` goes to ``b`` leaves room for ``count(ab)`` times as many orders of
    the other edges, so a tree is drawn with probability proportional to the product of the
    counts of its last exits, which makes the shuffles uniform. With four bases there are at
    most 4**3 candidate trees, so they are enumerated and weighted exactly (no rejection loop).

    References
    ----------
    S. F. Altschul and B. W. Erickson, "Significance of nucleotide sequence alignments: a method
    for random sequence permutation that preserves dinucleotide and codon usage", Molecular
    Biology and Evolution 2(6), 1985.

    A. Shrikumar, P. Greenside and A. Kundaje, "Learning important features through propagating
    activation differences", ICML 2017.

    S. M. Lundberg and S.-I. Lee, "A unified approach to interpreting model predictions",
    NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> onehot = np.eye(4)[[0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2]]  # AACGTTGCAACG
    >>> shuffles = dinucleotide_shuffle(onehot, n=3, seed=0)
    >>> shuffles.shape
    (3, 12, 4)

    ``counts[a, b]`` is how often base ``b`` follows base ``a``; every shuffle has the same:

    >>> counts = onehot[:-1].T @ onehot[1:]
    >>> counts.astype(int)
    array([[2, 2, 0, 0],
           [1, 0, 2, 0],
           [0, 1, 0, 1],
           [0, 0, 1, 1]])
    >>> all(np.array_equal(s[:-1].T @ s[1:], counts) for s in shuffles)
    True
    >>> bool((shuffles[:, 0] == onehot[0]).all() and (shuffles[:, -1] == onehot[-1]).all())
    True

    A tensor gives a tensor of the same dtype and device:

    >>> import torch
    >>> dinucleotide_shuffle(torch.tensor(onehot, dtype=torch.float16), n=2).dtype
    torch.float16
    """
    values = _as_numpy(onehot)
    _check_shape(values.shape)
    _check_count(n)
    walks = _shuffle_bases(_bases(values), n, np.random.default_rng(seed))
    if isinstance(onehot, torch.Tensor):
        encoded = torch.nn.functional.one_hot(torch.from_numpy(walks), _BASES)
        return encoded.to(device=onehot.device, dtype=onehot.dtype)
    return np.eye(_BASES, dtype=values.dtype)[walks]


def _as_numpy(onehot: np.ndarray | torch.Tensor) -> np.ndarray:
    """The values of ``onehot`` as a numpy array on the CPU (float64 for a tensor)."""
    if isinstance(onehot, torch.Tensor):
        return onehot.detach().to(device="cpu", dtype=torch.float64).numpy()
    if not isinstance(onehot, np.ndarray):
        raise TypeError(
            f"onehot must be a numpy array or a torch tensor of shape (L, 4); got {type(onehot).__name__}: "
            "convert it first, e.g. with numpy.asarray(onehot)"
        )
    if onehot.dtype.kind not in "biuf":
        raise TypeError(f"onehot must have a bool, int or float dtype; got {onehot.dtype}")
    return onehot


def _check_shape(shape: tuple[int, ...]) -> None:
    """Raise a ``ValueError`` unless ``shape`` is ``(L, 4)`` with ``L >= 1``."""
    if len(shape) == 3:
        raise ValueError(
            f"onehot has shape {shape}, a batch of sequences, but dinucleotide_shuffle takes one sequence of shape "
            "(L, 4): shuffle one sequence at a time, e.g. loop [dinucleotide_shuffle(s, n) for s in batch]"
        )
    if len(shape) != 2:
        raise ValueError(f"onehot must have shape (L, 4), one sequence; got {len(shape)} dimension(s): {shape}")
    if shape[1] != _BASES:
        hint = ": it looks channels-first (4, L), pass its transpose" if shape[0] == _BASES else ""
        raise ValueError(f"onehot must have shape (L, 4) with the A, C, G, T columns last; got {shape}{hint}")
    if shape[0] < 1:
        raise ValueError(f"onehot is empty (shape {shape}); give a sequence of at least one base")


def _check_count(n: int) -> None:
    """Raise unless ``n`` is an integer of at least 1."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"n, the number of shuffles, must be an int; got {n!r}")
    if n < 1:
        raise ValueError(f"n, the number of shuffles, must be at least 1; got {n}")


def _bases(values: np.ndarray) -> np.ndarray:
    """Base indices ``(L,)`` (0-3 for A, C, G, T) of a one-hot ``(L, 4)`` array, checking it is one-hot."""
    binary = ((values == 0) | (values == 1)).all(axis=1)
    ones = (values == 1).sum(axis=1)
    empty = np.flatnonzero(binary & (ones == 0))
    if empty.size:
        raise ValueError(
            f"onehot has {empty.size} all-zero row(s), the first at position {empty[0]}: N bases or padding? "
            "Every position must be exactly one of A, C, G, T: trim the padding, or drop or replace the N bases"
        )
    invalid = np.flatnonzero(~binary | (ones != 1))
    if invalid.size:
        row = invalid[0]
        raise ValueError(
            f"onehot is not one-hot: row {row} is {values[row].tolist()} ({invalid.size} such row(s)); "
            "every row must hold a single 1 and three 0s"
        )
    return values.argmax(axis=1)


def _shuffle_bases(bases: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` dinucleotide shuffles ``(n, L)`` of the base indices ``bases`` ``(L,)``."""
    counts = np.zeros((_BASES, _BASES), dtype=np.int64)
    np.add.at(counts, (bases[:-1], bases[1:]), 1)
    trees, weights = _last_exit_trees(counts, root=int(bases[-1]))
    last_exits = trees[rng.choice(len(trees), size=n, p=weights / weights.sum())]
    out_degree = counts.sum(axis=1)
    offsets = np.cumsum(out_degree) - out_degree
    return _walk(_exit_orders(bases, last_exits, rng), offsets, int(bases[0]), len(bases))


def _last_exit_trees(counts: np.ndarray, root: int) -> tuple[np.ndarray, np.ndarray]:
    """Every choice of last exits that forms a tree pointing to ``root``, and its weight.

    Returns the trees ``(T, 4)``, where ``trees[t, a]`` is the base that the last exit from
    ``a`` leads to (-1 for the root and for bases without out-edges), and their weights ``(T,)``:
    the product over ``a`` of ``counts[a, trees[t, a]]``.
    """
    exiting = [base for base in range(_BASES) if base != root and counts[base].any()]
    trees, weights = [], []
    for targets in itertools.product(*(np.flatnonzero(counts[base]) for base in exiting)):
        parent = dict(zip(exiting, targets, strict=True))
        if all(_reaches(base, parent, root) for base in exiting):
            tree = np.full(_BASES, -1)
            tree[exiting] = targets
            trees.append(tree)
            weights.append(math.prod(int(counts[base, target]) for base, target in parent.items()))
    return np.stack(trees), np.asarray(weights, dtype=np.float64)


def _reaches(base: int, parent: dict[int, int], root: int) -> bool:
    """Whether following ``parent`` from ``base`` gets to ``root`` (rather than round a cycle)."""
    for _ in parent:
        base = parent[base]
        if base == root:
            return True
    return False


def _exit_orders(bases: np.ndarray, last_exits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The order in which each shuffle leaves each base: ``(n, L - 1)`` successor bases.

    Columns are grouped by the base being left (A's out-edges first, then C's, ...). Within a
    group the out-edges are in random order, except that the last exit ``last_exits[:, base]`` of
    a base other than the final one comes last.
    """
    n = len(last_exits)
    by_source = np.argsort(bases[:-1], kind="stable")
    successors = bases[1:][by_source]
    sources = bases[:-1][by_source]
    exits = np.empty((n, len(successors)), dtype=np.int64)
    for base in np.unique(sources):
        columns = np.flatnonzero(sources == base)
        group = successors[columns]
        keys = rng.random((n, len(group)))
        if base != bases[-1]:
            chosen = np.argmax(group == last_exits[:, base, None], axis=1)
            keys[np.arange(n), chosen] = _LAST_IN_ORDER
        exits[:, columns] = group[np.argsort(keys, axis=1)]
    return exits


def _walk(exits: np.ndarray, offsets: np.ndarray, first: int, length: int) -> np.ndarray:
    """Walk each shuffle's graph from ``first``, leaving each base by its next unused exit.

    ``exits[:, offsets[b]:]`` holds the exits of base ``b`` in order (see :func:`_exit_orders`).
    Returns the visited bases ``(n, length)``.
    """
    n = len(exits)
    rows = np.arange(n)
    used = np.zeros((n, _BASES), dtype=np.int64)
    walks = np.empty((n, length), dtype=np.int64)
    walks[:, 0] = first
    for step in range(1, length):
        current = walks[:, step - 1]
        walks[:, step] = exits[rows, offsets[current] + used[rows, current]]
        used[rows, current] += 1
    return walks
