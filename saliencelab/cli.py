"""The command line: ``saliencelab demo``, ``saliencelab methods``.

Thin: it parses arguments, calls the library and prints.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Attribute PyTorch predictions to their inputs and check the explanations.", no_args_is_help=True
)


@app.command()
def demo(
    out: Path = typer.Option(Path("saliencelab-demo"), "--out", help="Folder for the figure."),
    digits: int = typer.Option(6, "--digits", min=1, max=10, help="How many test digits to explain."),
) -> None:
    """Explain test digits of the embedded digits CNN with every gradient method."""
    from saliencelab.demo import run_demo

    rows = run_demo(out, n_digits=digits)
    typer.echo(f"{'method':<22}{'seconds':>9}  {'max completeness error':>24}")
    for row in rows:
        delta = "—" if row["delta"] is None else f"{row['delta']:.2e}"
        typer.echo(f"{row['method']:<22}{row['seconds']:>9.3f}  {delta:>24}")
    typer.echo(f"figure: {Path(out) / 'gradient_methods.png'}")


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
