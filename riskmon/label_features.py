"""A pending label's decision-time features, held compactly until the label resolves.

Why: every purchase leaves a label pending for ~60 days with the ~37 features its decision saw (the
online model learns them when the outcome is known). As a dict of float objects a label took ~3.1 KB of
a worker's memory, two thirds of a cached account state (17 KB at 3.5 pending labels), and a worker
caching 82k users reached 1.56 GB (docs/performance.md). Here the names are one tuple shared by every
label with the same features and the values are raw doubles: ~0.5 KB. The dict is rebuilt once, when
the label is learnt.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}  # one object per distinct tuple of feature names


def shared_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The one shared instance of this tuple of names."""
    return _NAMES.setdefault(names, names)


class Features:
    """Feature names (shared) and values (doubles); equal to the dict it was made from.

    >>> f = Features.of({"utilisation": 0.25, "limit": 5000.0})
    >>> f.to_dict(), list(f), f == {"utilisation": 0.25, "limit": 5000.0}
    ({'utilisation': 0.25, 'limit': 5000.0}, ['utilisation', 'limit'], True)
    """

    __slots__ = ("names", "values")

    def __init__(self, names: tuple[str, ...], values: array) -> None:
        self.names = names
        self.values = values

    @classmethod
    def of(cls, x: dict[str, float]) -> Features:
        """Compact copy of a features dict (values must be numbers: they are stored as doubles)."""
        return cls(shared_names(tuple(x)), array("d", x.values()))

    def to_dict(self) -> dict[str, float]:
        """The features as the dict the models take."""
        return dict(zip(self.names, self.values, strict=True))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Features):
            return self.names == other.names and self.values == other.values
        if isinstance(other, dict):
            return self.to_dict() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment] - mutable values, like the dict it stands for

    def __repr__(self) -> str:
        return f"Features({self.to_dict()!r})"


def as_dict(x: Features | dict[str, float]) -> dict[str, float]:
    """A label's features as a dict, whichever form the label holds."""
    return x.to_dict() if isinstance(x, Features) else x
