"""Opening ClickHouse: one function for the in-process engine (``chdb://``) and servers (``http(s)://``).

Why one entry point: the sink, migrations, the report and the tests must talk to the same engine through
the same client library, whichever deployment an operator picked in ``RISKMON_CLICKHOUSE_DSN``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client


class DsnError(ValueError):
    """A ClickHouse DSN riskmon cannot use."""


def dsn_kind(dsn: str) -> str:
    """``"chdb"`` or ``"http"`` for a supported DSN, else :class:`DsnError`."""
    scheme = urlsplit(dsn).scheme.lower()
    if scheme == "chdb":
        return "chdb"
    if scheme in ("http", "https", "clickhouse", "clickhouses"):
        return "http"
    raise DsnError(f"unsupported ClickHouse DSN scheme {scheme!r} (use chdb:///path or http(s)://host:8123)")


def connect(dsn: str) -> Client:
    """Open a clickhouse-connect client for ``chdb:///path`` or ``http(s)://user:pass@host:port/db``.

    For ``chdb`` the directory is created first (the engine expects it), and only one process may open
    a given directory at a time. For HTTP the client is created without a session id, so one client can
    be shared by the sink's consumer and flusher threads (ClickHouse locks a session to one query).
    """
    kind = dsn_kind(dsn)
    if kind == "chdb":
        path = urlsplit(dsn).path
        if path and path not in ("/", ":memory:"):
            Path(path).mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=dsn)
    return clickhouse_connect.get_client(dsn=dsn, autogenerate_session_id=False)
