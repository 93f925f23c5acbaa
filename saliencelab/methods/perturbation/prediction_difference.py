"""Prediction Difference Analysis (Zintgraf et al. 2017).

The relevance of a window of features is how much the prediction changes when
the window is unknown, simulated by replacing it with values drawn from the
data (not with a fixed baseline): ``samples`` draws per window, the model's
scores averaged over them. The draws come from the ``baseline`` references (a
batch of data, e.g. training images):

- ``sampling="marginal"``: the window's values are those of a random
  reference at the same place (the patch's marginal distribution);
- ``sampling="conditional"``: the window's values are drawn from a Gaussian
  conditioned on the ``padding`` ring of values around it in the input, its
  mean and covariance estimated from all frames (window plus ring) of the
  references (images only).

For probability outputs the change is the weight of evidence
``log2 odds(p(c|x)) − log2 odds(p(c|x without the window))`` (probabilities
clamped to [1e-7, 1 − 1e-7]); otherwise the plain difference of scores.
Windows slide with ``stride`` (the paper's 1) and each element's relevance is
the mean over the windows covering it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from saliencelab.core.attribution import Attribution
from saliencelab.core.baselines import BaselineSpec, ReferenceSet, resolve_baseline
from saliencelab.core.registry import register
from saliencelab.core.sampling import generator, substream_seed
from saliencelab.core.targets import Target
from saliencelab.core.validation import check_count
from saliencelab.methods.perturbation.base import PerturbationMethod
from saliencelab.methods.perturbation.scoring import clean_outputs
from saliencelab.methods.perturbation.windows import Size, Windows, check_size_spec, spatial_dims

SAMPLING = ("marginal", "conditional")
CLAMP = 1e-7
"""Probabilities are clamped to [CLAMP, 1 − CLAMP] before taking log-odds."""


def log2_odds(p: torch.Tensor) -> torch.Tensor:
    """``log2(p / (1 − p))`` of probabilities clamped away from 0 and 1.

    Example
    -------
    >>> log2_odds(torch.tensor([0.5, 0.8], dtype=torch.float64)).round(decimals=6).tolist()
    [0.0, 2.0]
    """
    p = p.clamp(CLAMP, 1 - CLAMP)
    return torch.log2(p) - torch.log2(1 - p)


def looks_like_probabilities(output: torch.Tensor) -> bool:
    """True when each row of a ``(N, C)`` output lies in [0, 1] and sums to 1.

    Example
    -------
    >>> looks_like_probabilities(torch.tensor([[0.2, 0.8]])), looks_like_probabilities(torch.tensor([[2.0, -1.0]]))
    (True, False)
    """
    if output.ndim != 2 or output.shape[1] < 2:
        return False
    rows = output.to(torch.float64)
    return bool(((rows >= 0) & (rows <= 1)).all() and torch.allclose(rows.sum(1), torch.ones_like(rows[:, 0])))


class ConditionalSampler:
    """Draws a window's values from a Gaussian conditioned on the ring of ``padding`` around it.

    The Gaussian over frames (window + ring, all channels) is estimated from
    every frame position of the references ``(K, C, H, W)``; at the image
    edges the parts of a frame outside the image are marginalised out.

    Example
    -------
    >>> refs = torch.randn(20, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    >>> sampler = ConditionalSampler(refs, Windows((1, 6, 6), (1, 2, 2), (1, 1, 1)), padding=1, samples=3, seed=0)
    >>> sampler.fill(torch.zeros(2, 1, 6, 6), torch.tensor([0, 7]), torch.tensor([0, 2])).shape
    torch.Size([2, 1, 6, 6])
    """

    def __init__(self, references: torch.Tensor, windows: Windows, padding: int, samples: int, seed: int) -> None:
        if references.ndim != 4:
            raise ValueError(
                "prediction_difference: conditional sampling is implemented for images (N, C, H, W); "
                f"got references of shape {tuple(references.shape)}; use sampling='marginal'"
            )
        channels, height, width = references.shape[1:]
        self.shape = (channels, height, width)
        self.windows, self.padding, self.samples, self.seed = windows, padding, samples, seed
        kh, kw = windows.size[1], windows.size[2]
        fh, fw = kh + 2 * padding, kw + 2 * padding
        if fh > height or fw > width:
            raise ValueError(
                f"prediction_difference: the window {windows.size[1:]} with padding {padding} needs frames of "
                f"{(fh, fw)}, larger than the images {(height, width)}; lower padding or the window"
            )
        self.frame = (fh, fw)
        self.mean, self.cov = self._estimate(references.to(torch.float64), fh, fw)
        c, i, j = torch.meshgrid(torch.arange(channels), torch.arange(fh), torch.arange(fw), indexing="ij")
        self.offsets = (c.flatten(), i.flatten() - padding, j.flatten() - padding)
        self._cache: dict = {}

    @staticmethod
    def _estimate(references: torch.Tensor, fh: int, fw: int) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = references.shape[2:]
        positions = (height - fh + 1) * (width - fw + 1)
        step = max(1, math.ceil(math.sqrt(positions / 4096)))
        dims = references.shape[1] * fh * fw
        total = torch.zeros(dims, dtype=torch.float64)
        outer = torch.zeros(dims, dims, dtype=torch.float64)
        count = 0
        for image in references:
            frames = F.unfold(image[None].cpu(), (fh, fw), stride=step)[0].T  # (positions, dims)
            total += frames.sum(0)
            outer += frames.T @ frames
            count += frames.shape[0]
        mean = total / count
        cov = outer / count - mean[:, None] * mean[None, :]
        ridge = 1e-6 * float(cov.diagonal().mean()) + 1e-12
        return mean, cov + ridge * torch.eye(dims, dtype=torch.float64)

    def _parts(self, start_row: int, start_col: int) -> tuple:
        """Inner/outer frame indices, regression matrix, mean and noise factor at a window start."""
        _, height, width = self.shape
        kh, kw = self.windows.size[1], self.windows.size[2]
        _, dr, dc = self.offsets
        rows, cols = start_row + dr, start_col + dc
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        inner = inside & (dr >= 0) & (dr < kh) & (dc >= 0) & (dc < kw)
        outer = inside & ~inner
        key = (inner.numpy().tobytes(), outer.numpy().tobytes())
        if key not in self._cache:
            i_idx, o_idx = inner.nonzero().flatten(), outer.nonzero().flatten()
            s_ii = self.cov[i_idx][:, i_idx]
            if len(o_idx):
                s_io, s_oo = self.cov[i_idx][:, o_idx], self.cov[o_idx][:, o_idx]
                regression = torch.linalg.solve(s_oo, s_io.T).T
                conditional = s_ii - regression @ s_io.T
            else:
                regression = torch.zeros(len(i_idx), 0, dtype=torch.float64)
                conditional = s_ii
            eigenvalues, vectors = torch.linalg.eigh((conditional + conditional.T) / 2)
            factor = vectors * eigenvalues.clamp(min=0).sqrt()
            self._cache[key] = (i_idx, o_idx, regression, self.mean[i_idx], self.mean[o_idx], factor)
        return self._cache[key]

    def fill(self, images: torch.Tensor, window: torch.Tensor, draw: torch.Tensor) -> torch.Tensor:
        """``images`` with window ``window[r]`` replaced by conditional draw ``draw[r]``, row by row."""
        out = images.clone().flatten(1)
        channels, height, width = self.shape
        starts = self.windows.starts(window.cpu())
        channel, dr, dc = self.offsets
        for w in window.unique().tolist():
            these = (window == w).nonzero().flatten()
            r0, c0 = int(starts[these[0], 1]), int(starts[these[0], 2])
            i_idx, o_idx, regression, mean_in, mean_out, factor = self._parts(r0, c0)
            flat = channel * height * width + (r0 + dr) * width + (c0 + dc)
            rng = generator(substream_seed(self.seed, w), torch.device("cpu"))
            noise = torch.randn((self.samples, len(i_idx)), generator=rng, dtype=torch.float64)
            known = out[these][:, flat[o_idx].to(out.device)].cpu().to(torch.float64)
            mean = mean_in + (known - mean_out) @ regression.T
            values = mean + noise[draw[these].cpu()] @ factor.T
            rows = these.to(out.device)[:, None]
            out[rows, flat[i_idx].to(out.device)[None, :]] = values.to(out.dtype).to(out.device)
        return out.view_as(images)


@register
class PredictionDifference(PerturbationMethod):
    """Prediction Difference Analysis with marginal or conditional sampling of windows.

    Parameters
    ----------
    model:
        The model to explain (for the weight of evidence, one returning probabilities).
    window:
        Window over the spatial dimensions, all channels together (see
        :mod:`~saliencelab.methods.perturbation.windows`); default a sixteenth
        of each spatial size, at least 1.
    stride:
        Step between windows (default 1, as in the paper).
    sampling:
        ``"marginal"`` or ``"conditional"`` (images only).
    samples:
        Draws per window (the paper's 10).
    padding:
        Width of the ring the conditional Gaussian conditions on (the paper's 2).
    probabilities:
        ``None``: weight of evidence when the model's outputs look like
        probabilities (rows in [0, 1] summing to 1), plain difference
        otherwise; ``True``/``False`` to choose. Wrap a logit model as
        ``lambda x: model(x).softmax(1)`` for the paper's setting.
    seed:
        Seed of the draws, shared by every sample.
    progress, memory_budget:
        See :class:`~saliencelab.methods.perturbation.base.PerturbationMethod`.

    ``baseline`` must be a batch of references ``(K, *feature_shape)`` to draw
    from (or ``sl.references(...)``). ``info["weight_of_evidence"]`` says which
    measure was used. ``delta`` is None.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 1)  # additive: the difference is w_i (x_i − the value drawn)
    >>> refs = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # feature 1 is 0 or 2, the others 0
    >>> a = sl.PredictionDifference(model, window=1, samples=1000)(torch.ones(1, 3), baseline=refs)
    >>> w = model.weight.detach()[0]
    >>> torch.allclose(a.values[0, [0, 2]], w[[0, 2]]), abs(float(a.values[0, 1])) < 0.1 * abs(float(w[1]))
    (True, True)
    """

    name = "prediction_difference"
    description = "Prediction Difference Analysis: change of the prediction when a window is drawn from the data"
    source = "Zintgraf et al. 2017"
    quick_options = {"window": 2, "stride": 2, "samples": 3}
    draws_references = True

    def __init__(
        self,
        model: Any,
        *,
        window: Size | None = None,
        stride: Size = 1,
        sampling: str = "marginal",
        samples: int = 10,
        padding: int = 2,
        probabilities: bool | None = None,
        seed: int = 0,
        progress: bool | None = None,
        memory_budget: int | None = None,
    ) -> None:
        super().__init__(model, seed=seed, progress=progress, memory_budget=memory_budget)
        check_size_spec(window, "window")
        check_size_spec(stride, "stride", allow_none=False)
        if sampling not in SAMPLING:
            raise ValueError(f"unknown sampling {sampling!r}; choose one of {', '.join(SAMPLING)}")
        self.samples = check_count(samples, "samples")
        self.padding = check_count(padding, "padding", least=0)
        if probabilities is not None and not isinstance(probabilities, bool):
            raise TypeError(f"probabilities must be True, False or None (detect); got {probabilities!r}")
        self.window, self.stride, self.sampling, self.probabilities = window, stride, sampling, probabilities

    def _windows(self, feature_shape: tuple[int, ...]) -> Windows:
        window = self.window
        if window is None:
            window = tuple(max(1, feature_shape[d] // 16) for d in spatial_dims(feature_shape))
        return Windows.build(feature_shape, window, self.stride, self.name)

    def _uses_probabilities(self, output: torch.Tensor, target: Target) -> bool:
        if self.probabilities is False:
            return False
        fits = target.classes is not None and looks_like_probabilities(output)
        if self.probabilities and not (output.min() >= 0 and output.max() <= 1):
            raise ValueError(
                "probabilities=True needs model outputs in [0, 1]; wrap a logit model, e.g. "
                "lambda x: model(x).softmax(1), or pass probabilities=False for the plain difference"
            )
        return bool(self.probabilities) or fits

    def _attribute(self, inputs: torch.Tensor, target: Target, baseline: BaselineSpec) -> Attribution:
        feature_shape = tuple(inputs.shape[1:])
        if not feature_shape:
            raise ValueError(f"{self.name} needs inputs with features, shape (N, ...); got {tuple(inputs.shape)}")
        windows = self._windows(feature_shape)
        refs = resolve_baseline(baseline, inputs, seed=self.seed, distribution=True)
        output = clean_outputs(self, inputs)
        target = target.bind(output)
        f_x = target.scores(output).to(torch.float64)
        evidence = self._uses_probabilities(output, target)
        n, total, draws = inputs.shape[0], windows.total, self.samples
        make_rows = self._rows(inputs, refs, windows)
        scores = self.evaluate(inputs, n * total * draws, make_rows, target, "windows × draws")
        mean = scores.reshape(n, total, draws).mean(dim=2)
        change = log2_odds(f_x)[:, None] - log2_odds(mean) if evidence else f_x[:, None] - mean
        values = windows.spread(change)
        info = {"weight_of_evidence": evidence, "windows": total, "sampling": self.sampling}
        return Attribution(values.to(inputs.dtype), None, self.name, target.public(), info)

    def _reference_draws(self, refs: ReferenceSet, total: int) -> torch.Tensor:
        rng = generator(self.seed, torch.device("cpu"))
        return torch.randint(0, refs.k, (total, self.samples), generator=rng)

    def _rows(self, inputs: torch.Tensor, refs: ReferenceSet, windows: Windows):
        total, draws = windows.total, self.samples
        if self.sampling == "marginal":
            chosen = self._reference_draws(refs, total).to(inputs.device)

            def marginal(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                sample, rest = row // (total * draws), row % (total * draws)
                window, draw = rest // draws, rest % draws
                replacement = refs.rows(sample, chosen[window, draw])
                return torch.where(windows.masks(window), replacement, inputs[sample]), sample

            return marginal
        if refs.tensor.shape[0] != 1:
            raise ValueError("prediction_difference: conditional sampling needs references shared by all samples")
        if windows.size[0] != inputs.shape[1] or inputs.ndim != 4:
            raise ValueError(
                "prediction_difference: conditional sampling takes images (N, C, H, W) and windows over "
                "all channels; use sampling='marginal' otherwise"
            )
        sampler = ConditionalSampler(refs.tensor[0], windows, self.padding, draws, self.seed)

        def conditional(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            sample, rest = row // (total * draws), row % (total * draws)
            window, draw = rest // draws, rest % draws
            return sampler.fill(inputs[sample], window, draw), sample

        return conditional
