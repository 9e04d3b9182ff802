"""A stateless scripted "model" for the Hint-RFT tests: it answers from the prompt's shape, so any
number of batch trajectories can share it in any order, concurrently.

Problems say what to compute: ``Compute 6*7.``. Without a hint the model guesses one too many
(wrong), unless the question says ``(easy)``; after a hint opens a python cell it writes
``print(6*7)``; after the kernel's output it answers with that output. So the greedy baseline is
wrong and the hinted trajectory right: the D_seed case. ``(loop)`` makes it repeat itself
(a repetition-filter case), ``(crash)`` leaves a failing cell at the end.
"""

from __future__ import annotations

import re

from startui.infer.backends.scripted import ScriptedBackend
from startui.trajectory import Problem

_EXPR = re.compile(r"Compute ([0-9+*\- ()]+)\.")
_OUTPUT = re.compile(r"```output\n(.*?)\n```", re.DOTALL)


def _question(prompt: str) -> str:
    m = re.search(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", prompt, re.DOTALL)
    return m.group(1) if m else ""


_ANCHORS = ("<|im_start|>assistant\n", "```python\n", "```\n")


def _reply(head: str, q: str) -> str:
    """What the model says after ``head``, a prompt that ends at a turn boundary."""
    m = _EXPR.search(q)
    expr = m.group(1) if m else "0"
    value = eval(expr)  # noqa: S307 - the tests' own arithmetic
    if head.endswith("```python\n"):  # a hint opened a cell
        if "(crash)" in q:
            return "print(undefined_name)\n```"
        return f"print({expr})\n```"
    if head.endswith("assistant\n"):  # the first request
        if "(loop)" in q:
            return "I keep thinking about the same step again and again and again now. " * 8 + (
                f"\\boxed{{{value}}}")
        guess = value if "(easy)" in q else value + 1
        return f"Let me think about {expr}. It is about {guess}, so \\boxed{{{guess}}}."
    outputs = _OUTPUT.findall(head)
    if outputs:
        last = outputs[-1].strip()
        if "(crash)" in q:
            return "The cell failed, but I am sure: \\boxed{" + str(value) + "}."
        return f"The kernel says {last}, so the answer is \\boxed{{{last}}}."
    return "So \\boxed{0}."


def respond(prompt: str) -> str:
    """Stateless: the reply to the last turn boundary of ``prompt``, minus what of it the prompt
    already holds (a trajectory stopped mid-reply resumes with the rest of the same reply)."""
    pos = max(prompt.rfind(a) + len(a) for a in _ANCHORS if a in prompt)
    head, partial = prompt[:pos], prompt[pos:]
    full = _reply(head, _question(prompt))
    return full[len(partial):] if full.startswith(partial) else "So \\boxed{0}."


def backend(delay: float = 0.0) -> ScriptedBackend:
    return ScriptedBackend(respond=respond, delay=delay, model="rft-script")


def problems(n: int, *, source: str = "rft", easy_every: int = 0) -> list[Problem]:
    out = []
    for i in range(n):
        easy = " (easy)" if easy_every and i % easy_every == 0 else ""
        out.append(Problem(question=f"Compute {i + 2}*{i + 3}.{easy}",
                           answer=str((i + 2) * (i + 3)), id=f"{source}:{i}",
                           meta={"source": source, "external_id": str(i)}))
    return out
