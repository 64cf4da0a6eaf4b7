"""Validation of user schemas: what a hostile schema costs, and what bounding it costs (issue #9, defect 3).

    python -m bench.validation [--quick]

No servers: jsonschema-rs in this process, and ``ValidatorPool`` (the
server's worker processes). Measured:

(a) the reported pattern ``^((a)\\2?)*b`` on jsonschema-rs's default engine
    (fancy-regex, backtracking), with a lower backtrack limit, and on the
    linear ``regex`` engine the server uses (which refuses it);
(b) the linear engine's worst cases on a megabyte;
(c) whether a thread protects the event loop (the GIL during a validation);
(d) schemas that are expensive without any regex;
(e) the price of the worker processes: a round trip, a megabyte, the time the
    loop itself spends, a restart after a kill.
Rows go to bench/results/validation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import orjson

from adapters.runtime.event_loop import run as run_event_loop
from adapters.validation.json_schema import PATTERN_OPTIONS, JsonSchemaValidator
from adapters.validation.pool import ValidatorPool, _Worker
from bench.event_store import percentile, print_table, write_results

NAME = "validation"
CATASTROPHIC = "^((a)\\2?)*b"
MIB = 1 << 20


def _compile(schema: Any, options: Any = None) -> Any:
    return jsonschema_rs.validator_for(schema, validate_formats=True, offline=True, pattern_options=options)


def _ms(call: Callable[[], Any], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _row(case: str, value: float | None, unit: str, note: str = "") -> dict[str, Any]:
    return {"case": case, "value": value, "unit": unit, "note": note}


def regex_engines(quick: bool) -> list[dict[str, Any]]:
    rows = []
    default = _compile({"items": {"pattern": CATASTROPHIC}})
    rows.append(_row(f"(a) {CATASTROPHIC} on one 26-byte string, fancy-regex (jsonschema-rs default)",
                     _ms(lambda: list(default.iter_errors(["a" * 26])), 3), "ms"))
    report = ["a" * 26] * (60 if quick else 300)  # the report's 9 KB body: 300 of them
    rows.append(_row(f"(a) the same, {len(report)} such strings ({len(orjson.dumps(report)):,} bytes)",
                     _ms(lambda: list(default.iter_errors(report))), "ms", "the reported freeze"))
    limited = _compile({"items": {"pattern": CATASTROPHIC}}, jsonschema_rs.FancyRegexOptions(backtrack_limit=10_000))
    rows.append(_row("(a) fancy-regex, backtrack_limit=10,000, one 26-byte string",
                     _ms(lambda: list(limited.iter_errors(["a" * 26])), 3), "ms", "answers 'Max limit ... exceeded'"))
    under = ["a" * 16] * ((MIB // 16 if quick else MIB // 4) // 19)  # just under the limit: full work, no error
    rows.append(_row(f"(a) backtrack_limit=10,000, {len(under):,} 16-byte strings ({len(orjson.dumps(under)) // 1024} KiB)",
                     _ms(lambda: list(limited.iter_errors(under))), "ms", "the limit bounds one match, not a document"))
    try:
        _compile({"pattern": CATASTROPHIC}, PATTERN_OPTIONS)
        refused = "accepted"
    except jsonschema_rs.ValidationError:
        refused = "refused at compile"
    rows.append(_row(f"(a) {CATASTROPHIC} on the linear regex engine", None, "-", refused))
    return rows


def linear_worst_cases(quick: bool) -> list[dict[str, Any]]:
    size = MIB // (4 if quick else 1)
    rows = []
    for pattern in ["[ab]*a[ab]{20}c", "^(a|aa)+$", "(\\w{100}){10}x"]:
        one = _compile({"pattern": pattern}, PATTERN_OPTIONS)
        text = ("ab" * size)[:size] if "[ab]" in pattern else ("a" * size if "aa" in pattern else "é" * (size // 2))
        rows.append(_row(f"(b) linear engine, {pattern} on one {size // 1024} KiB string", _ms(lambda: list(one.iter_errors(text)), 3), "ms"))
        many = _compile({"items": {"pattern": pattern}}, PATTERN_OPTIONS)
        strings = ["a" * 40 + "!"] * (size // 44)
        rows.append(_row(f"(b) linear engine, {pattern} on {len(strings):,} failing 41-byte strings", _ms(lambda: many.is_valid(strings) or list(many.iter_errors(strings))), "ms",
                         "mostly building the errors (about 13 µs each)"))
    return rows


def gil(quick: bool) -> list[dict[str, Any]]:
    slow = _compile({"items": {"pattern": CATASTROPHIC}})
    data = ["a" * 26] * (10 if quick else 25)
    done = threading.Event()
    ticks = 0
    worker = threading.Thread(target=lambda: (list(slow.iter_errors(data)), done.set()))
    started = time.perf_counter()
    worker.start()
    while not done.is_set():
        time.sleep(0.001)
        ticks += 1
    worker.join()
    took = (time.perf_counter() - started) * 1000
    return [_row(f"(c) a thread validating for {took:,.0f} ms: times the main thread ran (1 ms sleeps)", ticks, "runs",
                 f"a free main thread would run about {took:,.0f} times")]


def expensive_schemas(quick: bool) -> list[dict[str, Any]]:
    def fan_out(depth: int) -> dict[str, Any]:
        defs: dict[str, Any] = {f"a{i}": {"allOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(depth)}
        defs[f"a{depth}"] = {"type": "integer"}
        return {"$defs": defs, "$ref": "#/$defs/a0"}

    depth = 14 if quick else 16
    n_enum = 3_000 if quick else 5_000
    rows = [
        _row(f"(d) allOf/$ref fan-out, depth {depth}, on the value 1", _ms(lambda: list(_compile(fan_out(depth)).iter_errors("x"))), "ms",
             "doubles with each level: depth 20 took 34 s"),
        _row(f"(d) enum of {n_enum:,} values over {n_enum:,} items", _ms(lambda: list(_compile({"items": {"enum": list(range(n_enum))}}).iter_errors([-1] * n_enum))), "ms",
             "quadratic: 60,000 x 60,000 ran over 2 minutes"),
        _row("(d) uniqueItems over 100,000 integers", _ms(lambda: _compile({"uniqueItems": True}).is_valid(list(range(100_000))), 3), "ms", "hashed: cheap"),
        _row("(d) 100,000 type errors", _ms(lambda: list(_compile({"items": {"type": "string"}}).iter_errors([1] * 100_000))), "ms", "about 13 µs per error"),
    ]
    big = {"-": ["x" * 40] * (5_000 if quick else 20_000), **{f"bad key {i}": 0 for i in range(100)}}
    rows.append(_row("(d) propertyNames: 100 bad keys of a large object", _ms(lambda: list(_compile({"propertyNames": {"maxLength": 3}}).iter_errors(big))), "ms",
                     "each error copies the whole object: errors x size"))
    return rows


async def pool_costs(quick: bool) -> list[dict[str, Any]]:
    n = 300 if quick else 2000
    small_schema = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string", "pattern": "^[A-Z]"}, "n": {"type": "integer"}}}
    small = {"title": "Hello", "n": 3}
    inline = JsonSchemaValidator()
    pool = ValidatorPool(workers=2, budget_ms=10_000)
    rows = []
    try:
        await pool.validate("s@1", small_schema, small)
        in_process = [_ms(lambda: inline.validate("s@1", small_schema, small)) * 1000 for _ in range(n)]
        through: list[float] = []
        for _ in range(n):
            started = time.perf_counter()
            await pool.validate("s@1", small_schema, small)
            through.append((time.perf_counter() - started) * 1_000_000)
        rows.append(_row("(e) small document, in process (p50)", percentile(in_process, 50), "µs"))
        rows.append(_row("(e) small document, through a worker (p50)", percentile(through, 50), "µs",
                         f"p99 {percentile(through, 99):.0f} µs"))
        big = {"title": "Big", "chapters": [{"title": f"Chapter {i}", "text": "lorem ipsum " * 8} for i in range(8_000)]}
        big_schema = {**small_schema, "properties": {**small_schema["properties"], "chapters": {"items": {
            "type": "object", "required": ["title", "text"],
            "properties": {"title": {"type": "string", "pattern": "^Chapter"}, "text": {"type": "string"}}}}}}
        size = len(orjson.dumps(big))
        assert inline.validate("big@1", big_schema, big) == []
        rows.append(_row(f"(e) {size // 1024} KiB document, every value checked, in process", _ms(lambda: inline.validate("big@1", big_schema, big), 3), "ms"))
        worker_ms = []
        for _ in range(3):
            started = time.perf_counter()
            await pool.validate("big@1", big_schema, big)
            worker_ms.append((time.perf_counter() - started) * 1000)
        rows.append(_row(f"(e) {size // 1024} KiB document, through a worker", min(worker_ms), "ms"))
        rows.append(_row(f"(e) {size // 1024} KiB document: the loop's own share (orjson.dumps)", _ms(lambda: orjson.dumps(big), 5), "ms",
                         "the rest runs in the worker, the loop free"))
        starts = []
        for _ in range(3 if quick else 10):
            started = time.perf_counter()
            worker = await _Worker.start(512, 1.0, asyncio.Event())
            starts.append((time.perf_counter() - started) * 1000)
            worker.close()
        rows.append(_row("(e) a worker's start, until it is ready (p50)", percentile(starts, 50), "ms", "paid after a kill, by the next call"))
    finally:
        await pool.aclose()
    return rows


async def run(quick: bool = False) -> list[dict[str, Any]]:
    started = time.perf_counter()
    rows = regex_engines(quick) + linear_worst_cases(quick) + gil(quick) + expensive_schemas(quick) + await pool_costs(quick)
    print_table(f"bench.validation — {'quick' if quick else 'full'}", rows,
                [("case", "case"), ("value", "value"), ("unit", "unit"), ("note", "note")])
    path = write_results(NAME, rows, {"quick": quick, "seconds": round(time.perf_counter() - started, 1)})
    print(f"(rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.validation", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="smaller documents and fewer repetitions")
    args = parser.parse_args(argv)
    run_event_loop(run(quick=args.quick))


if __name__ == "__main__":
    main()
