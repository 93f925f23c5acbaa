"""``import saliencelab`` stays light: torch and numpy, nothing else until a subpackage is used."""

import subprocess
import sys

import pytest


def imported_after(code: str) -> set[str]:
    """Top-level package names that ``code`` adds to ``sys.modules`` on top of ``import torch``, in a fresh process."""
    script = (
        "import sys, torch\nbefore = set(sys.modules)\n"
        f"{code}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_saliencelab_adds_no_third_party_package_over_torch():
    assert imported_after("import saliencelab") - {"saliencelab"} == set()


def test_the_command_line_help_imports_neither_torch_nor_numpy():
    """``saliencelab --help`` and a command's ``--help`` load typer only: torch waits for a command that runs."""
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom saliencelab.cli import app\n"
        "for args in (['--help'], ['explain', '--help'], ['run', '--help'], ['explore', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'pandas', 'matplotlib'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


@pytest.mark.parametrize(
    ("code", "package"),
    [
        ("import saliencelab as sl; sl.evaluate.deletion", "pandas"),
        ("from saliencelab import zoo", "safetensors"),
        ("import saliencelab as sl; sl.viz", "matplotlib"),
    ],
)
def test_a_subpackage_imports_its_dependencies_on_first_use(code, package):
    assert package in imported_after(code)


def test_methods_and_their_classes_are_available_without_the_lazy_subpackages():
    import saliencelab as sl

    assert "integrated_gradients" in sl.available_methods()
    assert sl.IntegratedGradients.name == "integrated_gradients"
    with pytest.raises(AttributeError, match="no attribute 'not_a_module'"):
        sl.not_a_module  # noqa: B018
