"""hiredis packing sends exactly the bytes redis-py's own asyncio packer would."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError

from riskmon.state.redis_client import HiredisPackConnection, connect

CASES = [
    ("EVALSHA", "d" * 40, 3, "rm:u:1", b"\x00\xff" * 5000, -1, 0, 2**70),  # a blob above redis-py's 6000-byte cutoff
    ("SET", "k", 1.5),
    ("SET", "k", 1e20),
    ("SET", "k", "é"),
    ("SET", "k", memoryview(b"abc")),
    ("CONFIG GET", "maxmemory"),  # a two-word command name is split into two arguments
    (b"CLIENT SETNAME", b"x"),
    tuple(["HMGET", "h", *[f"f{i}" for i in range(1_500)]]),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: str(a[0]))
def test_same_bytes_as_redis_py(args: tuple) -> None:
    ours = b"".join(bytes(p) for p in HiredisPackConnection().pack_command(*args))
    theirs = b"".join(bytes(p) for p in aioredis.Connection().pack_command(*args))
    assert ours == theirs


def test_unsupported_arguments_raise_redis_py_errors() -> None:
    with pytest.raises(DataError):
        HiredisPackConnection().pack_command("SET", "k", True)


def test_connect_uses_it_for_redis_urls() -> None:
    client = connect("redis://127.0.0.1:1/0")
    assert client.connection_pool.connection_class is HiredisPackConnection
