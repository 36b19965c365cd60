"""The policy file: thresholds, ladders, pricing and routing as data.

Why a file and not code: risk ops tune thresholds and ladders weekly; a YAML change plus a worker
restart is auditable and needs no release. The file is validated on load so a typo fails fast with the
offending key, instead of silently changing decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from riskmon.money import to_fen

GRADES = ("A", "B", "C", "D", "E")


class PolicyError(ValueError):
    """The policy file is missing a key or has a value of the wrong kind."""


@dataclass(frozen=True, slots=True)
class LadderStep:
    """One step of the collection ladder (offset from the due instant, in days)."""

    kind: str
    offset_days: int
    severity: str
    customer_facing: bool = False
    bureau_report: bool = False


@dataclass(frozen=True)
class Policy:
    """The parsed policy file; ``raw`` keeps sections owned by other modules (ews, hooks)."""

    raw: dict[str, Any]
    default_limit: int
    initial_limit_cap: int
    limits: dict[str, Any]
    raise_cap: int
    grade_bounds: tuple[tuple[str, float], ...]
    apr_bps: dict[str, dict[str, int]]
    alerts: dict[str, float]
    grace_days: int
    default_dpd: int
    ladder_steps: tuple[LadderStep, ...]
    ladder_tz: str
    quiet_start_min: int
    quiet_end_min: int
    contact_cap_per_week: int

    def grade(self, pd: float) -> str:
        """Risk grade A-E of a default probability."""
        for grade, bound in self.grade_bounds:
            if pd <= bound:
                return grade
        return GRADES[-1]

    def apr(self, grade: str, channel: str) -> int:
        """APR in basis points for a grade and channel (risk-based pricing)."""
        return self.apr_bps[grade][channel]

    def section(self, name: str) -> dict[str, Any]:
        """A section owned by another module (e.g. ``ews``, ``hooks``); empty if absent."""
        return dict(self.raw.get(name) or {})


def _hhmm(value: str) -> int:
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def parse_policy(raw: dict[str, Any]) -> Policy:
    """Validate and parse a policy document."""
    try:
        limits = dict(raw["limits"])
        grades = raw["grades"]
        bounds = tuple((g, float(grades[g])) for g in GRADES)
        if any(b1 > b2 for (_, b1), (_, b2) in zip(bounds, bounds[1:], strict=False)):
            raise PolicyError("grades: bounds must increase from A to E")
        apr = {g: {c: int(v) for c, v in raw["pricing"]["apr_bps"][g].items()} for g in GRADES}
        ladder = raw["ladder"]
        steps = tuple(LadderStep(**s) for s in ladder["steps"])
        if [s.offset_days for s in steps] != sorted(s.offset_days for s in steps):
            raise PolicyError("ladder.steps: must be ordered by offset_days")
        return Policy(
            raw=raw,
            default_limit=to_fen(raw["accounts"]["default_credit_limit"]),
            initial_limit_cap=to_fen(raw["accounts"]["initial_limit_cap"]),
            limits=limits,
            raise_cap=to_fen(limits["raise_cap"]),
            grade_bounds=bounds,
            apr_bps=apr,
            alerts={k: float(v) for k, v in raw["alerts"].items()},
            grace_days=int(raw["labels"]["grace_days"]),
            default_dpd=int(raw["labels"]["default_dpd"]),
            ladder_steps=steps,
            ladder_tz=str(ladder["timezone"]),
            quiet_start_min=_hhmm(ladder["quiet_hours"]["start"]),
            quiet_end_min=_hhmm(ladder["quiet_hours"]["end"]),
            contact_cap_per_week=int(ladder["contact_cap_per_week"]),
        )
    except PolicyError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"policy file: missing or invalid key {exc}") from exc


def load_policy(path: Path) -> Policy:
    """Load and validate the policy file at ``path``."""
    if not path.exists():
        raise PolicyError(f"policy file not found: {path}")
    return parse_policy(yaml.safe_load(path.read_text()) or {})
