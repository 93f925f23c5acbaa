"""Text models: token ids are attributed at their embedding layer, and summed per token.

Token ids are integers, so gradients cannot reach them: the gradient and
reference methods attribute the embedding layer's output instead
(``sl.explain(model, ids, method=..., layer=model.embeddings, baseline=pad_id)``,
the baseline given as token ids and mapped through the same layer), and
:func:`token_scores` sums each token's embedding dimensions. Perturbation methods
take the ids themselves and replace tokens by the baseline id.

Example
-------
>>> import torch, saliencelab as sl
>>> class Bag(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.embedding, self.head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)
...     def forward(self, ids):
...         return self.head(self.embedding(ids).mean(1))
>>> ids = torch.tensor([[1, 5, 7, 0]])
>>> a = sl.explain(Bag(), ids, method="integrated_gradients", target=1, baseline=0, layer="embedding")
>>> a.values.shape, token_scores(a).shape
(torch.Size([1, 4, 4]), torch.Size([1, 4]))
"""

from __future__ import annotations

import torch

from saliencelab.core.attribution import Attribution


def token_scores(attribution: Attribution | torch.Tensor) -> torch.Tensor:
    """One score per token: an embedding-layer attribution ``(N, T, D)`` summed over ``D``, giving ``(N, T)``.

    The sum keeps completeness: the token scores add up to what the embedding
    attributions add up to (``f(x) − f(x′)`` for Integrated Gradients and DeepLIFT).

    Example
    -------
    >>> token_scores(torch.ones(2, 3, 4)).tolist()
    [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]
    """
    values = attribution.values if isinstance(attribution, Attribution) else attribution
    if not isinstance(values, torch.Tensor) or values.ndim != 3:
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(
            f"token_scores sums an embedding-layer attribution (N, T, D) over D; got {shape}. Attribute with "
            "layer= the embedding layer"
        )
    return values.sum(dim=-1)
