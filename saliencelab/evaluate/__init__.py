"""Can an explanation be trusted? Sanity checks, axioms, faithfulness, robustness, complexity.

Every check takes ``method``: a method name from :func:`saliencelab.available_methods`
(with its options) or any callable ``(model, inputs, target) -> tensor``, so your own
attribution functions go through the same checks.

Example
-------
>>> import torch
>>> from saliencelab import evaluate
>>> explain_fn = evaluate.as_explainer("gradient")
>>> explain_fn(torch.nn.Linear(3, 1), torch.ones(2, 3), None).shape
torch.Size([2, 3])
"""

from .explainers import as_explainer, method_name

__all__ = ["as_explainer", "method_name"]

# similarity measures and randomisation sanity checks
from .randomization import data_randomization, model_randomization  # noqa: E402
from .similarity import similarity  # noqa: E402

__all__ += ["data_randomization", "model_randomization", "similarity"]

# axioms and input invariance
from .axioms import PROPERTIES, CheckResult, axiom_table  # noqa: E402
from .invariance import input_invariance, shifted_model  # noqa: E402

__all__ += ["PROPERTIES", "CheckResult", "axiom_table", "input_invariance", "shifted_model"]

# faithfulness, robustness and complexity
from .complexity import entropy, sparseness  # noqa: E402
from .faithfulness import Curve, PixelFlippingCurve, deletion, insertion, pixel_flipping  # noqa: E402
from .road import RoadResult, noisy_linear_imputation, road  # noqa: E402
from .roar import roar  # noqa: E402
from .robustness import local_lipschitz, max_sensitivity  # noqa: E402

__all__ += ["Curve", "PixelFlippingCurve", "RoadResult", "deletion", "entropy", "insertion", "local_lipschitz"]
__all__ += ["max_sensitivity", "noisy_linear_imputation", "pixel_flipping", "road", "roar", "sparseness"]

# the perturbation tests of Yeh et al. 2019, Ancona et al. 2018 and Bhatt et al. 2020
from .correlation import SensitivityN, faithfulness_correlation, sensitivity_n, subset_correlation  # noqa: E402
from .infidelity import infidelity, infidelity_perturbations  # noqa: E402

__all__ += ["SensitivityN", "faithfulness_correlation", "infidelity", "infidelity_perturbations", "sensitivity_n"]
__all__ += ["subset_correlation"]

# the reliability of the metrics themselves (Tomsett et al. 2020)
from .agreement import LEVELS, cronbach_alpha, krippendorff_alpha  # noqa: E402
from .reliability import (  # noqa: E402
    STANDARD_METRICS,
    Metric,
    MetricReliability,
    metric_reliability,
    reliability_from_scores,
    standard_metric,
)

__all__ += ["LEVELS", "STANDARD_METRICS", "Metric", "MetricReliability", "cronbach_alpha", "krippendorff_alpha"]
__all__ += ["metric_reliability", "reliability_from_scores", "standard_metric"]

# localisation against ground-truth masks (Zhang et al. 2018; Arras et al. 2022)
from .localisation import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy  # noqa: E402

__all__ += ["pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy"]
