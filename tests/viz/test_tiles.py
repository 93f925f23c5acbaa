"""Map and image tiles: one PNG per map on its own scale, centred on zero or on the map's mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from saliencelab.viz.tiles import save_image, save_map, scale_colours


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=int)


def test_a_map_tile_is_blocks_of_its_pixels_white_at_zero_and_saturated_at_the_percentile(tmp_path):
    values = torch.tensor([[[0.0, 1.0, -1.0], [4.0, -4.0, 0.5]]])
    tile = save_map(values, tmp_path / "m.png", percentile=100, side=12)
    pixels = rgb(tile.path)
    assert pixels.shape == (8, 12, 3)  # 2 × 3 pixels as 4-px blocks: the longer side reaches 12
    assert (tile.low, tile.centre, tile.high) == (-4.0, 0.0, 4.0)
    low, white, high = ([int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in scale_colours())
    assert pixels[0, 0].tolist() == white and pixels[4, 0].tolist() == high and pixels[4, 4].tolist() == low
    assert (pixels[:4, :4] == pixels[0, 0]).all()  # one value per block


def test_a_centred_tile_is_white_at_the_map_mean(tmp_path):
    values = torch.tensor([[[5.0, 6.0, 7.0]]])  # expected scores: all positive
    plain = rgb(save_map(values, tmp_path / "plain.png", side=3).path)
    assert (plain[..., 0] > plain[..., 2]).all()  # uncentred, every pixel is red
    tile = save_map(values, tmp_path / "centred.png", centred=True, percentile=100, side=3)
    assert (tile.low, tile.centre, tile.high) == pytest.approx((5.0, 6.0, 7.0))
    pixels = rgb(tile.path)[0]
    assert pixels[1].tolist() == [255, 255, 255]
    assert pixels[0, 2] > pixels[0, 0] and pixels[2, 0] > pixels[2, 2]  # below the mean blue, above it red


def test_an_image_tile_follows_the_display_rule(tmp_path):
    path = save_image(torch.tensor([[[0.0, 1.0]]]), tmp_path / "x.png", side=2)
    assert rgb(path)[0].tolist() == [[0, 0, 0], [255, 255, 255]]
    with pytest.raises(ValueError, match="side is a number of pixels"):
        save_image(torch.zeros(1, 2, 2), tmp_path / "y.png", side=0)
