"""The command line: ``saliencelab explain``, ``sanity``, ``axioms``, ``run``, ``report``, ``explore``, ``methods``,
``demo``.

Thin: it parses arguments, calls the library (:mod:`saliencelab.io` for files)
and prints. A user's mistake ends with one ``error: ...`` line on stderr, no
traceback, and an exit status that scripts can test; :mod:`saliencelab.io.errors`
lists them (3 missing, unreadable or refused file, 4 SPEC that does not load,
5 weights that do not fit, 6 input the model cannot take, 7 unknown method, 8 bad
option, 9 unsupported operation, 10 output that cannot be written; 2 is a
malformed command line), and so does ``saliencelab explain --help``. Output paths
are checked before anything is loaded, and results are written all or nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path

import typer
from typer.core import TyperCommand

from saliencelab.io.errors import EXIT_CODES, UserError

app = typer.Typer(
    help="Attribute PyTorch predictions to their inputs and check the explanations.", no_args_is_help=True
)

_MULTI_VALUE = frozenset({"--input", "-i", "--method", "-m", "--option", "-o", "--size", "--mean", "--std"})


def spread_values(args: Sequence[str], flags: frozenset[str] = _MULTI_VALUE) -> list[str]:
    """Let a list option take several values after one flag: ``--input a b`` becomes ``--input a --input b``.

    A value ends at the next token that starts with ``-`` and is not a number, or at ``--``.

    Example
    -------
    >>> spread_values(["--input", "a.png", "b.png", "--mean", "-0.5", "0.5", "--out", "x"])
    ['--input', 'a.png', '--input', 'b.png', '--mean', '-0.5', '--mean', '0.5', '--out', 'x']
    """
    spread: list[str] = []
    flag = None
    for i, token in enumerate(args):
        if token == "--":
            return spread + list(args[i:])
        if token.startswith("-") and not _is_number(token):
            flag = token if token in flags else None
            spread.append(token)
        elif flag is not None and spread[-1] != flag:
            spread += [flag, token]
        else:
            spread.append(token)
    return spread


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


class _SpreadCommand(TyperCommand):
    """A command whose list options take several values after one flag (see :func:`spread_values`)."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_values(args))


class Format(str, Enum):
    """Raw attributions: ``.npy`` only, or ``.npy`` and ``.pt``."""

    npy = "npy"
    pt = "pt"


_EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in sorted(EXIT_CODES.items())) + "."

_MODEL = typer.Option(
    ...,
    "--model",
    metavar="SPEC",
    help="zoo:NAME, module:factory, path/to/file.py:factory, a TorchScript file, or a torch.export .pt2 file "
    "(export it with a dynamic batch dimension).",
)
_INPUTS = typer.Option(
    ..., "--input", "-i", metavar="FILE...", help="Images (png, jpg, ...) or .npy/.pt tensors (C,H,W) or (N,C,H,W)."
)
_METHODS = typer.Option(
    ..., "--method", "-m", metavar="NAME...", help="Methods (see `saliencelab methods`); a,b also works."
)
_TARGET = typer.Option("argmax", "--target", metavar="INT|argmax", help="Class to explain.")
_OPTIONS = typer.Option(
    [],
    "--option",
    "-o",
    metavar="KEY=VALUE...",
    help="Method options (int, float, bool, JSON or text), e.g. steps=64; METHOD.KEY=VALUE for one method only.",
)
_SIZE = typer.Option(
    [], "--size", metavar="H W | N", help="Resize images to H x W (N: N x N). Tensor files are used as they are."
)
_MEAN = typer.Option([], "--mean", metavar="M...", help="Normalise images: subtract (1 or C values).")
_STD = typer.Option([], "--std", metavar="S...", help="Normalise images: divide (1 or C values).")
_GREY = typer.Option(
    None, "--grey/--rgb", help="Read images in grey or RGB (default: what the model's first convolution takes)."
)
_WEIGHTS = typer.Option(None, "--weights", help="A state dict (torch.save or .safetensors) for the model.")


@app.command(cls=_SpreadCommand, epilog=_EXIT_HELP)
def explain(
    model: str = _MODEL,
    inputs: list[Path] = _INPUTS,
    methods: list[str] = _METHODS,
    target: str = _TARGET,
    baseline: str = typer.Option(
        None,
        "--baseline",
        metavar="PRESET|NUMBER|FILE",
        help="Reference input for the chosen methods that take one: zeros, min, mean, blur, uniform, a number, "
        "or a .npy/.pt file.",
    ),
    option: list[str] = _OPTIONS,
    out: Path = typer.Option(Path("saliencelab-out"), "--out", help="Folder for the results: OUT/<input>/<method>.*"),
    size: list[int] = _SIZE,
    mean: list[float] = _MEAN,
    std: list[float] = _STD,
    grey: bool = _GREY,
    weights: Path = _WEIGHTS,
    fmt: Format = typer.Option(Format.npy, "--format", help="Raw attributions as .npy, or .npy and .pt."),
    report: Path = typer.Option(
        None, "--report", metavar="DIR", help="Also write an HTML report (maps, checks, curves) for these inputs."
    ),
) -> None:
    """Explain the model's predictions on image or tensor files with one or more methods.

    Writes OUT/<input>/<method>.npy (the attributions, the input's shape) and
    <method>.png (the overlay on the input), and prints one row per method and
    input: the target, the seconds the method took and its largest completeness
    error (delta).
    """
    from saliencelab import io

    with _user_errors():
        io.check_output_folder(out, "--out")
        if report is not None:
            io.check_output_folder(report, "--report")
        chosen = io.check_methods(methods)
        options = io.method_options(option, chosen)
        the_target, the_baseline = io.parse_target(target), io.parse_baseline(baseline)
        net = io.load_model(model, weights)
        loaded = io.load_inputs(inputs, net, grey=grey, size=_size(size), mean=mean or None, std=std or None)
        formats = ("npy", "pt") if fmt is Format.pt else ("npy",)
        rows = io.explain_inputs(
            net, loaded, chosen, out, target=the_target, baseline=the_baseline, options=options, formats=formats
        )
        typer.echo(f"{'method':<24}{'input':<24}{'target':>8}{'seconds':>10}{'delta':>11}")
        for row in rows:
            typer.echo(
                f"{row.method:<24}{row.input:<24}{_targets(row.target):>8}{row.seconds:>10.3f}{_delta(row.delta):>11}"
            )
        if report is not None:
            with io.staged_folder(report) as stage:
                io.write_input_report(net, loaded, chosen, stage, target=the_target, options=options)
    typer.echo(f"results: {out}")
    if report is not None:
        typer.echo(f"report: {report / 'index.html'}")


@app.command(cls=_SpreadCommand, epilog=_EXIT_HELP)
def sanity(
    model: str = _MODEL,
    inputs: list[Path] = _INPUTS,
    methods: list[str] = _METHODS,
    target: str = _TARGET,
    option: list[str] = _OPTIONS,
    mode: str = typer.Option("cascading", "--mode", help="cascading (top k layers) or independent (k-th layer)."),
    similarity: str = typer.Option(
        "spearman_abs", "--similarity", help="spearman_abs, spearman, pearson, ssim or hog (saliencelab.evaluate)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the re-initialised weights."),
    shuffled: str = typer.Option(
        None, "--shuffled", metavar="SPEC", help="The same model trained on shuffled labels: adds data randomisation."
    ),
    out: Path = typer.Option(None, "--out", help="Also write the table to this CSV file."),
    size: list[int] = _SIZE,
    mean: list[float] = _MEAN,
    std: list[float] = _STD,
    grey: bool = _GREY,
    weights: Path = _WEIGHTS,
) -> None:
    """Sanity checks (Adebayo et al. 2018): how similar each method's maps stay as the model's layers are randomised.

    Layers are re-initialised from the output down; a method that explains the
    model gives maps whose similarity to the trained model's falls (gradients and
    Grad-CAM do, Guided Backprop does not). Prints one row per step.
    """
    from saliencelab import io

    with _user_errors():
        if out is not None:
            io.check_output_file(out, "--out")
        chosen = io.check_methods(methods)
        options = io.method_options(option, chosen)
        the_target = io.parse_target(target)
        net = io.load_model(model, weights)
        twin = io.load_model(shuffled) if shuffled is not None else None
        loaded = io.load_inputs(inputs, net, grey=grey, size=_size(size), mean=mean or None, std=std or None)
        table = io.sanity_table(
            net, loaded, chosen, target=the_target, options=options, mode=mode, similarity=similarity, seed=seed,
            shuffled=twin,
        )  # fmt: skip
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo("\nverdicts (pass: the 95% interval of the mean similarity lies below 0.5; fail: above):")
    typer.echo(table.attrs["verdicts"].to_string(index=False))
    if out is not None:
        table.to_csv(out, index=False)
        typer.echo(f"table: {out}")


@app.command(cls=_SpreadCommand, epilog=_EXIT_HELP)
def axioms(
    methods: list[str] = _METHODS,
    option: list[str] = _OPTIONS,
    seed: int = typer.Option(0, "--seed", help="Seed of the random witness networks and inputs."),
    out: Path = typer.Option(None, "--out", help="Also write the measured values to this CSV file."),
) -> None:
    """Check each method's properties (sensitivity, completeness, implementation invariance, ...) on witness networks.

    Prints pass, FAIL, or n/a (the method cannot run on that witness) for every
    property and method; the measured value of each check goes to --out.
    """
    from saliencelab import evaluate, io

    with _user_errors():
        if out is not None:
            io.check_output_file(out, "--out")
        chosen = io.check_methods(methods)
        options = io.method_options(option, chosen)
        with io.method_errors(", ".join(chosen)):
            table = evaluate.axiom_table([(method, options[method]) for method in chosen], seed=seed)
    cells = table.map(lambda passed: "n/a" if passed is None else ("pass" if passed else "FAIL"))
    typer.echo(cells.to_string())
    if out is not None:
        table.attrs["measured"].to_csv(out)
        typer.echo(f"measured: {out}")


@app.command("run", cls=_SpreadCommand, epilog=_EXIT_HELP)
def run_data(
    data: str = typer.Option(..., "--data", metavar="NAME|FOLDER", help="A zoo data set (digits, digits:all, ...) "
                             "or a folder of images (in class subfolders for labels)."),
    model: str = _MODEL,
    methods: list[str] = _METHODS,
    option: list[str] = _OPTIONS,
    check: list[str] = typer.Option([], "--check", metavar="NAME...", help="Per-sample checks: completeness, "
                                    "deletion, insertion, sparseness (default: every one that applies)."),
    store: str = typer.Option("run.zarr", "--store", help="The store: a path or an fsspec URL."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Samples per chunk (computed, written, resumed)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw (chunk k draws from seed and k)."),
    target: str = typer.Option("prediction", "--target", metavar="prediction|label|INT", help="Class to explain."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run stored with other options."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Finish a stopped run with the same options."),
    engine: str = typer.Option("local", "--engine", metavar="local|ray", help="Compute here, or on Ray workers."),
    address: str | None = typer.Option(None, "--address", help="Ray: auto, HOST:PORT or ray://HOST:PORT "
                                       "(default: a local Ray)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Ray: workers (default: the cluster's CPUs)."),
    size: list[int] = _SIZE,
    mean: list[float] = _MEAN,
    std: list[float] = _STD,
    grey: bool = _GREY,
    weights: Path = _WEIGHTS,
) -> None:
    """Explain a whole data set into a store (Zarr arrays + Parquet table), resumable after any interruption.

    Prints one row per method: the mean of each per-sample check over the data set.
    """
    from saliencelab import io
    from saliencelab.io.errors import OutputError
    from saliencelab.runs import StoreExistsError, folder, run

    with _user_errors():
        chosen = io.check_methods(methods)
        options = io.method_options(option, chosen)
        net = io.load_model(model, weights)
        source = folder(data, net, grey=grey, size=_size(size), mean=mean or None, std=std or None) \
            if Path(data).is_dir() else data  # fmt: skip
        try:
            with io.method_errors("run"):
                result = run(net, source, methods=options, checks=check or None, store=store, batch_size=batch_size,
                             resume=resume, overwrite=overwrite, seed=seed, engine=engine, address=address,
                             workers=workers, target=int(target) if target.isdigit() else target)  # fmt: skip
        except StoreExistsError as error:
            raise OutputError(str(error)) from None
    table = result.table
    typer.echo(f"{result.n} samples" + (f", accuracy {table['correct'].mean():.3f}" if table["label"].notna().all()
                                        else ""))  # fmt: skip
    means = {m: table[[c for c in table if c.startswith(f"{m}.")]].astype(float).mean() for m in result.methods}
    summary = {m: {c.removeprefix(f"{m}."): v for c, v in row.items()} for m, row in means.items()}
    import pandas as pd

    typer.echo(pd.DataFrame(summary).T.to_string(float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"store: {result.path}")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """A user's mistake: one ``error:`` line on stderr and its exit code, no traceback."""
    try:
        yield
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None


def _size(size: list[int]) -> tuple[int, int] | None:
    if len(size) > 2 or any(s < 1 for s in size):
        raise typer.BadParameter(f"takes one or two positive sizes (H W or N); got {size}", param_hint="--size")
    return (size[0], size[-1]) if size else None


def _targets(target: list[int] | None) -> str:
    if target is None:
        return "-"
    return str(target[0]) if len(set(target)) == 1 else ",".join(map(str, target))


def _delta(delta: float | None) -> str:
    return "-" if delta is None else f"{delta:.2e}"


@app.command()
def demo(
    out: Path = typer.Option(Path("saliencelab-demo"), "--out", help="Folder for the report (index.html)."),
    inputs: int = typer.Option(6, "--inputs", min=1, max=20, help="Test images per data set (digits, faces)."),
    method: list[str] = typer.Option(
        [], "--method", "-m", metavar="NAME", help="Only these methods (repeat the flag); default: every method."
    ),
) -> None:
    """Explain test digits and faces with every method, run every check, write an HTML report.

    Uses the embedded digits CNN and LFW faces CNN with their shuffled-label
    twins (nothing is trained or downloaded), prints one row per data set and
    method and writes OUT/index.html.
    """
    from saliencelab import io
    from saliencelab.demo import run_demo

    with _user_errors():
        io.check_output_folder(out, "--out")
        chosen = io.check_methods(method) if method else None
    rows = run_demo(out, inputs=inputs, methods=chosen)
    typer.echo(
        "seconds: lower is better. deletion AUC: the target's probability as the pixels the map ranks first are "
        "removed (text: the cosine similarity as tokens are); lower is better, and a faithful map is clearly below "
        "random rankings' (the 'random' column)."
    )
    width = max(14, *(len(row["data set"]) + 2 for row in rows))
    typer.echo(f"{'data set':<{width}}{'method':<25}{'seconds':>9}{'deletion AUC':>14}{'random':>8}  checks")
    for row in rows:
        numbers = f"{row['seconds']:>9.3f}{row['deletion AUC']:>14.3f}{row['random deletion AUC']:>8.3f}"
        typer.echo(f"{row['data set']:<{width}}{row['method']:<25}{numbers}  {row['checks']}")
    typer.echo(f"report: {Path(out) / 'index.html'}")


@app.command(epilog=_EXIT_HELP)
def report(
    run: Path = typer.Option(..., "--run", metavar="STORE", help="A data-set run's store (what sl.run wrote)."),
    out: Path = typer.Option(None, "--out", help="Folder for the page (index.html); default: STORE-summary."),
    method: str = typer.Option(None, "--method", "-m", help="Whose maps to analyse (default: the run's first method)."),
) -> None:
    """Summarise a data-set run: per class its mean map, SpRAy's clusters and prototypes, the candidate shortcuts.

    Computes the analysis (saliencelab.runs.spray) and stores it in the run if
    it is missing or is of another method, then writes OUT/index.html.
    """
    from saliencelab import io
    from saliencelab.report.run_summary import summarise_run

    folder = out if out is not None else run.with_name(f"{run.name}-summary")
    with _user_errors():
        io.check_output_folder(folder, "--out")
        page = summarise_run(run, folder, method=method)
    typer.echo(f"report: {page}")


@app.command()
def explore(
    run: str = typer.Argument(..., metavar="RUN", help="The run store (what sl.run wrote, e.g. run.zarr)."),
    port: int = typer.Option(None, "--port", min=1, max=65535, help="The port (default: a free one)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="The address to listen on; anything but loopback lets other machines read the run."
    ),
    export: Path = typer.Option(
        None, "--export", metavar="DIR", help="Write the pages as a static folder instead of serving them."
    ),
    limit: int = typer.Option(200, "--limit", min=1, help="With --export: how many samples (the first ones) to write."),
) -> None:
    """Explore a data-set run in the browser: a local page with the sample grid, samples, methods and SpRAy.

    Prints the address (127.0.0.1 and a free port unless told otherwise) and
    serves until Ctrl-C. Nothing is fetched from elsewhere. --export DIR writes
    the same pages as a folder to open from disk or share.
    """
    from saliencelab import io
    from saliencelab.explore import explore as serve
    from saliencelab.explore.export import export as write_static
    from saliencelab.io.errors import OutputError

    with _user_errors():
        if export is not None and io.check_output_folder(export, "--export").exists() and any(export.iterdir()):
            raise OutputError(f"--export {export} is not empty; give a new or empty folder")
    from saliencelab import load_run

    loaded = load_run(run)
    if export is not None:
        typer.echo(f"explorer: {write_static(loaded, export, limit=limit) / 'index.html'}")
        return
    serve(loaded, port, host=host).wait()


@app.command()
def methods() -> None:
    """List every method with a one-line description and its source."""
    from saliencelab.core import registry

    names = registry.available_methods()
    width = max(map(len, names)) + 2
    for name in names:
        cls = registry.get(name)
        typer.echo(f"{name:<{width}}{cls.description}  [{cls.source}]")


if __name__ == "__main__":
    app()
