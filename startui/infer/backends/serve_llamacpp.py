"""A standalone OpenAI-compatible server on this CPU: the embedded llama.cpp, as its own process.

``python -m startui.infer.backends.serve_llamacpp --port 8080 [--model PATH.gguf]`` serves
``/v1/completions``, ``/v1/models``, ``/health`` and ``/apply-template`` — the API vLLM speaks —
until it gets SIGTERM or SIGINT. Useful as a real local server for the openai backend, and as a
stand-in for ``vllm serve`` where there is no GPU: ``--backend vllm --vllm-command
"python -m startui.infer.backends.serve_llamacpp --port {port}"`` exercises the managed-server path.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from startui.infer.backends import embedded


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m startui.infer.backends.serve_llamacpp",
                                description="llama.cpp as an OpenAI-compatible HTTP server")
    p.add_argument("model_arg", nargs="?", metavar="MODEL",
                   help="a .gguf path (same as --model), so `vllm serve`-style commands work")
    p.add_argument("--model", help="a .gguf file (default: the embedded Qwen2.5-Coder-1.5B)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ctx", type=int, default=8192, help="context length per request slot")
    p.add_argument("--parallel", type=int, default=1, help="concurrent request slots")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--api-key", default=None, help="require this bearer key")
    return p


def main(argv: list[str] | None = None) -> int:
    args, ignored = build_parser().parse_known_args(argv)
    if ignored:  # e.g. vLLM's --enable-prefix-caching: llama.cpp caches prompts anyway
        print(f"serve_llamacpp: ignoring {' '.join(ignored)}", file=sys.stderr, flush=True)
    try:
        import xllamacpp
    except ImportError:
        print("serve_llamacpp needs xllamacpp: pip install -r requirements.txt", file=sys.stderr)
        return 2
    model = args.model or args.model_arg
    try:
        path = embedded.check_gguf(model) if model else embedded.default_model_path()
    except embedded.ModelFileError as e:
        print(f"serve_llamacpp: {e}", file=sys.stderr)
        return 2
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx * args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.hostnames = [args.host]
    params.port = args.port
    params.verbosity = 0
    if args.api_key:
        params.api_keys = [args.api_key]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = xllamacpp.Server(params)
    except Exception as e:  # noqa: BLE001 - a clear line, not a traceback
        print(f"serve_llamacpp: llama.cpp could not start: {e}", file=sys.stderr)
        return 1
    print(f"serve_llamacpp: listening on {server.listening_address} ({path.name})", flush=True)
    stop.wait()
    del server  # stops llama.cpp's loop
    return 0


if __name__ == "__main__":
    sys.exit(main())
