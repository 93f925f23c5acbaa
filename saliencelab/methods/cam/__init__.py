"""The class activation map family and VisualBackProp: one map per sample, ``(N, 1, H, W)``."""

from saliencelab.methods.cam.eigen import EigenCam
from saliencelab.methods.cam.gradient_weighted import (
    GradCam,
    GradCamPlusPlus,
    GuidedGradCam,
    HiResCam,
    LayerCam,
    XGradCam,
)
from saliencelab.methods.cam.perturbed import AblationCam, ScoreCam
from saliencelab.methods.cam.visual_backprop import VisualBackProp

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
]
