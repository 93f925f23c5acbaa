"""DeepSHAP on one-hot DNA with shuffled references, and hypothetical contributions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saliencelab import genomics


def _dinucleotides(onehot_lx4: torch.Tensor) -> torch.Tensor:
    bases = onehot_lx4.argmax(-1)
    counts = torch.zeros(4, 4)
    counts.index_put_((bases[:-1], bases[1:]), torch.ones(len(bases) - 1), accumulate=True)
    return counts


class MotifNet(nn.Module):
    """Conv1d over (N, 4, L), ReLU, global max pool, linear: a typical motif detector."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(4, 6, 5), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).amax(dim=2))


def _sequences(n=3, length=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.eye(4, dtype=torch.float64)[torch.randint(4, (n, length), generator=g)]  # (N, L, 4)


def test_shuffled_references_keep_each_sequence_dinucleotides():
    x = _sequences()
    refs = genomics.shuffled_references(x, n=5, seed=3)
    assert refs.shape == (3, 5, 40, 4)
    for i in range(3):
        for k in range(5):
            torch.testing.assert_close(_dinucleotides(refs[i, k]), _dinucleotides(x[i]))
    channels_first = genomics.shuffled_references(x.transpose(1, 2), n=5, seed=3, alphabet_axis=1)
    torch.testing.assert_close(channels_first, refs.transpose(2, 3))
    with pytest.raises(ValueError, match="alphabet_axis"):
        genomics.shuffled_references(x, n=2, alphabet_axis=0)


def test_contributions_sum_to_the_change_from_the_shuffles():
    torch.manual_seed(0)
    model = MotifNet().double()
    x = _sequences().transpose(1, 2)  # (N, 4, L)
    a = genomics.deepshap(model, x, target=1, shuffles=8, seed=1, alphabet_axis=1)
    refs = genomics.shuffled_references(x, 8, seed=1, alphabet_axis=1)
    with torch.no_grad():
        change = model(x)[:, 1] - model(refs.flatten(0, 1))[:, 1].reshape(3, 8).mean(1)
    torch.testing.assert_close(a.values.flatten(1).sum(1), change, rtol=1e-9, atol=1e-12)


def test_hypothetical_contributions_at_the_present_base_are_the_contributions():
    torch.manual_seed(1)
    model = MotifNet().double()
    x = _sequences().transpose(1, 2)
    contributions = genomics.deepshap(model, x, target=0, shuffles=6, alphabet_axis=1).values
    hypothetical = genomics.deepshap(model, x, target=0, shuffles=6, alphabet_axis=1, hypothetical=True)
    assert hypothetical.delta is None
    torch.testing.assert_close((hypothetical.values * x).sum(1), contributions.sum(1), rtol=1e-10, atol=1e-12)
    assert (hypothetical.values * (1 - x)).abs().sum() > 0  # absent bases get scores too


def test_hypothetical_contributions_of_a_linear_model_are_its_weights_centred_on_the_references():
    """For f(x) = Σ w·x the multipliers are w, so h[l, b] = w[l, b] − mean_k Σ_b' w[l, b'] r_k[l, b']."""
    weights = torch.randn(1, 40 * 4, dtype=torch.float64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(160, 1, bias=False)).double()
    model[1].weight.data.copy_(weights)
    x = _sequences(n=2)
    h = genomics.deepshap(model, x, shuffles=5, seed=2, hypothetical=True).values
    refs = genomics.shuffled_references(x, 5, seed=2)
    w = weights.reshape(40, 4)
    expected = w - (w * refs).sum(-1, keepdim=True).mean(1)
    torch.testing.assert_close(h, expected, rtol=1e-10, atol=1e-12)
