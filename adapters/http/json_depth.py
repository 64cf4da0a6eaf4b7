"""How deep a JSON document nests, measured on its bytes without recursion.

A request body is checked against ``domain.limits.MAX_JSON_DEPTH`` as it is
read, before anything walks the parsed value: pydantic, the JSON Schema
validator, ``copy.deepcopy`` and the JSON encoder all recurse, and each has a
limit of its own that a deep enough body reaches (orjson refuses to encode
beyond 254 levels, Python raises ``RecursionError`` near 1,000).

The measure runs at C speed: strings are cut out with one regular
expression, every byte but the brackets is dropped with ``bytes.translate``,
brackets become +1/-1 and ``itertools.accumulate`` gives the running depth.
About 20 ms for the worst 1 MiB body (all brackets); a body with fewer
opening brackets than the limit is not even scanned.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")  # as signed bytes: +1 and -1
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the JSON document ``raw`` nests objects and arrays more than ``limit`` deep.

    The top-level container is level 1: ``{"a": [1]}`` nests 2 deep. Exact
    for well-formed JSON; for malformed bytes (run before parsing) the answer
    may be either, and the parser refuses them next anyway.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    steps = _STRING.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0) > limit
