"""The HTML report: every method's maps on several inputs, labelled with the checks they pass.

:func:`analyse` runs the methods and checks on one model; :func:`write_report`
writes one or more analyses as a self-contained page (``index.html`` with PNGs
beside it, no CDN).

Example
-------
>>> import tempfile, saliencelab as sl
>>> model = sl.zoo.load("digits_cnn")
>>> _, _, x, y = sl.zoo.dataset("digits")
>>> result = sl.report.analyse(model, x[:2], methods={"gradient": {}}, target=y[:2], title="digits", progress=False)
>>> sl.report.write_report([result], tempfile.mkdtemp()).name
'index.html'
"""

from .analysis import Analysis, MethodResult, analyse
from .checks import CHECKS, Verdict, randomisation_verdict, verdict_table, verdicts
from .render import write_report
from .thresholds import Thresholds

__all__ = ["CHECKS", "Analysis", "MethodResult", "Thresholds", "Verdict", "analyse", "verdict_table", "verdicts"]
__all__ += ["randomisation_verdict", "write_report"]
