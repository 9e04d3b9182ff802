"""What several command groups share: the generation flags and what they build (a hint policy,
an engine config, a backend's options). Every ``startui.cli`` module may import this one; it imports
no other command module (that is what ends the old ``cli`` ↔ ``cli_rft`` loop)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from startui.infer.engine import DEFAULT_SYSTEM_PROMPT, EngineConfig
from startui.infer.hints import HintLibrary, HintPolicy


def policy(args: argparse.Namespace) -> HintPolicy:
    library = HintLibrary()
    if args.hints_file:
        library.add_file(args.hints_file)
    categories = tuple(c.strip() for c in args.categories.split(",")) if args.categories else None
    return HintPolicy(rounds=args.rounds, conjunction_p=args.conjunction_p, seed=args.seed,
                      categories=categories, library=library)


def engine_config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(max_tool_calls=args.max_tool_calls, max_tokens=args.max_tokens,
                        temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                        system_prompt=args.system_prompt, think_end=args.think_end,
                        kernel_timeout=args.timeout)


def add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default=os.environ.get("STARTUI_BACKEND", "llamacpp"),
                   help="llamacpp (embedded default), openai (any OpenAI-compatible server), "
                        "vllm, transformers, or scripted (env STARTUI_BACKEND)")
    p.add_argument("--model", default=os.environ.get("STARTUI_MODEL"),
                   help="model for the backend: a .gguf path for llamacpp (default: the embedded "
                        "Qwen2.5-Coder-1.5B-Instruct), the served model name for openai (default: "
                        "the server's first), a model directory or hub id for vllm and "
                        "transformers, a JSON script for scripted")
    p.add_argument("--base-url", action="append", default=None, metavar="URL",
                   help="openai/vllm: an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1; "
                        "repeat it to spread trajectories over several servers (env "
                        "STARTUI_BASE_URL, comma-separated). vllm without it starts a server")
    p.add_argument("--api-key", default=None,
                   help="openai/vllm: bearer key (env STARTUI_API_KEY or OPENAI_API_KEY)")
    p.add_argument("--tokenizer", default=os.environ.get("STARTUI_TOKENIZER"),
                   help="a tokenizer directory whose chat template builds the prompt "
                        "(default: the model's own, when --model is a local directory)")
    p.add_argument("--chat-template", default=os.environ.get("STARTUI_CHAT_TEMPLATE"),
                   help="a Jinja chat template file (or the template text) to use instead")
    p.add_argument("--vllm-command", default=os.environ.get("STARTUI_VLLM_COMMAND"),
                   help="vllm: the command that starts the server (default 'vllm serve'; "
                        "MODEL --port P --enable-prefix-caching is appended), or a template "
                        "with {model} {port} {host} {python}")
    p.add_argument("--device", default=os.environ.get("STARTUI_DEVICE"),
                   help="transformers: cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--rounds", type=int, default=1, help="end-of-reasoning hint rounds")
    p.add_argument("--conjunction-p", type=float, default=0.0,
                   help="probability of a hint after 'Wait'/'Alternatively' (paper: random)")
    p.add_argument("--categories", help="comma-separated hint categories for conjunction hints")
    p.add_argument("--hints-file", help="add hints from a JSON list or a text file (one a line)")
    p.add_argument("--max-tool-calls", type=int, default=6)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=2048,
                   help="generated tokens across the whole trajectory")
    p.add_argument("--system-prompt", default=DEFAULT_SYSTEM_PROMPT)
    p.add_argument("--think-end", default=None,
                   help="end-of-thinking marker of a thinking model, e.g. '</think>' "
                        "(default: end of sequence, as for Qwen2.5 and QwQ-32B-Preview)")
    p.add_argument("--timeout", type=float, default=30.0, help="kernel timeout per cell, seconds")


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The deployment flags, with their environment fallbacks; ``make_backend`` hands each
    backend the ones that apply to it."""
    urls = getattr(args, "base_url", None) or [
        u for u in os.environ.get("STARTUI_BASE_URL", "").split(",") if u.strip()]
    key = getattr(args, "api_key", None) or os.environ.get("STARTUI_API_KEY") \
        or os.environ.get("OPENAI_API_KEY")
    return {"base_urls": urls, "api_key": key,
            "chat_template": getattr(args, "chat_template", None),
            "tokenizer": getattr(args, "tokenizer", None),
            "vllm_command": getattr(args, "vllm_command", None),
            "device": getattr(args, "device", None)}
