"""The vllm backend without a GPU: attach by URL, and the managed-server path for real with
stand-in commands — a tiny health server, a command that dies at once, one that never gets
ready, and the embedded llama.cpp as a standalone OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import pytest

from startui.infer.backends import make_backend
from startui.infer.backends.base import BackendError, GenerationRequest, chatml
from startui.infer.backends.vllm import _LIVE, VLLMBackend
from tests.fakeserver import FakeServer, Reply, Request, event, sse

os.environ["HF_HUB_OFFLINE"] = "1"  # a model name that is no directory is not looked up online

HEALTH_SERVER = textwrap.dedent("""
    import http.server, sys
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    print("health server up", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
""")


@pytest.fixture
def health_command(tmp_path):
    script = tmp_path / "health_server.py"
    script.write_text(HEALTH_SERVER)
    return f"{{python}} {script} {{port}}"


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_command_line_vllm_serve_with_prefix_caching():
    b = VLLMBackend("Qwen/Qwen2.5-7B-Instruct")
    assert b.command_line(8001) == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct", "--host",
                                    "127.0.0.1", "--port", "8001", "--enable-prefix-caching"]
    b = VLLMBackend("/models/q", command="/opt/vllm-env/bin/vllm serve",
                    serve_args=["--max-model-len", "8192"])
    assert b.command_line(9) == ["/opt/vllm-env/bin/vllm", "serve", "/models/q", "--host",
                                 "127.0.0.1", "--port", "9", "--enable-prefix-caching",
                                 "--max-model-len", "8192"]
    b = VLLMBackend("m", command="{python} -m srv --port={port} --model '{model}'")
    assert b.command_line(5) == [sys.executable, "-m", "srv", "--port=5", "--model", "m"]
    with pytest.raises(BackendError, match="bad --vllm-command template"):
        VLLMBackend("m", command="serve {gpu}").command_line(1)


def test_it_needs_a_model_or_a_url_and_takes_the_cli_flag():
    with pytest.raises(BackendError, match="--model.*--base-url"):
        VLLMBackend()
    b = make_backend("vllm", "m", vllm_command="x --port {port}", device="ignored")
    assert isinstance(b, VLLMBackend) and b.command == "x --port {port}" and b.managed


async def test_attach_to_a_running_server_starts_nothing():
    async def handler(reply: Reply, request: Request) -> None:
        await sse(reply, [event("ok", "stop")])

    async with FakeServer(handler) as server:
        b = make_backend("vllm", "served", base_urls=[server.url + "/v1"])
        chunks = [c async for c in b.stream(GenerationRequest("p"))]
        await b.close()
    assert b.name == "vllm" and not b.managed and b.process is None
    assert chunks[-1].text == "ok" and server.requests[0].body["model"] == "served"


async def test_a_managed_server_is_started_waited_for_and_stopped(health_command):
    b = VLLMBackend("m", command=health_command, startup_timeout=30)
    url = await asyncio.to_thread(b.start)
    proc, log = b.process, b.log_path
    assert proc is not None and proc.poll() is None and proc in _LIVE
    assert b.servers[0].url == url and await asyncio.to_thread(b.start) == url  # idempotent
    await b.close()
    assert proc.poll() is not None and proc not in _LIVE
    assert not log.exists()  # a clean stop leaves no log behind


async def test_a_server_that_exits_at_once_shows_the_end_of_its_log():
    command = (f"{sys.executable} -c \"import sys; print('RuntimeError: no CUDA GPUs are "
               "available'); sys.exit(3)\"")
    b = VLLMBackend("m", command=command, startup_timeout=30)
    with pytest.raises(BackendError) as err:
        await asyncio.to_thread(b.start)
    assert "exited with code 3 before it was ready" in str(err.value)
    assert "no CUDA GPUs are available" in str(err.value)
    assert str(b.log_path) in str(err.value)  # kept for the user to read
    b.log_path.unlink()


async def test_a_server_that_never_gets_ready_is_stopped_after_the_timeout():
    b = VLLMBackend("m", command=f"{sys.executable} -c \"import time; time.sleep(60)\"",
                    startup_timeout=1)
    with pytest.raises(BackendError, match="not ready after 1 s"):
        await asyncio.to_thread(b.start)
    assert b.process is not None and b.process.poll() is not None
    b.log_path.unlink()


async def test_a_missing_vllm_says_how_to_install_it():
    b = VLLMBackend("m", command="/nonexistent/env/bin/vllm serve")
    with pytest.raises(BackendError, match="requirements-gpu.txt.*--vllm-command"):
        await asyncio.to_thread(b.start)


def test_the_server_is_stopped_when_the_program_exits(health_command):
    """No close(): the atexit hook stops the server (its whole process group)."""
    child = textwrap.dedent(f"""
        from startui.infer.backends.vllm import VLLMBackend
        b = VLLMBackend("m", command={health_command!r}, startup_timeout=30)
        b.start()
        print(b.process.pid, flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         timeout=60, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    assert gone(int(out.stdout.split()[-1]))


@pytest.mark.model
async def test_managed_path_end_to_end_with_a_real_openai_compatible_server():
    """The embedded llama.cpp as the 'vllm serve' process: started, streamed from, stopped."""
    command = "{python} -m startui.infer.backends.serve_llamacpp --port {port} --ctx 2048"
    b = VLLMBackend("embedded", command=command, startup_timeout=120)
    try:
        messages = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Say hello."}]
        prompt = await asyncio.to_thread(b.chat_prompt, messages)  # starts the server
        assert prompt == chatml(messages)  # the server's own template over HTTP
        chunks = [c async for c in b.stream(GenerationRequest(prompt, max_tokens=4,
                                                              temperature=0))]
        assert "".join(c.text for c in chunks).strip()
        assert chunks[-1].finish_reason == "length"
        proc = b.process
    finally:
        await b.close()
    assert proc is not None and proc.poll() is not None


def test_the_template_comes_from_the_models_tokenizer_without_starting_a_server(tmp_path):
    from bench.standins import train_tokenizer

    train_tokenizer().save_pretrained(tmp_path)
    b = VLLMBackend(str(tmp_path), command="/nonexistent/vllm serve")
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert b.chat_prompt(messages) == chatml(messages)
    assert b.process is None  # nothing was started to build the prompt
