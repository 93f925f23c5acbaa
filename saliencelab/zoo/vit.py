"""A small vision transformer (Dosovitskiy et al. 2021) for tests and benchmarks; no torchvision.

Patches are embedded by a strided convolution, position embeddings are
learned, each block is pre-norm self-attention and an MLP, and the head reads
the class token or, without one, the mean of the patch tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention over a token sequence ``(N, T, D)``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """A ViT classifier for square images.

    Parameters
    ----------
    image_size, patch_size:
        The grid is ``(image_size // patch_size)²`` patch tokens.
    dim, depth, heads:
        Token width, number of blocks, attention heads.
    class_token:
        Prepend a learned class token and classify from it (True), or classify
        from the mean of the patch tokens (False).

    Examples
    --------
    >>> net = VisionTransformer(image_size=16, patch_size=4, dim=8, depth=1, heads=2, num_classes=3).eval()
    >>> net(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 3])
    >>> net.blocks[-1](torch.zeros(2, 17, 8)).shape  # 16 patches and the class token
    torch.Size([2, 17, 8])
    """

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        num_classes: int = 10,
        in_channels: int = 3,
        class_token: bool = True,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        tokens = (image_size // patch_size) ** 2 + int(class_token)
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim)) if class_token else None
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)``."""
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.class_token is not None:
            tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = self.norm(self.blocks(tokens + self.pos_embed))
        pooled = tokens[:, 0] if self.class_token is not None else tokens.mean(1)
        return self.head(pooled)


def vit_tiny_shaped(num_classes: int = 10, image_size: int = 32, class_token: bool = True) -> VisionTransformer:
    """A randomly initialised tiny ViT: 4×4 patches, width 64, 4 blocks of 4 heads (~0.2 M parameters).

    Examples
    --------
    >>> net = vit_tiny_shaped(class_token=False).eval()
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
    """
    return VisionTransformer(image_size=image_size, num_classes=num_classes, class_token=class_token)
