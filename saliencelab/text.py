"""Text models: token ids are attributed at their embedding layer, and summed per token.

Token ids are integers, so gradients cannot reach them: the gradient and
reference methods attribute the embedding layer's output instead
(``sl.explain(model, ids, method=..., layer=model.embeddings, baseline=pad_id)``,
the baseline given as token ids and mapped through the same layer), and
:func:`token_scores` sums each token's embedding dimensions. Perturbation methods
take the ids themselves and replace tokens by the baseline id.

:func:`explain` does all of this for a Hugging Face model and its tokenizer,
from raw texts: it pads the batch, attributes at ``model.get_input_embeddings()``
and gives scores per token and per word. Its targets: a class of a sequence
classifier, :func:`similarity` to another text (sentence embeddings),
:func:`next_token` for causal language models and :func:`masked_token` for
masked ones.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from saliencelab.core import registry
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


def _position_columns(attention_mask: torch.Tensor, position: int) -> torch.Tensor:
    """The column of each row's ``position``-th real token (negative: from the last real token), ``(N,)``."""
    real = attention_mask.bool()
    lengths = real.sum(dim=1)
    wanted = lengths + position if position < 0 else torch.full_like(lengths, position)
    if bool(((wanted < 0) | (wanted >= lengths)).any()):
        raise ValueError(f"position={position} is outside a text of {int(lengths.min())} tokens; pick a closer one")
    rank = real.long().cumsum(dim=1) - 1  # the rank of each real token among its row's real tokens
    return ((rank == wanted[:, None]) & real).long().argmax(dim=1)


def _logits(output: Any) -> torch.Tensor:
    """The logits in a model's output: the output itself if a tensor, else its ``logits`` field."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None:
        raise TypeError(
            f"the model returned a {type(output).__name__} without logits: a class target needs a classifier and "
            "next_token a causal language model (e.g. AutoModelForCausalLM); a sentence encoder takes similarity"
        )
    return logits


@dataclass(frozen=True)
class NextToken:
    """Log-probability of a next token (see :func:`next_token`); callable on logits ``(N, T, V)``.

    Example
    -------
    >>> NextToken(0)(torch.zeros(1, 2, 4))  # four equally likely tokens
    tensor([-1.3863])
    """

    token: int | str
    versus: int | str | None = None
    position: int = -1

    def resolve(self, tokenizer: Any) -> NextToken:
        """The same target with token strings turned into ids by ``tokenizer``."""
        return NextToken(_token_id(self.token, tokenizer), _token_id(self.versus, tokenizer), self.position)

    def score(self, output: Any, input_ids: torch.Tensor | None, attention_mask: torch.Tensor) -> torch.Tensor:
        """The target's score per row, read at the row's ``position``-th real token."""
        columns = _position_columns(attention_mask, self.position)
        return _log_probability(_logits(output), columns, self.token, self.versus)

    def __call__(self, output: Any) -> torch.Tensor:
        logits = _logits(output)
        return self.score(logits, None, torch.ones(logits.shape[:2], dtype=torch.long, device=logits.device))


def _log_probability(logits: torch.Tensor, columns: torch.Tensor, token: Any, versus: Any) -> torch.Tensor:
    """``log p(token)`` (minus ``log p(versus)``, if given) of each row's distribution at its column, ``(N,)``."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    log_probs = torch.log_softmax(logits[rows, columns.to(logits.device)], dim=-1)
    scores = log_probs[:, _token_id(token, None)]
    return scores if versus is None else scores - log_probs[:, _token_id(versus, None)]


def _token_id(token: int | str | None, tokenizer: Any) -> int | None:
    """``token`` as a vocabulary id: an int as it is, a string through ``tokenizer`` (it must be one token)."""
    if token is None or isinstance(token, int):
        return token
    if tokenizer is None:
        raise TypeError(f"the token {token!r} is a string: give its id, or explain through sl.text.explain")
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"{token!r} is {len(ids)} tokens for this tokenizer ({ids}); give one token or its id")
    return ids[0]


def next_token(token: int | str, *, versus: int | str | None = None, position: int = -1) -> NextToken:
    """Target of a causal language model: ``log p(token)`` predicted after the ``position``-th real token.

    ``versus=b``: the contrast ``log p(token) − log p(b)`` (which of two
    continuations, and why). ``position`` counts real tokens (``-1``: the last
    one), so padding on either side does not move it. Use it in :func:`explain`
    (tokens may be strings), or as ``target=`` of ``sl.explain`` on a model
    returning logits ``(N, T, V)`` of unpadded ids (tokens as ids).

    Example
    -------
    >>> logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]]))
    >>> next_token(1)(logits), next_token(1, versus=2)(logits), next_token(0, position=0)(logits)
    (tensor([-0.5108]), tensor([0.6931]), tensor([-0.6931]))
    """
    _check_tokens(token, versus)
    if not isinstance(position, int) or isinstance(position, bool):
        raise TypeError(f"position must be an int; got {type(position).__name__}")
    return NextToken(token, versus, position)


def _check_tokens(token: object, versus: object) -> None:
    for name, value in (("token", token), ("versus", versus)):
        if (value is not None or name == "token") and not isinstance(value, int | str) or isinstance(value, bool):
            raise TypeError(f"{name} must be a token id (int) or a token string; got {type(value).__name__}")


@dataclass(frozen=True)
class Similarity:
    """Cosine similarity of a text's sentence embedding to another's (see :func:`similarity`).

    Example
    -------
    >>> Similarity("a text").resolve("its tokenizer").tokenizer
    'its tokenizer'
    """

    other: str | torch.Tensor
    tokenizer: Any = None
    pooling: str = "mean"
    reference: torch.Tensor | None = field(default=None, repr=False)

    def resolve(self, tokenizer: Any) -> Similarity:
        """The same target, with ``tokenizer`` for the other text unless it has one (or is an embedding)."""
        return self if self.tokenizer is not None or isinstance(self.other, torch.Tensor) else self._with(tokenizer)

    def _with(self, tokenizer: Any) -> Similarity:
        return Similarity(self.other, tokenizer, self.pooling, self.reference)

    def bind(self, model: nn.Module, device: torch.device, dtype: torch.dtype) -> Similarity:
        """The same target with the other text's embedding computed by ``model`` (without gradients)."""
        if isinstance(self.other, torch.Tensor):
            reference = self.other.to(device, dtype)
        else:
            encoded = _encode(self.tokenizer, [self.other], device)
            with torch.no_grad():
                output = model(**encoded)
            reference = self.embed(output, encoded["attention_mask"])[0]
        return Similarity(self.other, self.tokenizer, self.pooling, reference)

    def embed(self, output: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        """The sentence embedding of each row: its last hidden state pooled over the real tokens."""
        hidden = output if isinstance(output, torch.Tensor) else output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = attention_mask.to(hidden.dtype)[..., None]
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def score(self, output: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each row's embedding to the other text's, ``(N,)``."""
        if self.reference is None:
            raise RuntimeError("a similarity target is bound to a model by sl.text.explain before it scores")
        embedding = self.embed(output, attention_mask)
        return torch.nn.functional.cosine_similarity(embedding, self.reference[None].expand_as(embedding), dim=1)


def similarity(other: str | torch.Tensor, *, tokenizer: Any = None, pooling: str = "mean") -> Similarity:
    """Target of a sentence encoder: the cosine similarity of each text's embedding to ``other``'s.

    The embedding is the last hidden state averaged over the real tokens
    (``pooling="mean"``, attention mask as weights: what sentence-transformers
    does for all-MiniLM-L6-v2) or the first token's (``"cls"``). ``other`` is a
    text (embedded by the same model, tokenized by ``tokenizer``, by default the
    one given to :func:`explain`) or an embedding ``(D,)``. Attributions then say
    which tokens make the texts similar (positive) or set them apart (negative).

    Example
    -------
    >>> target = similarity(torch.tensor([1.0, 0.0]), pooling="mean").bind(None, torch.device("cpu"), torch.float32)
    >>> hidden, mask = torch.tensor([[[1.0, 1.0], [1.0, -1.0], [5.0, 5.0]]]), torch.tensor([[1, 1, 0]])
    >>> target.score(hidden, None, mask)  # the mean of the two real tokens is (1, 0)
    tensor([1.])
    """
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls'; got {pooling!r}")
    if not isinstance(other, str | torch.Tensor):
        raise TypeError(f"other must be a text or an embedding tensor (D,); got {type(other).__name__}")
    if isinstance(other, torch.Tensor) and other.ndim != 1:
        raise ValueError(f"an embedding to compare with has shape (D,); got {tuple(other.shape)}")
    return Similarity(other, tokenizer, pooling)


@dataclass(frozen=True)
class MaskedToken:
    """Log-probability of a token at the mask token of each text (see :func:`masked_token`).

    Example
    -------
    >>> MaskedToken(1, mask_id=5).score(torch.zeros(1, 2, 4), torch.tensor([[5, 3]]), torch.ones(1, 2))
    tensor([-1.3863])
    """

    token: int | str
    versus: int | str | None = None
    mask_id: int | None = None

    def resolve(self, tokenizer: Any) -> MaskedToken:
        """The same target with token strings turned into ids, and the tokenizer's mask token id."""
        if tokenizer.mask_token_id is None:
            raise ValueError("masked_token needs a tokenizer with a mask token (a masked language model's)")
        return MaskedToken(_token_id(self.token, tokenizer), _token_id(self.versus, tokenizer), tokenizer.mask_token_id)

    def score(self, output: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The target's score per row, read at the row's first mask token."""
        masked = input_ids == self.mask_id
        if not bool(masked.any(dim=1).all()):
            raise ValueError("masked_token explains the prediction at a mask token: put one in every text")
        return _log_probability(_logits(output), masked.long().argmax(dim=1), self.token, self.versus)


def masked_token(token: int | str, *, versus: int | str | None = None) -> MaskedToken:
    """Target of a masked language model: ``log p(token)`` at the (first) mask token of each text.

    ``versus=b``: the contrast ``log p(token) − log p(b)``. Every text holds the
    tokenizer's mask token (``[MASK]`` for BERT); being a special token, it is
    never replaced by the reference. For :func:`explain`.

    Example
    -------
    >>> target = masked_token(2, versus=0).resolve(type("Tokenizer", (), {"mask_token_id": 9})())
    >>> logits = torch.log(torch.tensor([[[0.2, 0.3, 0.5], [0.25, 0.25, 0.5]]]))
    >>> target.score(logits, torch.tensor([[4, 9]]), torch.ones(1, 2))  # at column 1: log(0.5 / 0.25)
    tensor([0.6931])
    """
    _check_tokens(token, versus)
    return MaskedToken(token, versus)


TextTarget = NextToken | Similarity | MaskedToken


class _Scored(nn.Module):
    """The user's model with its output turned into what the target needs: the logits, or one score per text."""

    def __init__(self, model: nn.Module, target: TextTarget | None) -> None:
        super().__init__()
        self.model, self.target = model, target
        self.training = model.training  # the wrapper's own flag only: the user's model keeps its mode

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if self.target is None:
            return _logits(output)
        return self.target.score(output, input_ids, attention_mask)


def _encode(tokenizer: Any, texts: list[str], device: torch.device) -> Any:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("sl.text.explain needs a fast tokenizer (word_ids() merges pieces into words)")
    if len(texts) > 1 and tokenizer.pad_token_id is None:
        raise ValueError(
            "the tokenizer has no pad token to pad a batch: set one, e.g. tokenizer.pad_token = tokenizer.eos_token"
        )
    return tokenizer(texts, padding=True, return_tensors="pt").to(device)


@dataclass(frozen=True)
class TextAttribution:
    """Scores of each text's tokens and words, from :func:`explain`.

    ``tokens[i]`` are text ``i``'s token strings without padding (special tokens
    such as ``[CLS]`` included, with score 0), ``token_scores[i]`` one score per
    such token; ``words[i]`` and ``word_scores[i]`` the words (pieces merged with
    the tokenizer's ``word_ids()``, special tokens left out) and the sum of their
    pieces' scores. ``attribution`` is the underlying :class:`~saliencelab.Attribution`
    over the padded batch (at the embeddings ``(N, T, D)``, or over the ids ``(N, T)``
    for perturbation methods), unmasked.

    Example
    -------
    >>> import saliencelab as sl
    >>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
    >>> r = explain(model, tokenizer, "Tokenization", target=similarity("Words"), method="feature_ablation")
    >>> r.tokens[0], r.words[0], bool(r.word_scores[0][0] == r.token_scores[0][1:3].sum())
    (['[CLS]', 'token', '##ization', '[SEP]'], ['tokenization'], True)
    """

    tokens: list[list[str]]
    token_scores: list[torch.Tensor]
    words: list[list[str]]
    word_scores: list[torch.Tensor]
    attribution: Attribution

    def _repr_html_(self) -> str:
        """Each text's tokens as a heatmap (Jupyter shows it): :func:`saliencelab.viz.tokens.token_heatmap_html`."""
        from saliencelab.viz.tokens import token_heatmaps_html

        return token_heatmaps_html(self.tokens, self.token_scores, caption=self.attribution.method)


@dataclass(frozen=True)
class TokenBatch:
    """Texts as :func:`explain` sees them: one padded batch, what is never replaced, and the reference ids.

    ``encoded`` is the tokenizer's output (input ids and attention mask ``(N, T)``,
    token type ids if it makes them); ``fixed`` marks the special tokens and
    padding (never replaced); ``reference`` holds the ids that replace the others.

    Example
    -------
    >>> import saliencelab as sl
    >>> batch = encode_batch(sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm"), ["Hi there", "Hello"])
    >>> batch.ids.tolist(), batch.reference.tolist()
    ([[101, 7632, 2045, 102], [101, 7592, 102, 0]], [[101, 0, 0, 102], [101, 0, 102, 0]])
    >>> sorted(batch.forward_args)
    ['attention_mask', 'token_type_ids']
    """

    encoded: Any
    fixed: torch.Tensor
    reference: torch.Tensor

    @property
    def ids(self) -> torch.Tensor:
        """The input ids, ``(N, T)``."""
        return self.encoded["input_ids"]

    @property
    def mask(self) -> torch.Tensor:
        """The attention mask, ``(N, T)``."""
        return self.encoded["attention_mask"]

    @property
    def forward_args(self) -> dict[str, torch.Tensor]:
        """What every model call takes besides the ids: the attention mask, and the token type ids if any."""
        return {name: value for name, value in self.encoded.items() if name != "input_ids"}


def encode_batch(model: nn.Module, tokenizer: Any, texts: str | Sequence[str], baseline: object = None) -> TokenBatch:
    """Tokenize ``texts`` as one padded batch on the model's device, with the reference of ``baseline``.

    ``baseline`` as in :func:`explain` (``None``: the pad id for every token but
    the special ones and padding). See :class:`TokenBatch` for an example.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise TypeError("texts must be a text or a non-empty list of texts (str)")
    if not isinstance(model, nn.Module) or not hasattr(model, "get_input_embeddings"):
        raise TypeError("sl.text takes a Hugging Face model (with get_input_embeddings()); use sl.explain")
    encoded = _encode(tokenizer, texts, model.get_input_embeddings().weight.device)
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    fixed = ~mask.bool() | torch.isin(ids, torch.tensor(tokenizer.all_special_ids, device=ids.device))
    return TokenBatch(encoded, fixed, _reference_ids(ids, fixed, baseline, tokenizer))


def scored_model(
    model: nn.Module, tokenizer: Any, target: object, batch: TokenBatch
) -> tuple[nn.Module, int | Sequence[int] | torch.Tensor | None]:
    """The model as the methods call it on ``batch`` (ids, then its forward arguments), and the class target left.

    A text target (:func:`similarity`, :func:`next_token`, :func:`masked_token`)
    is resolved with ``tokenizer`` (a similarity bound to ``model``) and the
    wrapped model returns its score per text, leaving no class target (``None``);
    otherwise the wrapped model returns the logits and ``target`` is the class target.

    Example
    -------
    >>> import saliencelab as sl
    >>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
    >>> batch = encode_batch(model, tokenizer, ["A cat"])
    >>> scored, left = scored_model(model, tokenizer, similarity("A cat"), batch)
    >>> round(float(scored(batch.ids, **batch.forward_args).detach()[0]), 4), left
    (1.0, None)
    """
    text_target = target.resolve(tokenizer) if isinstance(target, TextTarget) else None
    if isinstance(text_target, Similarity):
        text_target = text_target.bind(model, batch.ids.device, model.get_input_embeddings().weight.dtype)
    return _Scored(model, text_target), None if text_target else target


def explain(
    model: nn.Module,
    tokenizer: Any,
    texts: str | Sequence[str],
    *,
    method: str = "integrated_gradients",
    target: int | Sequence[int] | torch.Tensor | TextTarget | None = None,
    baseline: int | torch.Tensor | None = None,
    **options: Any,
) -> TextAttribution:
    """Attribute a Hugging Face model's predictions on ``texts`` to their tokens and words.

    The texts are tokenized as one padded batch; the attention mask (and the
    token type ids, if the tokenizer makes them) go to every model call. The
    gradient and reference methods attribute at ``model.get_input_embeddings()``
    (position embeddings and the rest see the texts' own ids) and sum each
    token's dimensions; the perturbation methods (``feature_ablation``,
    ``kernel_shap``, ``occlusion`` with a window of one token by default, ...)
    replace token ids by the reference's.

    Special tokens (the tokenizer's ``all_special_ids``: ``[CLS]``, ``[SEP]``,
    also ``[UNK]``) and padding are never replaced: the reference keeps them, the
    perturbation methods' ``feature_mask`` puts them all in one group whose
    ablation changes nothing, and their scores are set to 0 (for Integrated
    Gradients they are 0 already, so completeness holds over the real tokens).

    Parameters
    ----------
    model:
        A Hugging Face model (``transformers.PreTrainedModel``); left unchanged.
    tokenizer:
        Its fast tokenizer.
    texts:
        A text or a list of texts.
    method:
        Any name of ``sl.available_methods()`` that attributes at a layer or takes token ids.
    target:
        A class (or one per text) of a sequence classifier's logits, ``None`` for
        its argmax, :func:`similarity` for a sentence encoder, :func:`next_token`
        for a causal language model or :func:`masked_token` for a masked one.
    baseline:
        The reference: ``None`` (default) replaces every non-special token by the
        pad id, an int by that id; a tensor of ids ``(N, T)`` or ``(T,)`` over the
        padded batch is used as it is. Methods without a reference (``gradient``,
        ``gradient_x_input``, ``smoothgrad``, ``lrp``) get none unless one is given
        here, which they then refuse.
    **options:
        Passed to ``sl.explain`` (``steps``, ``seed``, ``feature_mask``, ...).

    Example
    -------
    >>> import saliencelab as sl
    >>> model, tokenizer = sl.zoo.load("minilm"), sl.zoo.tokenizer("minilm")
    >>> texts = ["A man plays the guitar.", "Unbelievable weather"]
    >>> result = explain(model, tokenizer, texts, target=similarity("Someone plays music."), steps=16)
    >>> result.tokens[1], result.words[1]
    (['[CLS]', 'unbelievable', 'weather', '[SEP]'], ['unbelievable', 'weather'])
    >>> result.token_scores[0].shape, float(result.token_scores[0][0])  # [CLS] scores 0
    (torch.Size([8]), 0.0)
    """
    from saliencelab.api import explain as explain_inputs

    batch = encode_batch(model, tokenizer, texts, baseline)
    scored, class_target = scored_model(model, tokenizer, target, batch)
    cls = registry.get(method)
    call = {"forward_args": batch.forward_args, **options}
    if cls.integer_inputs:
        accepted = registry.option_names(cls)
        if "feature_mask" in accepted:
            columns = torch.arange(batch.ids.shape[1], device=batch.ids.device)
            call.setdefault("feature_mask", torch.where(batch.fixed, batch.ids.shape[1], columns))
        if "window" in accepted:
            call.setdefault("window", 1)
            call.setdefault("stride", 1)
    else:
        call["layer"] = model.get_input_embeddings()
    # gradient, gradient × input, SmoothGrad and LRP take no reference: only a baseline the user gave reaches them
    reference = batch.reference if cls.takes_baseline or baseline is not None else None
    result = explain_inputs(scored, batch.ids, method, class_target, reference, **call)
    scores = (result.values if result.values.ndim == 2 else token_scores(result)).masked_fill(batch.fixed, 0.0)
    return _per_text(tokenizer, batch.encoded, scores, result)


def _reference_ids(ids: torch.Tensor, fixed: torch.Tensor, baseline: object, tokenizer: Any) -> torch.Tensor:
    """The reference ids: ``ids`` where ``fixed``, elsewhere the baseline id (default: the pad id)."""
    if isinstance(baseline, torch.Tensor):
        if baseline.is_floating_point() or baseline.shape not in (ids.shape, ids.shape[1:]):
            raise ValueError(
                f"a baseline tensor holds token ids of the padded batch's shape {tuple(ids.shape)}; got "
                f"{baseline.dtype} of shape {tuple(baseline.shape)}"
            )
        return baseline.to(ids.device).expand_as(ids)
    if baseline is None:
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token for the default reference: pass baseline=<a token id>")
        baseline = tokenizer.pad_token_id
    if not isinstance(baseline, int) or isinstance(baseline, bool):
        raise TypeError(f"baseline must be None, a token id or a tensor of ids; got {type(baseline).__name__}")
    return torch.where(fixed, ids, baseline)


def _per_text(tokenizer: Any, encoded: Any, scores: torch.Tensor, result: Attribution) -> TextAttribution:
    """Split the padded batch's scores into each text's tokens, and merge pieces into words."""
    tokens, per_token, words, per_word = [], [], [], []
    for row, (ids, real) in enumerate(zip(encoded["input_ids"], encoded["attention_mask"].bool(), strict=True)):
        tokens.append(tokenizer.convert_ids_to_tokens(ids[real].tolist()))
        per_token.append(scores[row][real])
        pieces: dict[int, list[int]] = {}
        for column, word in enumerate(encoded.word_ids(row)):
            if word is not None and real[column]:
                pieces.setdefault(word, []).append(column)
        words.append([tokenizer.decode(ids[columns]).strip() for columns in pieces.values()])
        per_word.append(scores.new_tensor([float(scores[row][columns].sum()) for columns in pieces.values()]))
    return TextAttribution(tokens, per_token, words, per_word, result)
