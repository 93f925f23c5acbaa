"""Meaningful Perturbation: an optimised deletion mask (Fong & Vedaldi 2017).

A low-resolution mask ``m`` in [0, 1] (1: keep, 0: delete), upsampled to the
input, blends the input with a perturbed version of it (the ``baseline``,
default a Gaussian blur): ``Φ(x; m) = m·x + (1 − m)·baseline``. The mask
minimises, per sample, with Adam and projection onto [0, 1],

    area · mean(1 − m) + smoothness · TV_β(m) + score(Φ(x; m))

starting from m = 1: it deletes the smallest, smoothest region that removes
the evidence for the target. The paper and a widely used PyTorch port of it
score the target's softmax probability; here the default score for class
targets is the target's log-odds ``z_t − log Σ_{j≠t} exp z_j`` (the logit of
its probability), which does not saturate: on a confident model (p ≈ 1) the
probability's and the log-probability's gradients (``p (1 − p)`` and
``1 − p``) vanish, the area term holds the mask at m = 1 and the map is all
zero. Once the target is unlikely the log-odds equal the log-probability.
Other targets are scored raw. The attribution is the deletion ``1 − m`` at the
input's resolution, the same for every channel. Samples are optimised
independently, in chunks that fit the memory budget; this is the one
perturbation method that needs gradients (of the mask, never the model's).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec
from saliencelab.core.registry import register
from saliencelab.core.sampling import generator, noise_scale
from saliencelab.core.structure import rows_of
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count
from saliencelab.methods.perturbation.base import PerturbationMethod, sample_rows
from saliencelab.methods.perturbation.scoring import clean_outputs, show_progress

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def total_variation(mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-sample ``Σ_dims mean |Δ m|^β`` over neighbouring mask cells, shape ``(N,)``.

    Example
    -------
    >>> m = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    >>> total_variation(m, 2.0).tolist()  # horizontal steps of 1, no vertical ones
    [1.0]
    """
    total = mask.new_zeros(mask.shape[0])
    for dim in range(2, mask.ndim):
        if mask.shape[dim] > 1:
            total = total + (mask.diff(dim=dim).abs() ** beta).flatten(1).mean(dim=1)
    return total


class Adam:
    """Adam (Kingma & Ba 2015) on one tensor, updated in place; elementwise, so samples stay independent.

    Example
    -------
    >>> p = torch.zeros(2)
    >>> adam = Adam(p, lr=0.1)
    >>> adam.step(torch.tensor([1.0, -2.0])); p.tolist()  # the first step moves each entry by lr
    [-0.10000000149011612, 0.10000000149011612]
    """

    def __init__(self, parameter: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameter, self.lr, self.betas, self.eps = parameter, lr, betas, eps
        self.first = torch.zeros_like(parameter)
        self.second = torch.zeros_like(parameter)
        self.count = 0

    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.count += 1
        self.first.mul_(b1).add_(grad, alpha=1 - b1)
        self.second.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        scale = self.lr / (1 - b1**self.count)
        denominator = (self.second / (1 - b2**self.count)).sqrt_().add_(self.eps)
        self.parameter.data.addcdiv_(self.first, denominator, value=-scale)


MIN_DEFAULT_CELLS = 8
"""The default mask has at least this many cells per side (fewer only where the input is smaller)."""
SCORES = ("log_odds", "log_probability", "probability", "logit")
"""What the mask minimises: the first three read a class target's softmax over ``(N, C)`` outputs."""
UNMOVED_DELETION = 1e-3
"""A mask whose largest deletion ``1 − m`` stays at or under this did not move from its start m = 1."""


def target_score(output: torch.Tensor, target: Target, score: str) -> torch.Tensor:
    """The target's ``score`` (one of :data:`SCORES`) on ``output``, shape ``(N,)``.

    ``"log_odds"`` is ``z_t − logsumexp_{j≠t} z_j``, computed without forming
    ``1 − p`` so it stays finite (and its gradient non-zero) where ``p`` rounds to 1.

    Example
    -------
    >>> logits = torch.tensor([[200.0, 0.0, 0.0]])
    >>> target = Target(classes=torch.tensor([0]))
    >>> [round(float(target_score(logits, target, s)), 3) for s in SCORES]
    [199.307, 0.0, 1.0, 200.0]
    """
    if score == "logit":
        return target.scores(output)
    if score == "probability":
        return target.scores(output.softmax(dim=1))
    if score == "log_probability":
        return target.scores(output.log_softmax(dim=1))
    others = output.scatter(1, target.classes.to(output.device).unsqueeze(1), float("-inf")).logsumexp(dim=1)
    return target.scores(output) - others


@register
class MeaningfulPerturbation(PerturbationMethod):
    """Meaningful Perturbation: the smallest smooth deletion mask that removes the target's evidence.

    Parameters
    ----------
    model:
        The model to explain.
    resolution:
        Mask cells per spatial side (default: an eighth of the smallest
        spatial size, the published implementation's 28 at 224², but at least
        8 cells, or one per pixel on smaller inputs: a 1×1 mask on an 8×8
        image could only dim the whole image and would give a constant map).
    steps:
        Adam iterations (the published 500; default 300).
    lr:
        Adam's learning rate (the published 0.1).
    area:
        Weight of the mean deleted area (the published l1 coefficient 0.01).
    smoothness:
        Weight of the total variation (the published 0.2).
    tv_beta:
        Exponent of the total variation (the published 3).
    noise:
        Standard deviation of Gaussian noise added to the perturbed input at
        every step, as a fraction of each sample's value range (default 0).
    score:
        What the mask minimises: ``"log_odds"`` (the default for class targets
        on ``(N, C)`` outputs, C > 1: the target's logit minus the log-sum-exp
        of the other logits; it does not saturate on confident models),
        ``"log_probability"`` (log-softmax; saturates where p ≈ 1, like the
        probability), ``"probability"`` (the softmax probability, the paper's
        choice; saturates) or ``"logit"`` (the raw target score, the default
        for other targets). The log-odds and logits span tens of units where
        the probability spans one, so the ``area`` and ``smoothness`` terms
        weigh less against them. On the zoo's digits the default weights
        still delete about half the image (as the probability does where its
        mask moves), not all of it; ``area=10`` deletes about a third and
        removes nearly as much of the evidence.
    softmax:
        Deprecated (a ``FutureWarning``): ``True`` is ``score="probability"``,
        ``False`` ``score="logit"``.
    seed:
        Seed of the noise.
    memory_budget:
        Bytes for activations and gradients; samples are optimised in chunks under it.

    ``baseline`` (default ``"blur"``) is what deleted regions become.
    ``info["mask"]`` is the optimised low-resolution keep-mask,
    ``info["scores"]`` the final score of each perturbed input, ``info["score"]``
    the score's name and ``info["mask_moved"]`` (bool, ``(N,)``) whether each
    mask left its start m = 1 (a warning names the samples whose mask did not:
    their maps are zero). ``delta`` is None.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = lambda x: torch.stack([4 * x[:, :, :4, :4].mean((1, 2, 3)) - 2, torch.zeros(len(x))], 1)
    >>> explainer = sl.MeaningfulPerturbation(model, resolution=8, steps=100, area=0.05, smoothness=0.02)
    >>> a = explainer(torch.ones(1, 1, 8, 8), target=0, baseline=0.0)
    >>> bool(a.values[0, 0, :4, :4].sum() > 0.8 * a.values.sum())
    True
    """

    name = "meaningful_perturbation"
    description = "Meaningful Perturbation: an optimised smooth deletion mask (blur or baseline)"
    source = "Fong & Vedaldi 2017"
    quick_options = {"steps": 5, "resolution": 4, "score": "logit"}

    def __init__(
        self,
        model: Any,
        *,
        resolution: int | None = None,
        steps: int = 300,
        lr: float = 0.1,
        area: float = 0.01,
        smoothness: float = 0.2,
        tv_beta: float = 3.0,
        noise: float = 0.0,
        score: str | None = None,
        softmax: bool | None = None,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        self.resolution = None if resolution is None else check_count(resolution, "resolution")
        self.steps = check_count(steps, "steps")
        for what, value in (("lr", lr), ("area", area), ("smoothness", smoothness), ("tv_beta", tv_beta)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{what} must be a non-negative number; got {value!r}")
        if not lr > 0 or not tv_beta > 0:
            raise ValueError(f"lr and tv_beta must be positive; got lr={lr!r}, tv_beta={tv_beta!r}")
        noise_scale(torch.zeros(1, 1), noise)
        self.lr, self.area, self.smoothness, self.tv_beta = float(lr), float(area), float(smoothness), float(tv_beta)
        self.noise, self.score = float(noise), _chosen_score(score, softmax)

    def _cells(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        if self.resolution is None:
            side = max(min(spatial) // 8, MIN_DEFAULT_CELLS)
            return tuple(min(side, s) for s in spatial)
        if any(self.resolution > s for s in spatial):
            raise ValueError(
                f"{self.name}: resolution={self.resolution} mask cells exceed the input's spatial size {spatial}"
            )
        return (self.resolution,) * len(spatial)

    def _score_for(self, output: torch.Tensor, target: Target) -> str:
        fits = target.classes is not None and output.ndim == 2 and output.shape[1] > 1
        if self.score is None:
            return "log_odds" if fits else "logit"
        if self.score != "logit" and not fits:
            given = "a callable target" if target.classes is None else "a class target"
            raise ValueError(
                f"score={self.score!r} needs a class target on a model output of shape (N, C) with C > 1; got "
                f"{given} and output shape {tuple(output.shape)}; use score='logit' to minimise the raw target score"
            )
        return self.score

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        if inputs.ndim - 2 not in _MODES:
            raise ValueError(
                f"{self.name} needs inputs (N, C, *spatial) with 1 to 3 spatial dims; got {tuple(inputs.shape)}"
            )
        spatial = tuple(inputs.shape[2:])
        cells = self._cells(spatial)
        reference = self.one_baseline("blur" if baseline is None else baseline, inputs)
        output = clean_outputs(self, inputs)
        target = target.bind(output)
        score = self._score_for(output, target)
        sigma = noise_scale(inputs, self.noise)
        n = inputs.shape[0]
        masks = torch.ones((n, 1, *cells), dtype=inputs.dtype, device=inputs.device)
        scores = torch.empty(n, dtype=torch.float64, device=inputs.device)

        def run(rows: slice) -> None:
            sample = torch.arange(rows.start, rows.stop, device=inputs.device)
            with rows_of(sample.cpu()):  # the optimised rows are these samples
                masks[rows], scores[rows] = self._optimise(
                    inputs[sample], sample_rows(reference, sample), sigma[sample], target.rows(sample), score, spatial
                )

        self.run_chunked(inputs, run, n, passes=3)
        keep = F.interpolate(masks, size=spatial, mode=_MODES[len(spatial)], align_corners=False)
        values = (1 - keep).expand_as(inputs).contiguous()
        moved = masks_moved(masks, score)
        info = {"mask": masks, "scores": scores, "score": score, "mask_moved": moved}
        return Attribution(values, None, self.name, target.public(), info)

    def _optimise(self, x, reference, sigma, target, score_name, spatial) -> tuple[torch.Tensor, torch.Tensor]:
        mode = _MODES[len(spatial)]
        mask = torch.ones((x.shape[0], 1, *self._cells(spatial)), dtype=x.dtype, device=x.device, requires_grad=True)
        adam = Adam(mask, self.lr)
        rng = generator(self.seed, x.device) if self.noise > 0 else None

        def score(m: torch.Tensor, step_noise: torch.Tensor | None) -> torch.Tensor:
            keep = F.interpolate(m, size=spatial, mode=mode, align_corners=False)
            perturbed = keep * x + (1 - keep) * reference
            if step_noise is not None:
                perturbed = perturbed + sigma * step_noise
            return target_score(self.forward(perturbed, torch.arange(perturbed.shape[0])), target, score_name)

        from tqdm.auto import tqdm  # imported when the method runs, keeping ``import saliencelab`` light

        bar = tqdm(
            range(self.steps),
            desc=self.name,
            unit="step",
            leave=False,
            disable=not show_progress(self.progress, self.steps * x.shape[0]),
        )
        with torch.enable_grad():
            for _ in bar:
                step_noise = None
                if rng is not None:
                    step_noise = torch.randn(x.shape[1:], generator=rng, device=x.device, dtype=x.dtype)
                loss = (
                    self.area * (1 - mask).flatten(1).mean(dim=1)
                    + self.smoothness * total_variation(mask, self.tv_beta)
                    + score(mask, step_noise)
                ).sum()
                (grad,) = torch.autograd.grad(loss, mask)
                with torch.no_grad():
                    adam.step(grad)
                    mask.clamp_(0, 1)
        with torch.inference_mode():
            final = score(mask.detach(), None).to(torch.float64)
        return mask.detach(), final.clone()


def masks_moved(masks: torch.Tensor, score: str) -> torch.Tensor:
    """Whether each keep-mask ``(N, 1, *cells)`` left its start m = 1; warns, saying what to change, where one did not.

    Example
    -------
    >>> masks_moved(torch.tensor([[[0.2, 1.0, 1.0]]]), "log_odds").tolist()  # one mask, one cell deleted by 0.8
    [True]
    """
    moved = (1 - masks).flatten(1).amax(dim=1) > UNMOVED_DELETION
    if not bool(moved.all()):
        stuck = (~moved).nonzero()[:, 0].tolist()
        hint = ""
        if score in ("probability", "log_probability"):
            hint = ", or use score='log_odds' or 'logit' (a saturated probability has no gradient)"
        warnings.warn(
            f"meaningful_perturbation: the mask did not move from m = 1 for inputs {stuck} ({len(stuck)} of "
            f"{len(moved)}), so their maps are zero: the {score} score's gradient never outweighed the area term. "
            f"Raise steps or lr, lower area, check that the baseline differs from the input{hint}; they are "
            "flagged in info['mask_moved']",
            stacklevel=4,
        )
    return moved


def _chosen_score(score: str | None, softmax: bool | None) -> str | None:
    """``score`` checked, or the one the deprecated ``softmax`` flag stands for (``None``: automatic)."""
    if softmax is not None:
        if not isinstance(softmax, bool):
            raise TypeError(f"softmax must be True or False; got {softmax!r} (better: pass score=, see SCORES)")
        if score is not None:
            raise TypeError("pass score= only; softmax= is its deprecated form and the two cannot be combined")
        score = "probability" if softmax else "logit"
        warnings.warn(
            f"meaningful_perturbation's softmax= is deprecated; pass score={score!r} instead (the default is now "
            "'log_odds' for class targets, which does not saturate on confident models)",
            FutureWarning,
            stacklevel=4,
        )
    if score is not None and score not in SCORES:
        raise ValueError(f"score must be one of {SCORES} or None (automatic); got {score!r}")
    return score
