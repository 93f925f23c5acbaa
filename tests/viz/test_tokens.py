"""Token heatmaps in HTML: escaped strings, diverging colours scaled per text, word pieces joined."""

from __future__ import annotations

import re

import pytest

from saliencelab.viz.scale import colour_map
from saliencelab.viz.tokens import token_heatmap_html, token_heatmaps_html


def backgrounds(html: str) -> list[str]:
    return re.findall(r"background: (#[0-9a-f]{6})", html)


def hex_of(fraction: float) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in colour_map("all")(fraction)[:3])


def test_every_string_is_escaped_so_a_token_never_becomes_markup():
    html = token_heatmap_html(['<script>alert(1)</script>', 'say "hi" & go'], [1.0, -1.0])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'title="say &quot;hi&quot; &amp; go: -1"' in html  # the tooltip cannot close its attribute
    captioned = token_heatmaps_html([["a"]], [[0.5]], caption="<img src=x onerror=alert(1)>")
    assert "<img" not in captioned and "&lt;img src=x" in captioned


def test_colours_are_symmetric_per_text_unless_a_limit_is_given():
    # the largest |score| (2) saturates: -2 is the scale's blue end, 1 is halfway to red, 0 white
    assert backgrounds(token_heatmap_html(["a", "b", "c"], [-2.0, 1.0, 0.0])) == [hex_of(0.0), hex_of(0.75), "#ffffff"]
    assert backgrounds(token_heatmap_html(["a", "b"], [-2.0, 1.0], limit=4.0)) == [hex_of(0.25), hex_of(0.625)]
    assert backgrounds(token_heatmap_html(["a"], [9.0], limit=4.0)) == [hex_of(1.0)]  # beyond the limit: saturated
    assert backgrounds(token_heatmap_html(["a", "b"], [0.0, 0.0])) == ["#ffffff", "#ffffff"]  # nothing to scale


def test_word_pieces_join_their_word_and_special_tokens_are_grey():
    tokens = ["[CLS]", "token", "##ization", "works", "[SEP]"]
    html = token_heatmap_html(tokens, [0, 1, 1, 1, 0], special=["[CLS]", "[SEP]"])
    shown = re.findall(r"(\s?)<span class=\"sl-token\"[^>]*>([^<]*)</span>", html)
    assert shown == [("", "[CLS]"), (" ", "token"), ("", "ization"), (" ", "works"), (" ", "[SEP]")]
    assert len(backgrounds(html)) == 3 and html.count("color: #888") == 2
    gpt2 = re.findall(r"(\s?)<span[^>]*>([^<]*)</span>", token_heatmap_html(["The", "Ġcat", "s", "Ġran"], [0, 0, 0, 0]))
    assert gpt2[1:] == [(" ", "cat"), ("", "s"), (" ", "ran")]


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="one score per token"):
        token_heatmap_html(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="NaN or Inf"):
        token_heatmap_html(["a"], [float("nan")])
    with pytest.raises(ValueError, match="positive number"):
        token_heatmap_html(["a"], [1.0], limit=0.0)
    with pytest.raises(TypeError, match="token strings"):
        token_heatmap_html("ab", [1.0, 2.0])
