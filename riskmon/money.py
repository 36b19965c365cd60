"""Exact money: amounts travel as integer fen (1/100 CNY) everywhere inside riskmon.

Why integers: ledger sums over millions of events must equal ground truth to the fen; float sums drift.
JSON numbers are parsed by orjson into floats, so a float is converted through its shortest repr, which
is exact for every amount within ``MAX_AMOUNT_FEN`` (at most 13 significant digits).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_AMOUNT_FEN = 10**11  # 1,000,000,000.00 CNY: beyond any single consumer or enterprise event


class MoneyError(ValueError):
    """An amount that is not a valid CNY value with at most two decimals."""


def to_fen(value: object) -> int:
    """Parse a JSON number or decimal string into integer fen, rejecting over-precise values.

    >>> to_fen("12.50"), to_fen(0.1), to_fen(3)
    (1250, 10, 300)
    """
    if isinstance(value, bool) or value is None:
        raise MoneyError("must be a number or decimal string")
    if isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise MoneyError("must be finite")
        dec = Decimal(repr(value))
    elif isinstance(value, str):
        if len(value) > 32:
            raise MoneyError("too long")
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError("not a decimal string") from None
        if not dec.is_finite():
            raise MoneyError("must be finite")
    else:
        raise MoneyError("must be a number or decimal string")
    if abs(dec) > Decimal(MAX_AMOUNT_FEN) / 100:
        raise MoneyError("out of range")
    fen = dec * 100
    if fen != fen.to_integral_value():
        raise MoneyError("more than 2 decimals")
    return int(fen)


def fmt(fen: int) -> str:
    """Format fen as a decimal string with two decimals (the wire format of outputs).

    >>> fmt(123456), fmt(-5)
    ('1234.56', '-0.05')
    """
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
