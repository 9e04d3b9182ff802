"""The settings panel's values: what one run asks for (the deployment decides what it gets)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunSettings:
    """The settings panel. Defaults make "type a question, press Run" just work."""

    backend: str = "llamacpp"
    model: str | None = None
    base_url: str | None = None
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 2048
    rounds: int = 1
    conjunction_p: float = 0.0
    categories: list[str] | None = None
    max_tool_calls: int = 6
    kernel_timeout: float = 30.0
    seed: int | None = None

    def backend_key(self) -> tuple[str, str | None, str | None]:
        return (self.backend, self.model or None, self.base_url or None)
