"""Versioned, idempotent schema migrations recorded in ``schema_migrations``.

Why versioned files instead of "create if missing" code: dashboards, the report and the sink all read
the same tables, and operators need to see which schema a ClickHouse carries (``riskmon db status``).
Each ``migrations/NNNN_name.sql`` file runs once, in order; its statements are themselves idempotent
(``IF NOT EXISTS``), so a crash between running a file and recording it is repaired by running it again.
A recorded file whose text later changed is reported, never silently re-applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY version
"""


class MigrationError(RuntimeError):
    """A migration file is malformed, failed, or no longer matches what was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Content hash, to detect an applied file edited afterwards."""
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """The file split into statements (``;`` at a line end; ``--`` comment lines dropped)."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


@dataclass(frozen=True, slots=True)
class MigrationState:
    """A migration and whether (and when) it is applied."""

    migration: Migration
    applied_at: datetime | None
    checksum_ok: bool = True

    @property
    def applied(self) -> bool:
        """True once recorded in ``schema_migrations``."""
        return self.applied_at is not None


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files in version order; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, m.group(2), path.read_text())
    return [found[v] for v in sorted(found)]


def _applied(client: Client) -> dict[int, tuple[str, datetime]]:
    client.command(_LEDGER_DDL)
    rows = client.query(
        "SELECT version, argMax(checksum, applied_at), max(applied_at) FROM schema_migrations GROUP BY version"
    ).result_rows
    return {int(v): (c, at) for v, c, at in rows}


def status(client: Client, directory: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    """Every known migration with its applied time (None = pending) and checksum agreement."""
    applied = _applied(client)
    out = []
    for m in load_migrations(directory):
        rec = applied.get(m.version)
        out.append(
            MigrationState(m, rec[1] if rec else None, checksum_ok=rec is None or rec[0] == m.checksum)
        )
    return out


def migrate(client: Client, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration in order and record it; returns the ones applied now.

    Raises :class:`MigrationError` if a statement fails (earlier migrations stay recorded, so a fixed
    file resumes where it stopped) or if an applied file was edited since.
    """
    done: list[Migration] = []
    for state in status(client, directory):
        m = state.migration
        if state.applied:
            if not state.checksum_ok:
                raise MigrationError(
                    f"migration {m.version:04d}_{m.name} was applied with different content; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        for stmt in m.statements():
            try:
                client.command(stmt)
            except Exception as exc:
                raise MigrationError(f"migration {m.version:04d}_{m.name} failed: {exc}") from exc
        client.insert(
            "schema_migrations",
            [[m.version, m.name, m.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
        )
        done.append(m)
    return done
