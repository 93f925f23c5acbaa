"""Fixtures shared by the text tests."""

from __future__ import annotations

import pytest

import saliencelab as sl


@pytest.fixture(scope="module")
def tokenizer():
    """MiniLM's tokenizer, from the offline package."""
    pytest.importorskip("transformers")
    return sl.zoo.tokenizer("minilm")
