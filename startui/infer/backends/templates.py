"""Chat templates for backends that only see raw text (OpenAI-compatible servers, vLLM).

The engine continues generation from an exact text prefix, so the first prompt must be the very
bytes the model was trained on — and the same bytes whichever backend serves the model. The
template therefore comes from the model's own tokenizer (``apply_chat_template``), or from a
Jinja template rendered by the same renderer transformers uses, never from a hand-written guess;
ChatML (Qwen's format) is only the last resort.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from startui.infer.backends.base import BackendError

log = logging.getLogger(__name__)

ChatTemplate = Callable[[list[dict[str, str]]], str]


def read_template(value: str) -> str:
    """``--chat-template`` is a file holding a Jinja template, or the template itself."""
    path = Path(value).expanduser()
    if "{" not in value and "\n" not in value:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as e:
            raise BackendError(f"cannot read the chat template file {value}: {e}; pass a Jinja "
                               "template file or the template text itself") from e
    return value


def _render(template: str, messages: list[dict[str, str]], special: dict[str, Any]) -> str:
    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError as e:
        raise BackendError("rendering a Jinja chat template needs transformers: "
                           "pip install -r requirements.txt") from e
    try:
        rendered, _ = render_jinja_template([messages], chat_template=template,
                                            add_generation_prompt=True, **special)
    except Exception as e:  # noqa: BLE001 - a broken template is the user's to fix
        raise BackendError(f"the chat template failed to render: {type(e).__name__}: {e}") from e
    return rendered[0]


def jinja_template(source: str, special_tokens: dict[str, Any] | None = None) -> ChatTemplate:
    """A template string or file, rendered with the generation prompt; ``special_tokens`` fills
    ``bos_token``/``eos_token`` the way a tokenizer would."""
    template = read_template(source)
    special = dict(special_tokens or {})
    return lambda messages: _render(template, messages, special)


def load_tokenizer(name: str, local_only: bool = False) -> Any:
    """``AutoTokenizer`` from a local directory (or a hub id where the user has network;
    ``local_only``: only from the Hugging Face cache, never asking the hub)."""
    try:
        from transformers import AutoTokenizer
    except ImportError as e:
        raise BackendError("loading a tokenizer needs transformers: "
                           "pip install -r requirements.txt") from e
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, hub errors: all the user's
        raise BackendError(
            f"cannot load the tokenizer {name!r}: {type(e).__name__}: {e}. Pass a local "
            "directory holding tokenizer.json / tokenizer_config.json (what save_pretrained "
            "writes), or a hub id on a machine with network") from e


def tokenizer_template(tokenizer: Any, override: str | None = None) -> ChatTemplate | None:
    """The tokenizer's own template (or ``override`` rendered with its special tokens);
    None when the tokenizer has none."""
    template = read_template(override) if override else None
    if template is None and not getattr(tokenizer, "chat_template", None):
        return None

    def apply(messages: list[dict[str, str]]) -> str:
        try:
            return tokenizer.apply_chat_template(messages, chat_template=template,
                                                 add_generation_prompt=True, tokenize=False)
        except Exception as e:  # noqa: BLE001 - a broken template is the user's to fix
            raise BackendError(f"the chat template failed to render: "
                               f"{type(e).__name__}: {e}") from e

    return apply


def is_model_dir(path: str | None) -> bool:
    return bool(path) and os.path.isdir(os.path.expanduser(path or ""))


def resolve(*, chat_template: str | None = None, tokenizer: str | None = None,
            model: str | None = None) -> ChatTemplate | None:
    """The chat template a raw-text backend should use, from the most to the least explicit:
    a tokenizer (its template, or ``chat_template`` with its special tokens), a template alone,
    the model's own directory. None: the caller decides (ask the server, or ChatML)."""
    if tokenizer:
        found = tokenizer_template(load_tokenizer(tokenizer), chat_template)
        if found is None:
            raise BackendError(f"the tokenizer {tokenizer!r} has no chat template: pass one with "
                               "--chat-template FILE")
        return found
    if chat_template:
        return jinja_template(chat_template)
    if is_model_dir(model):
        assert model is not None
        found = tokenizer_template(load_tokenizer(os.path.expanduser(model)))
        if found is not None:
            return found
        log.warning("the tokenizer in %s has no chat template", model)
    return None
