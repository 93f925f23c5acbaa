"""Reproduce the zoo's shipped weights.

Usage::

    python -m saliencelab.zoo.train digits_cnn [--out PATH]

Training is deterministic (fixed seed, deterministic algorithms, one
thread), so rerunning it on the same torch version rewrites the same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .architectures import DigitsCNN
from .datasets import dataset

__all__ = ["DEFAULT_WEIGHTS_DIR", "TrainConfig", "accuracy", "main", "train_digits_cnn"]

DEFAULT_WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"


class TrainConfig:
    """Hyper-parameters for :func:`train_digits_cnn`.

    Parameters
    ----------
    seed : int, default 0
        Seed for initialisation and batch shuffling.
    epochs : int, default 30
        Passes over the training split.
    batch_size : int, default 32
        Mini-batch size.
    lr : float, default 1e-3
        Adam learning rate.

    Examples
    --------
    >>> TrainConfig(epochs=2).epochs
    2
    """

    def __init__(self, seed: int = 0, epochs: int = 30, batch_size: int = 32, lr: float = 1e-3) -> None:
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr


def make_deterministic(seed: int) -> None:
    """Seed torch, force deterministic kernels and use a single thread.

    This changes process-wide torch settings; it is meant for the training
    script, not for library code.

    Examples
    --------
    >>> make_deterministic(0)  # doctest: +SKIP
    """
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(1)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Return the fraction of ``x`` that ``model`` classifies as ``y``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> accuracy(nn.Identity(), torch.eye(3), torch.tensor([0, 1, 1]))
    0.6666666666666666
    """
    return (model(x).argmax(dim=1) == y).double().mean().item()


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
) -> None:
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(x), generator=generator)
    for batch in order.split(config.batch_size):
        optimizer.zero_grad()
        loss_fn(model(x[batch]), y[batch]).backward()
        optimizer.step()


def train_digits_cnn(
    config: TrainConfig | None = None,
) -> tuple[DigitsCNN, float, float]:
    """Train :class:`DigitsCNN` on the digits training split with Adam.

    Returns
    -------
    model : DigitsCNN
        The trained model, in eval mode.
    train_accuracy, test_accuracy : float
        Accuracies on the two splits of ``dataset("digits")``.

    Examples
    --------
    >>> config = TrainConfig(epochs=1)
    >>> model, train_acc, test_acc = train_digits_cnn(config)  # doctest: +SKIP
    >>> 0.0 <= test_acc <= 1.0  # doctest: +SKIP
    True
    """
    config = config or TrainConfig()
    make_deterministic(config.seed)
    x_train, y_train, x_test, y_test = dataset("digits")
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in range(config.epochs):
        _train_epoch(model, optimizer, x_train, y_train, config, generator)
    model.eval()
    return model, accuracy(model, x_train, y_train), accuracy(model, x_test, y_test)


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """Write ``model``'s state dict to ``path`` as safetensors with ``metadata``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from torch import nn
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "w.safetensors"
    ...     save_weights(nn.Linear(2, 2), path, {"k": "v"})
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(path), metadata=metadata)
    path.chmod(0o644)  # safetensors creates the file owner-only


def _run_digits_cnn(out: Path | None) -> None:
    config = TrainConfig()
    model, train_acc, test_acc = train_digits_cnn(config)
    print(f"digits_cnn: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f}")
    path = out or DEFAULT_WEIGHTS_DIR / "digits_cnn.safetensors"
    metadata = {
        "model": "digits_cnn",
        "test_accuracy": f"{test_acc:.4f}",
        "train_accuracy": f"{train_acc:.4f}",
        "seed": str(config.seed),
        "epochs": str(config.epochs),
        "torch_version": torch.__version__,
    }
    save_weights(model, path, metadata)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: train a zoo model and write its weights.

    Examples
    --------
    >>> main(["digits_cnn", "--out", "/tmp/digits_cnn.safetensors"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["digits_cnn"])
    parser.add_argument("--out", type=Path, default=None, help="output .safetensors path")
    args = parser.parse_args(argv)
    _run_digits_cnn(args.out)


if __name__ == "__main__":
    main()
