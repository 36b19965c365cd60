"""The asyncio Redis client workers use: redis-py with commands packed by hiredis (C), not Python.

Why: redis-py 8's asyncio connection always packs commands in Python (its sync client uses hiredis when
installed). A batch's state commit is one EVALSHA with three arguments per user (~1,500 for a 500-user
batch); packing them, one ``Encoder.encode`` and two ``bytes.join`` per argument, was ~3.6 % of a
worker's CPU (docs/performance.md, session 6). ``hiredis.pack_command`` does the same in C and emits
the same bytes (``tests/unit/test_redis_client.py`` compares them); an argument hiredis refuses goes
through redis-py's packer, so errors stay redis-py's (``DataError``).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

try:
    import hiredis
except ImportError:  # pragma: no cover - hiredis is a dependency (redis[hiredis]); the Python packer still works
    hiredis = None


class HiredisPackConnection(aioredis.Connection):
    """redis-py's asyncio connection, packing with ``hiredis.pack_command``."""

    def pack_command(self, *args: Any) -> list[bytes]:
        """Pack one command in RESP (the same bytes as redis-py's packer)."""
        if hiredis is None:
            return super().pack_command(*args)
        first = args[0]
        if isinstance(first, str):
            if " " in first:
                args = tuple(first.encode().split()) + args[1:]
        elif isinstance(first, bytes) and b" " in first:
            args = tuple(first.split()) + args[1:]
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return super().pack_command(*args)


def connect(url: str, **kwargs: Any) -> aioredis.Redis:
    """``redis.asyncio.Redis.from_url`` with :class:`HiredisPackConnection` (plain ``redis://`` URLs)."""
    if url.startswith("redis://"):
        kwargs.setdefault("connection_class", HiredisPackConnection)
    return aioredis.from_url(url, **kwargs)
