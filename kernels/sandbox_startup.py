"""In-kernel set-up for startui kernels: what the model's code sees.

Imported by `sandbox_launch.py` inside the kernel process.  Everything here is cheap: heavy
libraries (matplotlib, plotly) are configured through environment variables or an import
hook that fire when the model's code first imports them, so a kernel that never plots never
pays for them.
"""

from __future__ import annotations

import builtins
import getpass
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NoReturn

from traitlets.config import Config

INPUT_MESSAGE = "input() is not available: the code runs unattended; put the values in the code"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class InputNotAvailableError(EOFError):
    """Raised by input()/getpass(): nobody is there to type.

    A subclass of EOFError because that is what a script run with a closed stdin gets, so
    code written to handle end-of-input keeps working.
    """


def _no_input(prompt: object = "", *args: Any, **kwargs: Any) -> NoReturn:
    raise InputNotAvailableError(INPUT_MESSAGE)


def kernel_config() -> Config:
    """IPython settings that make output easy for a model to read."""
    c = Config()
    c.HistoryManager.enabled = False  # no sqlite history per kernel: faster start, no files
    c.InteractiveShell.xmode = "Plain"  # tracebacks shaped like plain Python's
    c.InteractiveShell.colors = "NoColor"  # no ANSI codes in tracebacks
    return c


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Run `callback(module)` right after `name` is first imported (a one-shot hook).

    Lets us configure a library lazily: importing it at start-up would cost every kernel
    its import time even when the model never uses it.
    """

    def __init__(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        self.name, self.callback = name, callback
        self.loader: Any = None

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = self.loader  # type: ignore[union-attr]
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        try:
            self.callback(module)
        except Exception as exc:  # a plotting helper must never break the import itself
            print(f"startui: could not configure {self.name}: {exc!r}", file=sys.stderr)


def _configure_plotly(renderers_module: ModuleType) -> None:
    """Make fig.show() emit the plotly JSON mime bundle, with no nbformat needed.

    plotly's own "plotly_mimetype" renderer refuses to run without nbformat, which a bare
    `pip install ipykernel` does not bring; an ExternalRenderer publishing the same bundle
    has no such check.  It takes the "plotly_mimetype" name, so code that picks that
    renderer explicitly gets the same result.
    """
    from IPython.display import display
    from plotly.io._base_renderers import ExternalRenderer, PlotlyRenderer

    class MimeBundleRenderer(ExternalRenderer):
        def render(self, fig_dict: dict) -> None:
            bundle = PlotlyRenderer().to_mimebundle(fig_dict)
            display({**bundle, "text/plain": "<plotly figure>"}, raw=True)

    renderers = renderers_module.renderers
    renderers["plotly_mimetype"] = MimeBundleRenderer()
    renderers.default = "plotly_mimetype"


def _cap_output(shell: Any, limit: int) -> None:
    """Stop forwarding a cell's stdout/stderr after `limit` characters.

    `while True: print(...)` would otherwise ship hundreds of MB per second to the app, which
    keeps only a head and tail for the model anyway.  Patching OutStream.write covers print,
    sys.stdout and the captured file descriptors (os.system, subprocesses).
    """
    from ipykernel.iostream import OutStream

    written = [0]
    shell.events.register("pre_execute", lambda: written.__setitem__(0, 0))
    original = OutStream.write

    def write(self: OutStream, string: str) -> int | None:
        if not isinstance(string, str) or written[0] + len(string) <= limit:
            written[0] += len(string) if isinstance(string, str) else 0
            return original(self, string)
        if written[0] <= limit:  # the first write over the limit: keep what fits, say so
            original(self, string[: limit - written[0]])
            original(self, f"\n[output stopped after {limit} characters; the rest is dropped]\n")
            written[0] = limit + 1
        return len(string)

    OutStream.write = write  # type: ignore[method-assign]


def install(app: Any, max_output_chars: int = 1_000_000) -> None:
    """Apply the sandbox to an initialized IPKernelApp, before it starts serving."""
    _cap_output(app.shell, max_output_chars)
    # Read by matplotlib when the model's code first imports it.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    sys.meta_path.insert(0, _AfterImport("plotly.io._renderers", _configure_plotly))

    # ipykernel asks tools for colour (FORCE_COLOR, TERM=xterm-color); the model reads plain
    # text, so ask for none rather than strip it afterwards.
    for var in ("FORCE_COLOR", "CLICOLOR_FORCE"):
        os.environ.pop(var, None)
    os.environ.update(NO_COLOR="1", CLICOLOR="0", TERM="dumb")

    # ipykernel re-binds builtins.input to kernel.raw_input before every cell, so the
    # kernel's own methods are what must refuse; builtins/getpass cover other threads.
    kernel = app.kernel
    kernel.raw_input = _no_input
    kernel.getpass = _no_input
    builtins.input = _no_input
    getpass.getpass = _no_input

    # argparse-using code should see a script with no arguments, not "-f <connection file>".
    sys.argv = sys.argv[:1]
