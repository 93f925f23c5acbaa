"""Perturbation methods: attributions from forward passes on perturbed inputs only.

Occlusion, feature ablation, Shapley value sampling, KernelSHAP, LIME, RISE, Prediction
Difference Analysis and Meaningful Perturbation. Their cost is
the number of model evaluations: every method runs its perturbed copies as
rows of one batch, in chunks under ``memory_budget``, in
``torch.inference_mode()`` (Meaningful Perturbation, which optimises a mask,
takes gradients of the mask only). :func:`slic` and :func:`grid` make
``feature_mask`` presets for images.
"""

from saliencelab.methods.perturbation.ablation import FeatureAblation
from saliencelab.methods.perturbation.kernel_shap import KernelShap
from saliencelab.methods.perturbation.lime import Lime
from saliencelab.methods.perturbation.masks import grid, slic
from saliencelab.methods.perturbation.meaningful_perturbation import MeaningfulPerturbation
from saliencelab.methods.perturbation.occlusion import Occlusion
from saliencelab.methods.perturbation.prediction_difference import PredictionDifference
from saliencelab.methods.perturbation.rise import Rise
from saliencelab.methods.perturbation.shapley import ShapleySampling

__all__ = [
    "FeatureAblation",
    "KernelShap",
    "Lime",
    "MeaningfulPerturbation",
    "Occlusion",
    "PredictionDifference",
    "Rise",
    "ShapleySampling",
    "grid",
    "slic",
]
