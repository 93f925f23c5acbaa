"""Models, inputs and outputs from files: what the command line reads and writes.

- :func:`load_model`: a model from a SPEC (``zoo:NAME``, ``module:factory``,
  ``path/to/file.py:factory``, a TorchScript or ``torch.export`` file) and
  optional weights;
- :func:`load_input`: an image or a ``.npy``/``.pt`` tensor as a batch;
- :func:`explain_inputs`: every method on every input, results written to disk
  all or nothing (:func:`staged_folder`), after :func:`check_output_folder`;
- :func:`load_saved`: a ``.npy``, ``.pt`` or ``.safetensors`` file, refusing pickled code;
- :func:`sanity_table`: model (and data) randomisation of every method on every input;
- :mod:`saliencelab.io.errors`: the errors a user can fix, each with the exit
  code of the command line.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> import saliencelab as sl
>>> from saliencelab import io
>>> model = io.load_model("zoo:digits_cnn")
>>> x = sl.zoo.dataset("digits")[2][:1]
>>> rows = list(io.explain_inputs(model, [io.LoadedInput(Path("x.npy"), x, x)], ["gradient"], tempfile.mkdtemp()))
>>> rows[0].method, rows[0].delta
('gradient', None)
"""

_EXPORTS = {
    "EXIT_CODES": "errors",
    "LoadedInput": "inputs",
    "Row": "run",
    "UserError": "errors",
    "check_methods": "options",
    "check_output_file": "outputs",
    "check_output_folder": "outputs",
    "explain_inputs": "run",
    "input_channels": "models",
    "load_input": "inputs",
    "load_inputs": "inputs",
    "load_model": "models",
    "load_saved": "files",
    "load_weights": "models",
    "method_errors": "run",
    "method_options": "options",
    "parse_baseline": "options",
    "parse_target": "options",
    "parse_value": "options",
    "sanity_table": "checks",
    "staged_folder": "outputs",
    "write_input_report": "input_report",
}
"""Public name -> the module of :mod:`saliencelab.io` that defines it, imported on first use: the command
line's ``--help`` and its error codes need none of them (nor torch)."""

__all__ = [
    "EXIT_CODES",
    "LoadedInput",
    "Row",
    "UserError",
    "check_methods",
    "check_output_file",
    "check_output_folder",
    "explain_inputs",
    "input_channels",
    "load_input",
    "load_inputs",
    "load_saved",
    "load_model",
    "load_weights",
    "method_errors",
    "method_options",
    "parse_baseline",
    "parse_target",
    "parse_value",
    "write_input_report",
    "sanity_table",
    "staged_folder",
]


def __getattr__(name: str):
    """Import the module that defines ``name`` on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'saliencelab.io' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"saliencelab.io.{_EXPORTS[name]}"), name)
