"""What a JSON value weighs in a read model: how list pages are bounded in bytes.

``json_text_bytes`` is an upper bound of the bytes of a value as JSON text as
either read store hands it back, never an underestimate. Compact JSON is not
one: PostgreSQL's ``jsonb`` writes ``", "`` and ``": "`` between items, and
keeps numbers as ``numeric``, which it writes out in full: ``1e308`` (5 bytes
in the log) comes back as 309 digits, ``1e-300`` as 302 characters. So the
bound is the compact JSON, one byte more per ``,`` and ``:``, and for each
number in exponent form the digits its exponent can add. A match inside a
string only makes the bound larger (and each is capped), so data cannot be
written to weigh less than it does.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_EXPONENT = re.compile(rb"[0-9][eE][+-]?([0-9]+)")
_MAX_EXPONENT_DIGITS = 330
"""What one exponent can add at most: a double's decimal exponent lies within -324 ... 308."""


def json_text_bytes(value: Any) -> int:
    """An upper bound of ``value``'s bytes as JSON text, as the read stores give it back."""
    if value is None:
        return 4
    text = orjson.dumps(value)
    expanded = sum(min(int(m[:4]), _MAX_EXPONENT_DIGITS) + 2 for m in _EXPONENT.findall(text))
    return len(text) + text.count(b",") + text.count(b":") + expanded
