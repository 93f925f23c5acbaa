"""Reproduce the zoo's shipped weights.

Usage::

    python -m saliencelab.zoo.train MODEL [--labels {true,shuffled}] [--out PATH]   # MODEL: a trained zoo model
    python -m saliencelab.zoo.train all   # every shipped file, in saliencelab/zoo/weights/

Training is deterministic (fixed seed, deterministic algorithms, one
thread), so rerunning it on the same torch version and a CPU whose kernels
match (``cpu_kernels`` in the metadata, :func:`kernel_signature`) rewrites the
same tensors and metadata. On another CPU, MKL and oneDNN pick other kernels
that sum in another order, and training lands on other weights of the same
quality (the shipped files were built on an Intel Xeon; on an AMD EPYC with
AVX2 the rebuilt test accuracies were 0.9844, 0.1067, 1.0 and 0.48 against the
shipped 0.9867, 0.0889, 1.0 and 0.46). The file's bytes may differ even where
the tensors do not: safetensors keeps the metadata in a hash map, so the order
of its keys in the header varies from run to run.

Rebuilding all eight files (``all``) takes about 110 s on one thread, 60 s
of it for ``cluttered_digits_cnn``, 6 s for the two ``breast_cancer_mlp`` files and 5 s for
``watermarked_digits_cnn`` (both built on an AMD EPYC, ``cpu_kernels`` "AuthenticAMD AVX512").
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from .datasets import LABEL_SEED, LABELS, dataset
from .recipes import RECIPES, TrainConfig, recipe, weights_name

__all__ = [
    "DEFAULT_WEIGHTS_DIR",
    "TrainConfig",
    "accuracy",
    "kernel_signature",
    "main",
    "make_deterministic",
    "save_weights",
    "train",
]

DEFAULT_WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"


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


def train(
    name: str, labels: str = "true", config: TrainConfig | None = None, progress: bool = False
) -> tuple[nn.Module, float, float]:
    """Train the zoo model ``name`` on its data set's training split with Adam.

    Parameters
    ----------
    name : str
        A trained zoo model (``"digits_cnn"``, ``"lfw_cnn"``, ``"breast_cancer_mlp"``, ...).
    labels : {"true", "shuffled"}, default "true"
        Which training labels to fit: ``dataset(..., labels=labels)``.
    config : TrainConfig, optional
        Hyper-parameters; the model's recipe for ``labels`` by default (the
        ones that made the shipped weights).
    progress : bool, default False
        Show a progress bar over the epochs.

    Returns
    -------
    model : torch.nn.Module
        The trained model, in eval mode.
    train_accuracy, test_accuracy : float
        Accuracy on the training split with the labels it was trained on, and
        on the test split with the true labels.

    Raises
    ------
    ValueError
        If ``name`` has no recipe or ``labels`` is not one of its versions.

    Examples
    --------
    >>> model, train_acc, test_acc = train("lfw_cnn", config=TrainConfig(epochs=1))  # doctest: +SKIP
    >>> 0.0 <= test_acc <= 1.0  # doctest: +SKIP
    True
    """
    plan = recipe(name)
    config = config or plan.config(labels)
    make_deterministic(config.seed)
    x_train, y_train, x_test, y_test = dataset(plan.dataset, labels=labels)
    model = plan.architecture()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    for _ in tqdm(range(config.epochs), desc=f"{name} ({labels} labels)", disable=not progress):
        _train_epoch(model, optimizer, x_train, y_train, config, generator)
    model.eval()
    return model, accuracy(model, x_train, y_train), accuracy(model, x_test, y_test)


def kernel_signature() -> str:
    """The CPU vendor and the instruction set torch's CPU kernels use here.

    Float32 training reproduces bit for bit only where both match: MKL and
    oneDNN choose their kernels, and so the order of their sums, by both.

    Examples
    --------
    >>> vendor, isa = kernel_signature().rsplit(" ", 1)
    >>> isa == torch.backends.cpu.get_cpu_capability()
    True
    """
    vendor = platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            vendor = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("vendor_id")), vendor)
    except OSError:
        pass
    return f"{vendor} {torch.backends.cpu.get_cpu_capability()}"


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


def _run(name: str, labels: str, out: Path | None) -> None:
    config = recipe(name).config(labels)
    start = time.perf_counter()
    model, train_acc, test_acc = train(name, labels, config, progress=True)
    seconds = time.perf_counter() - start
    stem = weights_name(name, labels)
    print(f"{stem}: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} ({seconds:.1f} s)")
    path = out or DEFAULT_WEIGHTS_DIR / f"{stem}.safetensors"
    metadata = {
        "model": name,
        "labels": labels,
        "dataset": recipe(name).dataset,
        "test_accuracy": f"{test_acc:.4f}",
        "train_accuracy": f"{train_acc:.4f}",
        "seed": str(config.seed),
        "epochs": str(config.epochs),
        "batch_size": str(config.batch_size),
        "lr": str(config.lr),
        "torch_version": torch.__version__,
        "cpu_kernels": kernel_signature(),
    }
    if labels == "shuffled":
        metadata["label_seed"] = str(LABEL_SEED)
    save_weights(model, path, metadata)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: train a zoo model and write its weights.

    Examples
    --------
    >>> main(["digits_cnn", "--out", "/tmp/digits_cnn.safetensors"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=[*sorted(RECIPES), "all"], help="a trained zoo model, or all of them")
    parser.add_argument("--labels", choices=LABELS, default="true", help="train on the true or the shuffled labels")
    parser.add_argument("--out", type=Path, default=None, help="output .safetensors path (one model only)")
    args = parser.parse_args(argv)
    if args.model != "all":
        _run(args.model, args.labels, args.out)
        return
    if args.out is not None:
        parser.error("--out names one file; 'all' writes every model to the package's weights folder")
    for name, plan in RECIPES.items():
        for labels in plan.configs:
            _run(name, labels, None)


if __name__ == "__main__":
    main()
