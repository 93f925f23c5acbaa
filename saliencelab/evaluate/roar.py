"""ROAR: RemOve And Retrain (Hooker et al. 2019) on the zoo's trained models and their data sets.

Deleting pixels from a test image also moves it off the training distribution,
so a score drop may come from the artefact, not from lost evidence. ROAR
retrains: a zoo model is trained on its original data, a method explains every
training and test image for its true class, the top-ranked fraction of pixels of
every image is replaced by the training set's per-channel mean, and a fresh model
is trained on the degraded training set and tested on the degraded test set. An
informative ranking makes the accuracy fall faster than a random ranking does.

Training follows the zoo's recipe for the model (:mod:`saliencelab.zoo.recipes`
and :mod:`saliencelab.zoo.train`: its architecture, Adam, cross-entropy, seeded
shuffling); initial weights are drawn from ``seed`` without touching the global
RNG state or any process-wide setting. With ``digits_cnn``'s 30 epochs a model
trains in about 25 s on one CPU thread; the default run trains 11.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import torch
from torch.nn import Module
from tqdm.auto import tqdm

from saliencelab.core.aggregate import aggregate_channels
from saliencelab.core.guard import preserved
from saliencelab.core.sampling import generator
from saliencelab.evaluate.explainers import as_explainer, method_name
from saliencelab.evaluate.faithfulness import rank
from saliencelab.zoo.datasets import dataset
from saliencelab.zoo.recipes import TrainConfig, recipe
from saliencelab.zoo.train import _train_epoch, accuracy

__all__ = ["remove_top", "roar"]

DEFAULT_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def roar(
    method: str | Callable,
    *,
    method_options: Mapping[str, Any] | None = None,
    model: str = "digits_cnn",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    epochs: int | None = None,
    seed: int = 0,
    random_control: bool = True,
    aggregate: str = "sum",
    progress: bool | None = None,
) -> pd.DataFrame:
    """Test accuracy of models retrained without each fraction of the top-ranked pixels.

    Parameters
    ----------
    method, method_options:
        A method name from :func:`saliencelab.available_methods` with its options,
        or a callable ``(model, inputs, target) -> tensor``.
    model:
        A trained zoo model (``"digits_cnn"``, ``"lfw_cnn"``): its architecture,
        data set (true labels) and training recipe are used.
    fractions:
        Fractions of each image's pixels to remove, in ``(0, 1]``; ``round(f·H·W)`` pixels.
    epochs:
        Training epochs of every model; None: the recipe's (30 for ``digits_cnn``).
    seed:
        Seed of every model's initial weights and batch order, and of the random ranking.
    random_control:
        Also retrain with a random ranking of the pixels (the control).
    aggregate:
        Channel reduction that ranks pixels (signed ``"sum"``: positive evidence first).
    progress:
        Show a progress bar over the trainings (None: on a terminal).

    Returns
    -------
    pandas.DataFrame
        Columns ``ranking`` (the method's name or ``"random"``), ``fraction`` and
        ``test_accuracy``; fraction 0 is the model trained on the original data.

    Example
    -------
    >>> table = roar("gradient", fractions=(1.0,), epochs=1, random_control=False)  # doctest: +SKIP
    >>> table[["ranking", "fraction"]].values.tolist()  # doctest: +SKIP
    [['gradient', 0.0], ['gradient', 1.0]]
    >>> round(table.test_accuracy[1] * 450) in (43, 44, 45, 46)  # doctest: +SKIP
    True

    (Skipped in the doctests: it trains two models; ``tests/evaluate/test_roar.py`` runs it.)
    """
    plan = recipe(model)
    config = replace(plan.config("true"), seed=seed)
    if epochs is not None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"epochs must be a positive int; got {epochs!r}")
        config = replace(config, epochs=epochs)
    fractions = [float(f) for f in fractions]
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be a non-empty sequence of fractions in (0, 1]; got {fractions!r}")
    explain_fn = as_explainer(method, **(method_options or {}))
    x_train, y_train, x_test, y_test = dataset(plan.dataset)
    fill = x_train.mean(dim=(0, 2, 3), keepdim=True)
    trained = fit(plan.architecture, x_train, y_train, config)
    base = accuracy(trained, x_test, y_test)
    splits = ((x_train, y_train), (x_test, y_test))
    rankings = {method_name(method): [_ranks(explain_fn, trained, x, y, aggregate) for x, y in splits]}
    if random_control:
        draw = generator(seed, x_train.device)
        rankings["random"] = [rank(torch.rand(x.shape[0], x[0, 0].numel(), generator=draw)).view(
            x.shape[0], *x.shape[2:]) for x, _ in splits]
    rows = []
    bar = tqdm(total=len(rankings) * len(fractions), desc="roar", leave=False, disable=not progress)
    for name, (train_ranks, test_ranks) in rankings.items():
        rows.append({"ranking": name, "fraction": 0.0, "test_accuracy": base})
        for fraction in fractions:
            retrained = fit(plan.architecture, remove_top(x_train, train_ranks, fraction, fill), y_train, config)
            score = accuracy(retrained, remove_top(x_test, test_ranks, fraction, fill), y_test)
            rows.append({"ranking": name, "fraction": fraction, "test_accuracy": score})
            bar.update()
    bar.close()
    return pd.DataFrame(rows, columns=["ranking", "fraction", "test_accuracy"])


def remove_top(images: torch.Tensor, ranks: torch.Tensor, fraction: float, fill: torch.Tensor) -> torch.Tensor:
    """Replace the first ``round(fraction·H·W)`` pixels of each image's ranking (all channels) by ``fill``.

    ``ranks`` ``(N, H, W)`` holds each pixel's position in its image's order (0 first).

    Example
    -------
    >>> images = torch.arange(4.0).view(1, 1, 2, 2)
    >>> ranks = torch.tensor([[[3, 0], [1, 2]]])
    >>> remove_top(images, ranks, 0.5, torch.tensor(-1.0)).view(-1).tolist()
    [0.0, -1.0, -1.0, 3.0]
    """
    count = round(fraction * ranks[0].numel())
    return torch.where((ranks < count).unsqueeze(1), fill, images)


def fit(architecture: Callable[[], Module], x: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> Module:
    """A fresh ``architecture()`` trained on ``(x, y)`` as :func:`saliencelab.zoo.train.train` does, in eval mode.

    Unlike ``train`` it sets no process-wide flag (thread count, deterministic
    algorithms) and leaves the global RNG state as it was.

    Example
    -------
    >>> from saliencelab.zoo.architectures import DigitsCNN
    >>> x, y = torch.zeros(8, 1, 8, 8), torch.arange(8) % 2
    >>> fit(DigitsCNN, x, y, TrainConfig(epochs=1)).training
    False
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = architecture()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(config.epochs):
        _train_epoch(model, optimizer, x, y, config, shuffle)
    return model.eval()


def _ranks(
    explain_fn: Callable, model: Module, images: torch.Tensor, labels: torch.Tensor, aggregate: str
) -> torch.Tensor:
    """Each pixel's position in its image's ranking by the attribution of the true class, ``(N, H, W)``."""
    with preserved(model):
        maps = aggregate_channels(explain_fn(model, images, labels), aggregate)
    if maps.shape != (images.shape[0], *images.shape[2:]) or not torch.isfinite(maps).all():
        raise ValueError(
            f"the method returned attributions that give maps of shape {tuple(maps.shape)} (or non-finite values) "
            f"for images of shape {tuple(images.shape)}; it must return finite maps at the images' size"
        )
    return rank(maps.flatten(1)).view_as(maps)
