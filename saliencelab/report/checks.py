"""Which checks a method's maps passed and failed, from the numbers of an :class:`Analysis`.

Each check is a plain comparison with a stated threshold, so a reader of the
report can re-derive every verdict from the tables beside it:

- ``model randomisation`` (Adebayo et al. 2018): passed when the Spearman rank
  correlation of absolute values between the trained model's maps and the
  randomised models' maps, averaged over samples and over the cascading steps
  (top layer, top two, ..., all), is below :data:`DECORRELATED` — the map
  depends on what the model learnt, the top layers included. (Only the fully
  randomised step would let Guided Backprop pass: its maps barely change until
  the first layers go.)
- ``data randomisation``: the same threshold on the similarity to the maps of
  the twin trained on shuffled labels.
- ``deletion`` / ``insertion`` (Petsiuk et al. 2018): passed when the mean area
  under the curve is below (deletion) or above (insertion) that of a random
  pixel ranking: removing the pixels the map ranks first hurts the score more
  than removing random ones.
- ``completeness``: for methods that report a completeness error, passed when
  it is at most :data:`COMPLETE` of the largest score.

Example
-------
>>> import saliencelab as sl
>>> from saliencelab.report.analysis import analyse
>>> model = sl.zoo.load("digits_cnn")
>>> _, _, x, y = sl.zoo.dataset("digits")
>>> result = analyse(model, x[:4], methods={"integrated_gradients": {"steps": 64}}, title="digits", progress=False)
>>> verdicts(result, "integrated_gradients")["completeness"]
True
"""

from __future__ import annotations

from saliencelab.report.analysis import Analysis

DECORRELATED = 0.5
"""Mean |Spearman| below which randomised maps count as changed (a pass of a randomisation check)."""
COMPLETE = 1e-2
"""Largest completeness error, as a fraction of the largest |score|, that counts as complete."""
CHECKS = ("model randomisation", "data randomisation", "deletion", "insertion", "completeness")
"""Every check, in the order the report lists them."""


def verdicts(analysis: Analysis, method: str) -> dict[str, bool]:
    """Each check that ran for ``method``: ``True`` passed, ``False`` failed (checks that did not run are absent).

    Example
    -------
    >>> import saliencelab as sl
    >>> from saliencelab.report.analysis import analyse
    >>> model = sl.zoo.load("digits_cnn")
    >>> _, _, x, _ = sl.zoo.dataset("digits")
    >>> result = analyse(model, x[:4], methods={"gradient": {}}, title="digits", progress=False)
    >>> sorted(verdicts(result, "gradient"))
    ['deletion', 'insertion', 'model randomisation']
    """
    outcome = analysis.methods[method]
    found: dict[str, bool] = {}
    if outcome.randomization is not None and len(outcome.randomization):
        found["model randomisation"] = bool(outcome.randomization["similarity"].mean() < DECORRELATED)
    if outcome.data_randomization is not None:
        found["data randomisation"] = bool(outcome.data_randomization.mean() < DECORRELATED)
    if outcome.deletion is not None and analysis.random_deletion is not None:
        found["deletion"] = bool(outcome.deletion.auc.mean() < analysis.random_deletion.auc.mean())
    if outcome.insertion is not None and analysis.random_insertion is not None:
        found["insertion"] = bool(outcome.insertion.auc.mean() > analysis.random_insertion.auc.mean())
    if outcome.delta is not None:
        found["completeness"] = outcome.delta <= COMPLETE
    return found


def summary(found: dict[str, bool]) -> str:
    """A short label for a map: the checks passed and failed.

    Example
    -------
    >>> summary({"deletion": True, "model randomisation": False})
    'passes: deletion · fails: model randomisation'
    """
    passed = [name for name in CHECKS if found.get(name) is True]
    failed = [name for name in CHECKS if found.get(name) is False]
    parts = ([f"passes: {', '.join(passed)}"] if passed else []) + ([f"fails: {', '.join(failed)}"] if failed else [])
    return " · ".join(parts) or "no checks ran"
