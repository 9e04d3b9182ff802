"""A stateless scripted "model" for the app's tests: it answers from the prompt's shape, so any
number of runs, continues and branches can share it in any order."""

from __future__ import annotations

from startui.infer.backends.scripted import ScriptedBackend

PLOT_CODE = (
    "import matplotlib.pyplot as plt\n"
    "primes = [n for n in range(2, 1000) if all(n % d for d in range(2, int(n ** 0.5) + 1))]\n"
    "plt.plot(primes)\nplt.title('primes below 1000')\nplt.show()\nprint(sum(primes))"
)
REFLECTION = " ".join(f"Step {i}: the sieve keeps every prime and drops composites." for i in
                      range(1, 31))


def respond(prompt: str) -> str:
    outputs = prompt.count("```output\n")
    if prompt.endswith("```python\n"):  # a hint opened a cell
        return "print(sum(p for p in range(2, 1000) if all(p % d for d in range(2, p))))\n```"
    if prompt.endswith("assistant\n"):
        return ("I need the sum of all primes below 1000. Let me list them with Python and plot "
                f"them.\n\n```python\n{PLOT_CODE}\n```\n")
    if prompt.endswith("```\n") and outputs == 1:
        return f"The kernel says 76127. {REFLECTION} So the answer is \\boxed{{76127}}."
    if prompt.endswith("```\n"):
        return "Both checks agree: \\boxed{76127}."
    return "Following the hint, I re-check with the kernel.\n```python\nprint(76127)\n```\n"


def tour_backend(delay: float = 0.01) -> ScriptedBackend:
    return ScriptedBackend(respond=respond, delay=delay, model="tour")
