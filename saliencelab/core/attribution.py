"""The result of an attribution method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Attribution:
    """Attribution of a batch of predictions to the input features.

    Every tensor it holds (``values``, ``delta``, ``target``, those in ``info``)
    is detached from the autograd graph, also when the inputs require gradients,
    so ``a.values.numpy()`` always works.

    Attributes
    ----------
    values:
        Tensor with the input's shape, dtype and device (CAM maps: ``(N, 1, H, W)``).
    delta:
        Per-sample completeness error ``|sum(values) - (f(x) - f(baseline))|`` as a
        tensor of shape ``(N,)``, or ``None`` for methods without a reference.
    method:
        Name of the method that produced the values.
    target:
        The resolved target: an int64 tensor of class indices ``(N,)``, the
        callable that was given, or ``None`` for a model with one output per sample.
    info:
        Method-specific facts, for example ``info["steps"]``: the integration
        steps used for each sample by Integrated Gradients.

    Example
    -------
    >>> import torch, saliencelab as sl
    >>> model = torch.nn.Linear(3, 2)
    >>> a = sl.explain(model, torch.ones(1, 3), method="gradient", target=0)
    >>> torch.equal(a.values[0], model.weight[0].detach())
    True
    """

    values: torch.Tensor
    delta: torch.Tensor | None
    method: str
    target: torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("values", "delta", "target", "info"):
            object.__setattr__(self, name, detached(getattr(self, name)))

    def __repr__(self) -> str:
        """One line of at most about 400 characters: dtypes and shapes, never tensor data.

        Example
        -------
        >>> a = Attribution(torch.zeros(2, 1, 8, 8), torch.tensor([1e-7, -3e-7]), "gradient", torch.tensor([0, 1]),
        ...                 {"steps": torch.tensor([32, 64]), "note": "x" * 100})
        >>> a
        Attribution(method='gradient', values=float32[2, 1, 8, 8], delta=float32[2] max 3e-07, target=int64[2], \
info={'steps': int64[2], 'note': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'})
        """
        delta = summary(self.delta)
        if isinstance(self.delta, torch.Tensor) and self.delta.numel() and self.delta.is_floating_point():
            delta += f" max {float(self.delta.abs().max()):.2g}"
        entries = []
        for key, item in self.info.items():
            entry = f"{summary(key)}: {summary(item)}"
            if sum(len(e) + 2 for e in entries) + len(entry) > INFO_CHARACTERS:
                entries.append(f"... {len(self.info) - len(entries)} more")
                break
            entries.append(entry)
        return (
            f"Attribution(method={summary(self.method)}, values={summary(self.values)}, delta={delta}, "
            f"target={summary(self.target)}, info={{{', '.join(entries)}}})"
        )

    def plot(self, index: int = 0, *, image: Any = None, **options: Any) -> Any:
        """Draw sample ``index``: :func:`saliencelab.viz.heatmap`, :func:`saliencelab.viz.overlay` over ``image``,
        or, for tabular attributions ``(N, D)``, :func:`saliencelab.viz.bars`.

        Parameters
        ----------
        index:
            Which sample of the batch to draw.
        image:
            The inputs (a batch: its sample ``index`` is used) or one image; not for tabular attributions.
        **options:
            Passed on (``sign``, ``aggregate``, ``percentile``, ``ax``, ``mode``,
            ``colorbar``, ...; for bars ``feature_names``, ``top``, ``value_labels``);
            the title defaults to the method's name.

        Returns
        -------
        The matplotlib axes.

        Example
        -------
        >>> import matplotlib.pyplot as plt, torch, saliencelab as sl
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> a = sl.explain(model, torch.ones(2, 1, 4, 4), method="gradient", target=0)
        >>> ax = a.plot(1)
        >>> ax.get_title(), ax.images[0].get_array().shape
        ('gradient', (4, 4))
        >>> plt.close(ax.figure)
        >>> table = sl.explain(torch.nn.Linear(3, 2), torch.ones(2, 3), method="gradient_x_input", target=0)
        >>> ax = table.plot(0, feature_names=["age", "income", "debt"], top=2)
        >>> len(ax.containers[0]), ax.get_title()
        (2, 'gradient_x_input')
        >>> plt.close(ax.figure)
        """
        from saliencelab import viz

        count = self.values.shape[0]
        if not -count <= index < count:
            raise ValueError(f"index {index} is outside the batch of {count} samples")
        options.setdefault("title", self.method)
        values = self.values[index]
        if self.values.ndim == 2:
            if image is not None:
                raise ValueError("tabular attributions (N, D) are drawn as bars, without an image; drop image=")
            if "feature_names" in self.info:
                options.setdefault("feature_names", self.info["feature_names"])
            return viz.bars(values, **options)
        if image is None:
            return viz.heatmap(values, **options)
        if isinstance(image, torch.Tensor) and image.ndim == 4:
            if image.shape[0] != count:
                raise ValueError(
                    f"image is a batch of {image.shape[0]} but the attribution has {count} samples; "
                    "pass the explained inputs or one image"
                )
            image = image[index]
        return viz.overlay(image, values, **options)


INFO_CHARACTERS = 200
"""``repr(Attribution)`` lists ``info`` entries up to about this many characters, then counts the rest."""
SHORT_CHARACTERS = 45
"""Longer reprs of single values (strings, numbers, names) are cut to this many characters in summaries."""


def summary(value: Any) -> str:
    """A short one-line description of ``value``: dtype and shape of a tensor, length of a container.

    Example
    -------
    >>> summary(torch.zeros(2, 3)), summary(torch.tensor(0.5)), summary([1, 2]), summary(None), summary(summary)
    ('float32[2, 3]', 'float32 0.5', 'list[2]', 'None', 'summary')
    """
    if isinstance(value, torch.Tensor):
        kind = str(value.dtype).removeprefix("torch.")
        where = "" if value.device.type == "cpu" else f" on {value.device}"
        if value.ndim == 0:
            return f"{kind} {shortened(repr(value.item()))}{where}"
        return f"{kind}[{', '.join(str(size) for size in value.shape)}]{where}"
    if isinstance(value, str):
        return repr(shortened(value))
    if value is None or isinstance(value, (bool, int, float)):
        return shortened(repr(value))
    if isinstance(value, (list, tuple, dict, set)):
        return f"{type(value).__name__}[{len(value)}]"
    return shortened(getattr(value, "__qualname__", type(value).__name__))


def shortened(text: str) -> str:
    """``text`` cut to :data:`SHORT_CHARACTERS`, ending in ``...`` when cut.

    Example
    -------
    >>> shortened("abc"), len(shortened("x" * 1000))
    ('abc', 45)
    """
    if len(text) <= SHORT_CHARACTERS:
        return text
    return text[: SHORT_CHARACTERS - 3] + "..."


def detached(value: Any) -> Any:
    """``value`` with every tensor in it detached from the autograd graph (through dicts, lists and tuples).

    Example
    -------
    >>> x = torch.ones(2, requires_grad=True)
    >>> out = detached({"sum": x.sum(), "parts": [x * 2, "label"]})
    >>> out["sum"].requires_grad, out["parts"][0].requires_grad, out["parts"][1]
    (False, False, 'label')
    """
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return {key: detached(item) for key, item in value.items()}
    if type(value) in (list, tuple):  # not a named tuple, whose constructor takes fields
        return type(value)(detached(item) for item in value)
    return value
