"""The command line's ``explain --report``: one report section per input file.

Example
-------
>>> import tempfile, torch, saliencelab as sl
>>> from saliencelab.io.inputs import LoadedInput
>>> from pathlib import Path
>>> _, _, x, _ = sl.zoo.dataset("digits")
>>> loaded = [LoadedInput(Path("three.npy"), x[:2], x[:2])]
>>> page = write_input_report(sl.zoo.load("digits_cnn"), loaded, ["gradient"], tempfile.mkdtemp(), target=None,
...                           options={"gradient": {}}, progress=False)
>>> "three.npy" in page.read_text()
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from saliencelab import report
from saliencelab.io.inputs import LoadedInput
from saliencelab.io.run import method_errors


def write_input_report(
    model: torch.nn.Module,
    loaded: Sequence[LoadedInput],
    methods: Sequence[str],
    out: str | Path,
    *,
    target: int | None,
    options: Mapping[str, Mapping[str, Any]],
    progress: bool = True,
) -> Path:
    """Analyse each input file with ``methods`` (maps, model randomisation, deletion, insertion) and write the report.

    Returns the path of ``index.html``. A method's error becomes the command
    line's user error (:func:`~saliencelab.io.run.method_errors`).
    """
    analyses = []
    for item in loaded:
        with method_errors(", ".join(methods), item.path.name):
            analyses.append(
                report.analyse(
                    model,
                    item.inputs,
                    methods={name: dict(options.get(name, {})) for name in methods},
                    target=target,
                    title=item.path.name,
                    description=f"{item.path} ({len(item.inputs)} input(s)).",
                    progress=progress,
                )
            )
    return report.write_report(analyses, out, title="saliencelab report")
