"""The openai backend against real local HTTP servers: a scripted one (errors, dropped streams,
hang-ups, several replicas) here, and the embedded llama.cpp server in the contract suite."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from startui.cli import build_parser
from startui.cli.common import backend_options
from startui.infer.backends import make_backend
from startui.infer.backends.base import BackendError, GenerationRequest, chatml
from startui.infer.backends.openai import OpenAIBackend, normalize_url
from tests.fakeserver import FakeServer, Reply, Request, event, forever, sse

os.environ["HF_HUB_OFFLINE"] = "1"

REQ = GenerationRequest("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
                        stop=["```output"], max_tokens=7, temperature=0.0, top_p=0.9, seed=3)


async def collect(backend, request=REQ):
    return [c async for c in backend.stream(request)]


async def hello(reply: Reply, request: Request) -> None:
    await sse(reply, [event("Hel"), event("lo"), event("!", "stop")])


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_base_urls_are_normalized():
    assert normalize_url("http://h:8000/v1/") == "http://h:8000"
    assert normalize_url("h:8000") == "http://h:8000"
    assert normalize_url("https://api.example.test/v1") == "https://api.example.test"
    b = OpenAIBackend("m", base_urls="http://a:1/v1, http://b:2")
    assert [s.url for s in b.servers] == ["http://a:1", "http://b:2"]


async def test_the_request_is_a_raw_completion_with_the_samplers_and_the_key():
    async with FakeServer(hello) as server:
        b = OpenAIBackend("served-name", base_urls=[server.url + "/v1"], api_key="sk-test")
        chunks = await collect(b)
        await b.close()
    assert "".join(c.text for c in chunks) == "Hello!"
    assert chunks[-1].finish_reason == "stop"
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/v1/completions")
    assert req.body == {"model": "served-name", "prompt": REQ.prompt, "max_tokens": 7,
                        "temperature": 0.0, "top_p": 0.9, "stream": True,
                        "stop": ["```output"], "seed": 3}
    assert req.headers["authorization"] == "Bearer sk-test"


async def test_no_key_no_header_and_stop_strings_kept_only_when_asked():
    async with FakeServer(hello) as server:
        b = OpenAIBackend("m", base_urls=server.url, include_stop_str_in_output=True)
        await collect(b)
        await b.close()
    (req,) = server.requests
    assert "authorization" not in req.headers
    assert req.body["include_stop_str_in_output"] is True


async def test_the_served_model_name_is_asked_when_not_given():
    async def handler(reply: Reply, request: Request) -> None:
        if request.path == "/v1/models":
            await reply.status(200, {"object": "list", "data": [{"id": "/models/qwen"}]})
        else:
            await hello(reply, request)

    async with FakeServer(handler) as server:
        b = OpenAIBackend(base_urls=server.url)
        await collect(b)
        await b.close()
    assert server.requests[-1].body["model"] == "/models/qwen"
    assert b.model == "/models/qwen"


async def test_events_comments_and_usage_are_read_as_servers_send_them():
    async def handler(reply: Reply, request: Request) -> None:
        await reply.start_stream()
        await reply.raw(": ping\n\n")
        await reply.raw('event: message\ndata: {"choices": [{"text": "a", "finish_reason": null}]}'
                        "\n\n")
        await reply.send(event(""))  # an empty event is no token
        await reply.send(event("b"))
        await reply.send(event("c", "length"))
        await reply.send({"choices": [], "usage": {"completion_tokens": 5}})  # vLLM's last word
        await reply.send("[DONE]")
        await reply.end_stream()

    async with FakeServer(handler) as server:
        b = OpenAIBackend("m", base_urls=server.url)
        chunks = await collect(b)
        await b.close()
    assert [c.text for c in chunks] == ["a", "b", "c"]
    assert chunks[-1].finish_reason == "length"
    assert sum(c.tokens for c in chunks) == 3


async def test_usage_in_the_finish_event_corrects_the_token_count():
    async def handler(reply: Reply, request: Request) -> None:
        await sse(reply, [event("ab"), event("", "stop", usage={"completion_tokens": 4})])

    async with FakeServer(handler) as server:
        b = OpenAIBackend("m", base_urls=server.url)
        chunks = await collect(b)
        await b.close()
    assert sum(c.tokens for c in chunks) == 4


@pytest.mark.parametrize("status,body,says", [
    (500, {"error": {"message": "CUDA out of memory", "type": "InternalServerError"}},
     ["HTTP 500", "CUDA out of memory", "resume"]),
    (401, {"error": "invalid api key"}, ["HTTP 401", "invalid api key", "--api-key"]),
    (404, {"detail": "The model `x` does not exist."}, ["does not exist", "/v1/models"]),
    (400, "<html>bad request</html>", ["HTTP 400", "<html>bad request</html>"]),
])
async def test_http_errors_carry_the_servers_message_and_what_to_do(status, body, says):
    async def handler(reply: Reply, request: Request) -> None:
        await reply.status(status, body, "application/json" if isinstance(body, dict)
                           else "text/html")

    async with FakeServer(handler) as server:
        b = OpenAIBackend("x", base_urls=server.url)
        with pytest.raises(BackendError) as err:
            await collect(b)
        await b.close()
    for words in says:
        assert words in str(err.value)


async def test_connection_refused_says_to_start_a_server():
    b = OpenAIBackend("m", base_urls=f"http://127.0.0.1:{unused_port()}/v1")
    with pytest.raises(BackendError, match="cannot connect.*--base-url"):
        await collect(b)
    await b.close()


async def test_no_server_configured_is_a_clear_error():
    with pytest.raises(BackendError, match="--base-url"):
        await collect(OpenAIBackend("m"))


async def test_a_server_dying_mid_stream_keeps_what_came_and_says_so():
    async def handler(reply: Reply, request: Request) -> None:
        await reply.start_stream()
        await reply.send(event("The answer"))
        await reply.send(event(" is"))
        reply.drop()

    async with FakeServer(handler) as server:
        b = OpenAIBackend("m", base_urls=server.url)
        got = []
        with pytest.raises(BackendError, match="broke mid-stream.*resume"):
            async for chunk in b.stream(REQ):
                got.append(chunk.text)
        await b.close()
    assert "".join(got) == "The answer is"


async def test_a_stream_that_ends_without_finishing_is_an_error():
    async def handler(reply: Reply, request: Request) -> None:
        await sse(reply, [event("half")], done=False)

    async with FakeServer(handler) as server:
        b = OpenAIBackend("m", base_urls=server.url)
        with pytest.raises(BackendError, match="before the completion finished"):
            await collect(b)
        await b.close()


@pytest.mark.parametrize("line,says", [
    ("data: {not json\n\n", "malformed"),
    ("<html>proxy error</html>\n", "not a server-sent event"),
    ('data: {"error": {"message": "engine died"}}\n\n', "engine died"),
    ('data: {"choices": [{"text": "", "finish_reason": "abort"}]}\n\n', "aborted"),
])
async def test_bad_events_are_errors(line, says):
    async def handler(reply: Reply, request: Request) -> None:
        await reply.start_stream()
        await reply.send(event("ok"))
        await reply.raw(line)
        await reply.end_stream()

    async with FakeServer(handler) as server:
        b = OpenAIBackend("m", base_urls=server.url)
        with pytest.raises(BackendError, match=says):
            await collect(b)
        await b.close()


async def test_closing_the_stream_hangs_up_so_the_server_aborts():
    async with FakeServer(forever) as server:
        b = OpenAIBackend("m", base_urls=server.url)
        stream = b.stream(REQ)
        got = [await anext(stream) for _ in range(3)]
        await stream.aclose()
        await asyncio.wait_for(server.hung_up.wait(), 2.0)
        await b.close()
    assert [c.text for c in got] == [" 0", " 1", " 2"]


async def test_several_servers_share_the_work_and_a_trajectory_stays_on_one():
    async with FakeServer(hello) as a, FakeServer(hello) as b:
        backend = OpenAIBackend("m", base_urls=[a.url, b.url])
        for key in ["t1", "t2", "t3", "t4"]:
            await collect(backend, GenerationRequest(f"prompt {key}", key=key))
        for _ in range(3):  # resumes of t1 go where t1 went
            await collect(backend, GenerationRequest("prompt t1 again", key="t1"))
        await asyncio.gather(*(collect(backend, GenerationRequest("p")) for _ in range(4)))
        await backend.close()
    by_server = {a.url: [r.body["prompt"] for r in a.requests],
                 b.url: [r.body["prompt"] for r in b.requests]}
    assert all(len(v) >= 4 for v in by_server.values()), by_server
    t1 = [url for url, prompts in by_server.items() if "prompt t1" in prompts]
    assert len(t1) == 1 and by_server[t1[0]].count("prompt t1 again") == 3


async def test_a_refusing_server_is_skipped_and_the_request_goes_on():
    dead = f"http://127.0.0.1:{unused_port()}"
    async with FakeServer(hello) as live:
        backend = OpenAIBackend("m", base_urls=[dead, live.url])
        for key in ["a", "b", "c"]:
            chunks = await collect(backend, GenerationRequest("p", key=key))
            assert "".join(c.text for c in chunks) == "Hello!"
        await backend.close()
    assert len(live.requests) == 3
    assert backend.servers[0].down_until > 0 and backend.servers[0].in_flight == 0


# -- chat templates ----------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from bench.standins import train_tokenizer

    path = tmp_path_factory.mktemp("tok")
    train_tokenizer().save_pretrained(path)
    return path


def test_the_prompt_comes_from_the_tokenizer_byte_for_byte(tokenizer_dir):
    from transformers import AutoTokenizer

    expected = AutoTokenizer.from_pretrained(tokenizer_dir).apply_chat_template(
        MESSAGES, add_generation_prompt=True, tokenize=False)
    b = OpenAIBackend("served", base_urls="http://unused:1", tokenizer=str(tokenizer_dir))
    assert b.chat_prompt(MESSAGES) == expected == chatml(MESSAGES)
    # a local model directory as --model is its own tokenizer
    assert OpenAIBackend(str(tokenizer_dir), base_urls="http://unused:1").chat_prompt(
        MESSAGES) == expected


def test_a_template_file_or_text_is_rendered_like_transformers_does(tmp_path, tokenizer_dir):
    template = ("{{ bos_token }}{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}"
                "\n{% endfor %}{% if add_generation_prompt %}[ASSISTANT] {% endif %}")
    path = tmp_path / "template.jinja"
    path.write_text(template)
    from_file = OpenAIBackend("m", base_urls="x:1", chat_template=str(path)).chat_prompt(MESSAGES)
    inline = OpenAIBackend("m", base_urls="x:1", chat_template=template).chat_prompt(MESSAGES)
    assert from_file == inline == "[SYSTEM] Be brief.\n[USER] 2+2?\n[ASSISTANT] "
    # with a tokenizer, its special tokens fill the template
    with_tok = OpenAIBackend("m", base_urls="x:1", chat_template=str(path),
                             tokenizer=str(tokenizer_dir)).chat_prompt(MESSAGES)
    assert with_tok.endswith(inline)


def test_template_errors_say_what_to_do(tmp_path):
    with pytest.raises(BackendError, match="cannot read the chat template file"):
        OpenAIBackend("m", base_urls="x:1", chat_template=str(tmp_path / "nope.jinja")) \
            .chat_prompt(MESSAGES)
    with pytest.raises(BackendError, match="failed to render"):
        OpenAIBackend("m", base_urls="x:1", chat_template="{{ raise_exception('no system') }}") \
            .chat_prompt(MESSAGES)
    with pytest.raises(BackendError, match="cannot load the tokenizer"):
        OpenAIBackend("m", base_urls="x:1", tokenizer=str(tmp_path)).chat_prompt(MESSAGES)


async def test_without_a_template_the_server_is_asked_then_chatml():
    async def template_server(reply: Reply, request: Request) -> None:
        assert request.path == "/apply-template"
        await reply.status(200, {"prompt": "SERVER:" + request.body["messages"][-1]["content"]})

    async def bare(reply: Reply, request: Request) -> None:
        await reply.status(404, {"error": "not found"})

    async with FakeServer(template_server) as s1, FakeServer(bare) as s2:
        asks = OpenAIBackend("m", base_urls=s1.url)
        assert await asyncio.to_thread(asks.chat_prompt, MESSAGES) == "SERVER:2+2?"
        guess = OpenAIBackend("m", base_urls=s2.url)
        assert await asyncio.to_thread(guess.chat_prompt, MESSAGES) == chatml(MESSAGES)


# -- the command line --------------------------------------------------------------------

def test_cli_flags_reach_the_backend(monkeypatch):
    monkeypatch.delenv("STARTUI_BASE_URL", raising=False)
    monkeypatch.delenv("STARTUI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    args = build_parser().parse_args(
        ["run", "q", "--backend", "openai", "--model", "served", "--base-url", "http://a:1/v1",
         "--base-url", "http://b:2"])
    b = make_backend(args.backend, args.model, **backend_options(args))
    assert isinstance(b, OpenAIBackend) and b.model == "served"
    assert [s.url for s in b.servers] == ["http://a:1", "http://b:2"]
    assert b.api_key == "from-env"
    args = build_parser().parse_args(["run", "q", "--backend", "openai", "--api-key", "flag"])
    monkeypatch.setenv("STARTUI_BASE_URL", "http://c:3/v1,http://d:4")
    b = make_backend(args.backend, "m", **backend_options(args))
    assert [s.url for s in b.servers] == ["http://c:3", "http://d:4"] and b.api_key == "flag"


def test_options_for_other_backends_are_ignored_not_fatal():
    from startui.infer.backends.llamacpp import LlamaCppBackend

    b = make_backend("llamacpp", None, base_urls=["http://a:1"], api_key="k", device="cpu",
                     vllm_command="x", tokenizer=None, chat_template=None)
    assert isinstance(b, LlamaCppBackend)
    one = make_backend("openai", "m", base_url="http://studio:9/v1")  # the Studio passes one
    assert [s.url for s in one.servers] == ["http://studio:9"]


async def test_a_dropped_stream_keeps_the_trajectory_and_a_resume_finishes_it(pool):
    """Through the engine: the server dies mid-answer, the run ends in an error with the text so
    far kept; resuming sends exactly that prefix and finishes."""
    from bench.standins import CHATML_TEMPLATE
    from startui.infer.engine import Engine, EngineConfig
    from startui.infer.hints import HintPolicy

    calls = []

    async def flaky(reply: Reply, request: Request) -> None:
        calls.append(request.body["prompt"])
        await reply.start_stream()
        if len(calls) == 1:
            await reply.send(event("The answer"))
            await reply.send(event(" is"))
            reply.drop()
        else:
            await reply.send(event(" \\boxed{4}."))
            await reply.send(event("", "stop"))
            await reply.send("[DONE]")
            await reply.end_stream()

    async with FakeServer(flaky) as server:
        backend = OpenAIBackend("m", base_urls=server.url, chat_template=CHATML_TEMPLATE)
        engine = Engine(backend, pool, HintPolicy(rounds=0), EngineConfig(temperature=0.0))
        traj = await asyncio.to_thread(engine.new_trajectory, "2+2?")
        traj = await engine.start(traj).run()
        assert traj.status == "error" and "broke mid-stream" in traj.error
        assert traj.completion() == "The answer is"
        traj = await engine.start(traj).run()
        await backend.close()
    assert len(server.requests) == 2  # the template was rendered here, not asked of the server
    assert traj.status == "finished", traj.error
    assert calls[1] == traj.prompt + "The answer is"
    assert traj.completion() == "The answer is \\boxed{4}." and traj.answer == "4"


def test_the_new_backends_satisfy_the_protocol_without_touching_anything():
    """isinstance reads every protocol member: none may reach a server or load weights."""
    from startui.infer.backends.base import Backend
    from startui.infer.backends.hf import TransformersBackend
    from startui.infer.backends.vllm import VLLMBackend

    dead = f"http://127.0.0.1:{unused_port()}"
    for backend in (OpenAIBackend(base_urls=dead), VLLMBackend("m"), TransformersBackend("x")):
        assert isinstance(backend, Backend)
    assert VLLMBackend("m").process is None
