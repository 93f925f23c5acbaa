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

from saliencelab.io.checks import sanity_table
from saliencelab.io.errors import EXIT_CODES, UserError
from saliencelab.io.files import load_saved
from saliencelab.io.input_report import write_input_report
from saliencelab.io.inputs import LoadedInput, load_input, load_inputs
from saliencelab.io.models import input_channels, load_model, load_weights
from saliencelab.io.options import check_methods, method_options, parse_baseline, parse_target, parse_value
from saliencelab.io.outputs import check_output_file, check_output_folder, staged_folder
from saliencelab.io.run import Row, explain_inputs, method_errors

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
