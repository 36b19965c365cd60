"""A least-recently-used map bounded by an estimated memory budget (and optionally a count).

Why one class: a worker caches two kinds of state written through to Redis, account states
(``riskmon.state.accounts``) and enterprise EWS states (``riskmon.ews.service``). Both must stay within a
memory budget whatever the number of users or enterprises a worker owns, and both can drop any entry at
any time because Redis holds it. Sizes are estimates given by the caller (from the stored blob).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

V = TypeVar("V")


class BudgetedLRU(Generic[V]):
    """Entries in least- to most-recently-used order; ``put`` evicts from the old end while the map is over
    ``max_bytes`` (or ``max_entries``), never the entry just put.

    >>> c = BudgetedLRU(max_bytes=10)
    >>> c.put("a", 1, 4); c.put("b", 2, 4); c.get("a"); c.put("c", 3, 4)
    1
    >>> list(c), c.used_bytes, c.evictions
    (['a', 'c'], 8, 1)
    """

    def __init__(self, max_bytes: int, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.entries: OrderedDict[str, V] = OrderedDict()
        self.sizes: dict[str, int] = {}
        self.used_bytes = 0
        self.evictions = 0

    def get(self, key: str) -> V | None:
        """The entry (now the most recently used), or None."""
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: str, value: V, size: int) -> None:
        """Store ``value`` as the most recently used, with its estimated size; evict beyond the bounds."""
        self.entries[key] = value
        self.entries.move_to_end(key)
        self.used_bytes += size - self.sizes.get(key, 0)
        self.sizes[key] = size
        while len(self.entries) > 1 and (self.used_bytes > self.max_bytes or (
                self.max_entries is not None and len(self.entries) > self.max_entries)):
            old, _ = self.entries.popitem(last=False)
            self.used_bytes -= self.sizes.pop(old, 0)
            self.evictions += 1

    def size_of(self, key: str, default: int) -> int:
        """The estimated size last given for ``key``."""
        return self.sizes.get(key, default)

    def discard(self, key: str) -> None:
        """Forget one entry, if present."""
        self.entries.pop(key, None)
        self.used_bytes -= self.sizes.pop(key, 0)

    def clear(self) -> None:
        """Forget everything."""
        self.entries.clear()
        self.sizes.clear()
        self.used_bytes = 0

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __getitem__(self, key: str) -> V:
        return self.entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
