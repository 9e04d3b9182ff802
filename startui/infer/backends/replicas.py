"""Data-parallel replicas: one worker's trajectories spread over several model servers.

A batch worker usually talks to more than one server — ``vllm serve --data-parallel-size N``
behind one address each, or one ``vllm serve`` per GPU — given as several ``--base-url``. The
routing is what makes that pay:

- a trajectory sticks to one server for its whole life (its ``key``, the trajectory id): every
  resume after a hint or a tool output re-sends the whole prefix, which only that server has
  cached (vLLM's prefix caching then prefills only the new tokens);
- a new trajectory goes to the server with the fewest requests in flight (ties: the one given
  the fewest trajectories so far);
- a server that refuses connections is skipped for ``DOWN_FOR`` seconds and its trajectories go
  elsewhere (their prefix is re-sent there); the backend logs it, and when every server refuses,
  the request fails with a message naming them, like any backend error (the trajectory is kept,
  a resume retries it).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

DOWN_FOR = 30.0  # seconds a server that refused a connection is skipped
MAX_KEYS = 10_000  # trajectories remembered for server affinity


@dataclass(eq=False)
class Server:
    url: str
    in_flight: int = 0  # requests streaming from it now
    assigned: int = 0  # trajectories sent to it so far
    down_until: float = 0.0  # monotonic time until which it is skipped (it refused)


class Replicas:
    """Which server a request goes to (see the module docstring). Not thread-safe: one event
    loop's requests."""

    def __init__(self) -> None:
        self._affinity: OrderedDict[str, Server] = OrderedDict()

    def pick(self, servers: Sequence[Server], key: str | None,
             exclude: Sequence[Server] = ()) -> Server | None:
        """The server for a request of trajectory ``key`` (None: no preference), never one of
        ``exclude``; None when none is left."""
        servers = [s for s in servers if s not in exclude]
        if not servers:
            return None
        now = time.monotonic()
        if key is not None and (s := self._affinity.get(key)) is not None and s in servers \
                and s.down_until <= now:
            self._affinity.move_to_end(key)
            return s
        alive = [s for s in servers if s.down_until <= now] or servers
        server = min(alive, key=lambda s: (s.in_flight, s.assigned))
        server.assigned += 1
        if key is not None:
            self._affinity[key] = server
            self._affinity.move_to_end(key)
            while len(self._affinity) > MAX_KEYS:
                self._affinity.popitem(last=False)
        return server

    @staticmethod
    def refused(server: Server) -> None:
        """``server`` refused a connection: skip it for a while."""
        server.down_until = time.monotonic() + DOWN_FOR
