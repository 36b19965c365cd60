"""Expanding the ClickHouse plugin's macros and Grafana template variables for a concrete time range.

Why: panel SQL is only valid after Grafana (variables) and the plugin backend (``$__`` macros) rewrite
it. The tests and the HTML report run the very same panel SQL, so they need the same rewrite. The
expansions mirror the plugin's ``pkg/macros/macros.go``: ``$__timeFilter(c)`` -> ``c >= toDateTime(f) AND
c <= toDateTime(t)`` in epoch seconds, ``$__timeInterval(c)`` -> ``toStartOfInterval(toDateTime(c),
INTERVAL n second)`` with n the panel interval, and the ``_ms`` variants with DateTime64 milliseconds.
Multi-value variables follow Grafana: ``${v:singlequote}`` -> ``'a','b'``, and a custom "All" value is
inserted unformatted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

ALL = "$__all"


class MacroError(ValueError):
    """A macro with the wrong number of arguments, or an unknown macro/variable."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard time range (aware datetimes) and the panel interval in seconds."""

    start: datetime
    end: datetime
    interval_s: int | None = None

    @property
    def interval(self) -> int:
        """Grafana-like interval: range / ~200 points, rounded to a friendly step, at least 1 s."""
        if self.interval_s:
            return max(1, self.interval_s)
        span = max(1.0, (self.end - self.start).total_seconds() / 200)
        for step in (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
            if span <= step:
                return step
        return 86400 * 7


def _sec(t: datetime) -> int:
    return int(t.astimezone(UTC).timestamp())


def _ms(t: datetime) -> int:
    return int(round(t.astimezone(UTC).timestamp() * 1000))


def _args(raw: str) -> list[str]:
    return [a.strip() for a in raw.split(",")] if raw.strip() else []


def _need(name: str, args: list[str], n: int) -> None:
    if len(args) != n:
        raise MacroError(f"$__{name}: expected {n} argument(s), received {len(args)}")


def _expand_macro(name: str, args: list[str], tr: TimeRange) -> str:
    f, t = tr.start, tr.end
    if name in ("timeFilter", "timeFilter_ms"):
        _need(name, args, 1)
        c = args[0]
        if name == "timeFilter":
            return f"{c} >= toDateTime({_sec(f)}) AND {c} <= toDateTime({_sec(t)})"
        return f"{c} >= fromUnixTimestamp64Milli({_ms(f)}) AND {c} <= fromUnixTimestamp64Milli({_ms(t)})"
    if name == "dateFilter":
        _need(name, args, 1)
        c = args[0]
        return f"{c} >= toDate('{f:%Y-%m-%d}') AND {c} <= toDate('{t:%Y-%m-%d}')"
    if name in ("dateTimeFilter", "dt"):
        _need(name, args, 2)
        d, c = args
        return (f"({d} >= toDate('{f:%Y-%m-%d}') AND {d} <= toDate('{t:%Y-%m-%d}')) AND "
                f"({c} >= toDateTime({_sec(f)}) AND {c} <= toDateTime({_sec(t)}))")
    if name == "timeInterval":
        _need(name, args, 1)
        return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {tr.interval} second)"
    if name == "timeInterval_ms":
        _need(name, args, 1)
        return f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {tr.interval * 1000} millisecond)"
    simple = {
        "fromTime": f"toDateTime({_sec(f)})",
        "toTime": f"toDateTime({_sec(t)})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({_ms(f)})",
        "toTime_ms": f"fromUnixTimestamp64Milli({_ms(t)})",
        "interval_s": str(tr.interval),
    }
    if name in simple:
        return simple[name]
    raise MacroError(f"unknown macro $__{name}")


_MACRO_RE = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VAR_RE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


def _format(values: Sequence[str], fmt: str | None) -> str:
    if fmt in (None, "singlequote", "sqlstring"):
        return ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt in ("csv", "raw"):
        return ",".join(values)
    raise MacroError(f"unsupported variable format {fmt!r}")


def expand_variables(sql: str, variables: Mapping[str, Sequence[str] | str],
                     all_values: Mapping[str, str] | None = None) -> str:
    """Replace ``$var`` / ``${var}`` / ``${var:fmt}``; a value of ``$__all`` uses the variable's allValue."""
    all_values = all_values or {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        fmt = m.group(2)
        if name not in variables:
            raise MacroError(f"unknown template variable ${name}")
        val = variables[name]
        values = [val] if isinstance(val, str) else list(val)
        if values == [ALL]:
            if name not in all_values:
                raise MacroError(f"${name} is 'All' but has no allValue")
            return all_values[name]  # Grafana inserts a custom all value unformatted
        return _format(values, fmt)

    return _VAR_RE.sub(sub, sql)


def expand(sql: str, tr: TimeRange, variables: Mapping[str, Sequence[str] | str] | None = None,
           all_values: Mapping[str, str] | None = None) -> str:
    """Panel SQL as the plugin would send it to ClickHouse for this range and these variable values."""
    out = _MACRO_RE.sub(lambda m: _expand_macro(m.group(1), _args(m.group(2) or ""), tr), sql)
    return expand_variables(out, variables or {}, all_values)


def dashboard_all_values(dashboard: Mapping) -> dict[str, str]:
    """``{variable: allValue}`` of a dashboard JSON's multi-value variables."""
    return {v["name"]: v["allValue"] for v in dashboard.get("templating", {}).get("list", [])
            if v.get("includeAll") and v.get("allValue")}
