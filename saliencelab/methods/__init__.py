"""Attribution methods, one module per family. Importing this package registers them."""

from saliencelab.methods.cam import (
    AblationCam,
    EigenCam,
    GradCam,
    GradCamPlusPlus,
    GuidedGradCam,
    HiResCam,
    LayerCam,
    ScoreCam,
    VisualBackProp,
    XGradCam,
)
from saliencelab.methods.deeplift import DeepLift, DeepShap
from saliencelab.methods.gradient import DeconvNet, Gradient, GradientXInput, GuidedBackprop
from saliencelab.methods.lrp import LRP, DeepTaylor
from saliencelab.methods.noise import SmoothGrad
from saliencelab.methods.path import ExpectedGradients, GradientShap, IntegratedGradients
from saliencelab.methods.pattern import PatternAttribution, PatternNet
from saliencelab.methods.perturbation import (
    KernelShap,
    Lime,
    MeaningfulPerturbation,
    Occlusion,
    PredictionDifference,
    Rise,
    ShapleySampling,
)

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
    "SmoothGrad",
    "KernelShap",
    "Lime",
    "MeaningfulPerturbation",
    "Occlusion",
    "PredictionDifference",
    "Rise",
    "ShapleySampling",
]
