"""Reading images and tensor files for the command line (saliencelab.io.inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from saliencelab.io.errors import InputShapeError, MissingFileError
from saliencelab.io.inputs import load_input, normalise, read_image, read_tensor


def test_resizing_agrees_with_pillows_bilinear_filter(tmp_path):
    # The reference: Pillow's own antialiased bilinear resize of the same float image (mode "F").
    # torch's antialias=True implements the same triangle filter; they agree to float32 rounding.
    pixels = np.random.default_rng(0).integers(0, 256, size=(37, 53), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    as_float = Image.fromarray(pixels.astype(np.float32) / 255, mode="F")
    for size in [(8, 8), (20, 30), (74, 106)]:
        expected = np.asarray(as_float.resize(size[::-1], Image.Resampling.BILINEAR))
        got = read_image(tmp_path / "noise.png", size=size)[0].numpy()
        np.testing.assert_allclose(got, expected, atol=2e-6)


def test_pixels_are_scaled_to_the_unit_interval_in_8_and_16_bits(tmp_path):
    Image.fromarray(np.array([[0, 51, 255]], dtype=np.uint8)).save(tmp_path / "eight.png")
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(tmp_path / "sixteen.png")
    assert read_image(tmp_path / "eight.png").flatten().tolist() == pytest.approx([0.0, 0.2, 1.0])
    assert read_image(tmp_path / "sixteen.png").flatten().tolist() == pytest.approx([0.0, 32768 / 65535, 1.0])
    assert read_image(tmp_path / "sixteen.png", channels=3).shape == (3, 1, 3)


def test_grey_and_rgb_conversions(tmp_path):
    Image.new("RGB", (2, 1), (200, 100, 50)).save(tmp_path / "colour.png")
    Image.fromarray(np.array([[10, 250]], dtype=np.uint8)).save(tmp_path / "grey.png")
    rgb = read_image(tmp_path / "colour.png")
    assert rgb[:, 0, 0].tolist() == pytest.approx([200 / 255, 100 / 255, 50 / 255])
    # Pillow's luma L = R * 299/1000 + G * 587/1000 + B * 114/1000 = 124.3, stored as the integer 124
    assert read_image(tmp_path / "colour.png", channels=1).flatten().tolist() == pytest.approx([124 / 255] * 2)
    grey_as_rgb = read_image(tmp_path / "grey.png", channels=3)
    assert grey_as_rgb.shape == (3, 1, 2) and torch.equal(grey_as_rgb[0], grey_as_rgb[2])
    assert read_image(tmp_path / "grey.png").shape == (1, 1, 2)  # a grey image stays grey by default


def test_normalisation_per_channel_and_display_range(tmp_path):
    Image.new("RGB", (1, 1), (255, 0, 51)).save(tmp_path / "pixel.png")
    loaded = load_input(tmp_path / "pixel.png", mean=[0.5, 0.0, 0.2], std=[0.25, 1.0, 0.5])
    assert loaded.inputs.flatten().tolist() == pytest.approx([2.0, 0.0, 0.0])
    assert loaded.display.flatten().tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert normalise(torch.full((1, 3, 1, 1), 0.5), mean=[0.5], std=None).abs().max() == 0


def test_tensor_files_are_taken_as_they_are_and_shown_per_sample_min_to_max(tmp_path):
    batch = torch.tensor([[[[-2.0, 2.0]]], [[[3.0, 3.0]]]])
    torch.save(batch, tmp_path / "batch.pt")
    np.save(tmp_path / "sample.npy", np.array([[[1.0, 2.0, 5.0]]]))
    loaded = load_input(tmp_path / "batch.pt", size=(4, 4), mean=[9.0])  # image options do not apply
    assert torch.equal(loaded.inputs, batch)
    assert loaded.display.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]  # a constant sample shows as zeros
    sample = load_input(tmp_path / "sample.npy")
    assert sample.inputs.dtype == torch.float32 and sample.inputs.flatten().tolist() == [1.0, 2.0, 5.0]
    assert sample.display.flatten().tolist() == pytest.approx([0.0, 0.25, 1.0])


def test_unreadable_or_unfit_files_are_named_in_the_error(tmp_path):
    np.save(tmp_path / "ints.npy", np.zeros((1, 4, 4), dtype=np.uint8))
    np.save(tmp_path / "flat.npy", np.zeros(4, dtype=np.float32))
    (tmp_path / "text.txt").write_text("hello")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputShapeError, match=r"uint8 values.*astype\('float32'\) / 255"):
        read_tensor(tmp_path / "ints.npy")
    with pytest.raises(InputShapeError, match=r"shape \(4,\); give one sample \(C, H, W\)"):
        read_tensor(tmp_path / "flat.npy")
    with pytest.raises(MissingFileError, match="inputs are images"):
        load_input(tmp_path / "text.txt")
    with pytest.raises(MissingFileError, match="cannot read the image"):
        load_input(tmp_path / "broken.png")
    with pytest.raises(MissingFileError, match="does not exist"):
        load_input(tmp_path / "nothing.png")


def test_non_finite_tensor_files_are_input_errors(tmp_path):
    np.save(tmp_path / "inf.npy", np.array([[[0.0, np.inf], [np.nan, 1.0]]], dtype=np.float32))
    with pytest.raises(InputShapeError) as error:
        read_tensor(tmp_path / "inf.npy")
    assert str(error.value).startswith(
        f"{tmp_path / 'inf.npy'}: the inputs contain 2 NaN or Inf values (first at index"
    )
    assert error.value.exit_code == 6
