"""Hand-written event streams for unit tests of the broker-free core."""

from __future__ import annotations

import orjson

from riskmon.eventtime import MS_PER_DAY, fmt_ts


class Stream:
    """Accumulates (topic, raw bytes) messages with deterministic ids."""

    def __init__(self) -> None:
        self.msgs: list[tuple[str, bytes]] = []
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def raw(self, topic: str, **value: object) -> dict:
        self.msgs.append((topic, orjson.dumps(value)))
        return value

    def account(self, user: str, ts: int, limit: str | None = "5000.00", **attrs: object) -> dict:
        v = {"event_id": self._id("a"), "ts": fmt_ts(ts), "user_id": user, **attrs}
        if limit is not None:
            v["credit_limit"] = limit
        return self.raw("accounts", **v)

    def purchase(self, user: str, ts: int, amount: str, installments: int = 1, channel: str = "app",
                 merchant: str = "m1") -> dict:
        return self.raw("purchases", event_id=self._id("p"), ts=fmt_ts(ts), user_id=user, order_id=self._id("o"),
                        amount=amount, merchant_id=merchant, category="electronics", channel=channel,
                        installments=installments)

    def repay(self, user: str, ts: int, amount: str) -> dict:
        return self.raw("repayments", event_id=self._id("r"), ts=fmt_ts(ts), user_id=user, amount=amount,
                        method="card")

    def background(self, start: int, days: int, every_hours: int = 6, users: int = 5) -> None:
        """Harmless traffic that moves event time on (account updates of other users)."""
        for i in range(days * 24 // every_hours):
            self.account(f"bg{i % users}", start + i * every_hours * 3_600_000, limit=None, bureau_score=700)

    def sorted(self) -> list[tuple[str, bytes]]:
        """Messages in event-time order (stable)."""
        return sorted(self.msgs, key=lambda m: orjson.loads(m[1])["ts"])


DAY = MS_PER_DAY
