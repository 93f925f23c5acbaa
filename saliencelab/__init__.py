"""saliencelab: attribute PyTorch predictions to their inputs, and check the explanations.

Example
-------
>>> import torch, saliencelab as sl
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
>>> a = sl.explain(model, torch.randn(2, 4), method="gradient", target=0)
>>> a.values.shape
torch.Size([2, 4])
"""

from saliencelab import evaluate, genomics, lrp, zoo
from saliencelab.api import available_methods, explain
from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import References, references
from saliencelab.errors import NonFiniteResultError, UnsupportedOperationError
from saliencelab.methods import (
    LRP,
    AblationCam,
    DeconvNet,
    DeepLift,
    DeepShap,
    DeepTaylor,
    EigenCam,
    ExpectedGradients,
    GradCam,
    GradCamPlusPlus,
    Gradient,
    GradientShap,
    GradientXInput,
    GuidedBackprop,
    GuidedGradCam,
    HiResCam,
    IntegratedGradients,
    KernelShap,
    LayerCam,
    Lime,
    MeaningfulPerturbation,
    Occlusion,
    PatternAttribution,
    PatternNet,
    PredictionDifference,
    Rise,
    ScoreCam,
    ShapleySampling,
    SmoothGrad,
    VisualBackProp,
    XGradCam,
)

__version__ = "0.1.0"

__all__ = [
    "AblationCam",
    "EigenCam",
    "GradCam",
    "GradCamPlusPlus",
    "GuidedGradCam",
    "HiResCam",
    "LayerCam",
    "ScoreCam",
    "VisualBackProp",
    "XGradCam",
    "Attribution",
    "DeconvNet",
    "DeepLift",
    "DeepShap",
    "DeepTaylor",
    "ExpectedGradients",
    "Gradient",
    "GradientShap",
    "GradientXInput",
    "GuidedBackprop",
    "IntegratedGradients",
    "LRP",
    "PatternAttribution",
    "PatternNet",
    "References",
    "SmoothGrad",
    "KernelShap",
    "Lime",
    "MeaningfulPerturbation",
    "Occlusion",
    "PredictionDifference",
    "Rise",
    "ShapleySampling",
    "NonFiniteResultError",
    "UnsupportedOperationError",
    "available_methods",
    "explain",
    "evaluate",
    "genomics",
    "lrp",
    "references",
    "report",
    "viz",
    "zoo",
]


def __getattr__(name: str):
    """Import ``saliencelab.viz`` and ``saliencelab.report`` (matplotlib) on first use, keeping the import light."""
    if name in ("viz", "report"):
        import importlib

        return importlib.import_module(f"saliencelab.{name}")
    raise AttributeError(f"module 'saliencelab' has no attribute {name!r}")
