"""Real local HTTP receivers for the hook tests (aiohttp servers on 127.0.0.1 free ports)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from sinks.hooks.signing import verify_signature

SECRET = "test-hook-secret"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival (same process as the sender)
    signature_ok: bool

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A real aiohttp server on 127.0.0.1 that records requests and answers with ``respond``."""

    port: int
    secret: str = SECRET
    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received], Awaitable[web.StreamResponse] | web.StreamResponse] | None = None
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Received(
            path=request.path,
            headers={str(k): v for k, v in request.headers.items()},
            body=body,
            at=time.monotonic(),
            signature_ok=verify_signature(
                self.secret, request.headers.get("X-Riskmon-Timestamp"), body,
                request.headers.get("X-Riskmon-Signature"), now=time.time(),
            ),
        )
        self.requests.append(rec)
        if self.respond is not None:
            res = self.respond(rec)
            if asyncio.iscoroutine(res):
                res = await res
            return res  # type: ignore[return-value]
        return web.Response(status=200, text="ok")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def dedup_keys(self) -> list[str]:
        return [r.headers.get("X-Riskmon-Dedup-Key", "") for r in self.requests]


async def start_receiver(port: int | None = None, **kw: Any) -> Receiver:
    """Start a receiver (on ``port`` or a free one)."""
    return await Receiver(port=port or free_port(), **kw).start()
