"""``ValidatorPool``: jsonschema-rs in real worker processes, each call on a time and memory budget."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.validation import JsonSchemaValidator
from adapters.validation.pool import DEPTH, ValidatorPool
from commands.ports import Unavailable
from domain.errors import FieldError, ValidationFailed

BOOK = {
    "type": "object",
    "required": ["title"],
    "properties": {"title": {"type": "string", "pattern": "^[A-Z]"}, "year": {"type": "integer"}},
}


def fan_out(depth: int) -> dict[str, Any]:
    """No regex at all: each level applies the next one twice, so one value is checked 2^depth times."""
    defs: dict[str, Any] = {f"a{i}": {"allOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(depth)}
    defs[f"a{depth}"] = {"type": "integer"}
    return {"$defs": defs, "$ref": "#/$defs/a0"}


@pytest.fixture
async def pool() -> AsyncIterator[ValidatorPool]:
    validators = ValidatorPool(workers=2, budget_ms=500, memory_mib=256)
    yield validators
    await validators.aclose()


async def test_answers_what_the_in_process_validator_answers(pool: ValidatorPool) -> None:
    inline = JsonSchemaValidator()
    for data in [{"title": "Ok"}, {"title": "lower", "year": "1999"}, [], {"year": 1}]:
        assert await pool.validate("book@1.0.0", BOOK, data) == inline.validate("book@1.0.0", BOOK, data)
    assert await pool.check_schema(BOOK) == []
    refused = await pool.check_schema({"properties": {"x": {"pattern": "^((a)\\2?)*b"}}})
    assert [e.path for e in refused] == ["/properties/x/pattern"]


async def test_concurrent_calls_all_get_their_own_answer(pool: ValidatorPool) -> None:
    titles = [f"{'Aa'[i % 2]}-{i}" for i in range(24)]
    answers = await asyncio.gather(*(pool.validate("book@1.0.0", BOOK, {"title": t}) for t in titles))
    for title, errors in zip(titles, answers, strict=True):
        assert (errors == []) is title.startswith("A"), (title, errors)


async def test_a_schema_that_cannot_be_used_is_a_validation_failure_with_its_reason(pool: ValidatorPool) -> None:
    with pytest.raises(ValidationFailed) as failed:
        await pool.validate("old@1.0.0", {"pattern": "(?=a)"}, "a")
    assert "schema old@1.0.0 cannot be used" in failed.value.reason and "look-around" in failed.value.reason
    assert failed.value.errors == [FieldError("", failed.value.reason)]


async def test_a_call_over_its_budget_is_stopped_and_the_pool_goes_on(pool: ValidatorPool) -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationFailed) as stopped:
        await pool.validate("fan@1.0.0", fan_out(28), 1)
    elapsed = time.perf_counter() - started
    assert "took longer than its budget of 500 ms and was stopped" in stopped.value.reason
    assert elapsed < 5, elapsed  # 2^28 checks would take minutes
    assert pool.restarts == 1
    assert await pool.validate("book@1.0.0", BOOK, {"title": "Again"}) == []  # a new worker took its place


async def test_the_event_loop_keeps_running_while_a_worker_grinds(pool: ValidatorPool) -> None:
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    with pytest.raises(ValidationFailed):
        await pool.validate("fan@1.0.0", fan_out(28), 1)
    done.set()
    await ticker
    # In process, the same call held the loop (and the GIL) for its whole run.
    assert len(gaps) > 20 and max(gaps) < 0.25, (len(gaps), max(gaps))


async def test_a_worker_out_of_memory_fails_its_call_not_the_server() -> None:
    pool = ValidatorPool(workers=1, budget_ms=20_000, memory_mib=160)
    # Each error quotes the whole megabyte string: 300 of them are more than the worker may have.
    greedy = {"allOf": [{"pattern": f"^b{i}"} for i in range(300)]}
    try:
        with pytest.raises(ValidationFailed) as stopped:
            await pool.validate("greedy@1.0.0", greedy, "a" * 1_000_000)
        assert "memory" in stopped.value.reason, stopped.value.reason
        assert await pool.validate("book@1.0.0", BOOK, {"title": "Still here"}) == []
    finally:
        await pool.aclose()


async def test_a_call_queued_behind_a_runaway_moves_to_a_new_worker_and_succeeds() -> None:
    pool = ValidatorPool(workers=1, budget_ms=400)
    try:
        await pool.validate("book@1.0.0", BOOK, {"title": "Warm"})
        slow = asyncio.create_task(pool.validate("fan@1.0.0", fan_out(30), 1))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        assert await pool.validate("book@1.0.0", BOOK, {"title": "Queued"}) == []
        assert time.perf_counter() - started < 5
        with pytest.raises(ValidationFailed, match="budget of 400 ms"):
            await slow
        assert pool.restarts == 1
    finally:
        await pool.aclose()


async def test_when_every_queue_is_full_callers_wait_then_give_up_with_503() -> None:
    pool = ValidatorPool(workers=1, budget_ms=3000, wait_seconds=0.3)
    try:
        await pool.validate("book@1.0.0", BOOK, {"title": "Warm"})
        queued = [asyncio.create_task(pool.validate("fan@1.0.0", fan_out(30), 1))]
        await asyncio.sleep(0.05)
        queued += [asyncio.create_task(pool.validate("book@1.0.0", BOOK, {"title": f"Q{i}"})) for i in range(DEPTH - 1)]
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable, match="every validation worker is busy"):
            await pool.validate("book@1.0.0", BOOK, {"title": "One too many"})
        results = await asyncio.gather(*queued, return_exceptions=True)
        assert isinstance(results[0], ValidationFailed) and results[1:] == [[]] * (DEPTH - 1)
    finally:
        await pool.aclose()


async def test_closing_answers_calls_in_flight_with_503() -> None:
    pool = ValidatorPool(workers=1, budget_ms=5000)
    await pool.validate("book@1.0.0", BOOK, {"title": "Warm"})
    slow = asyncio.create_task(pool.validate("fan@1.0.0", fan_out(30), 1))
    await asyncio.sleep(0.1)
    pool.close()
    with pytest.raises(Unavailable):
        await slow
    with pytest.raises(Unavailable):
        await pool.validate("book@1.0.0", BOOK, {"title": "Late"})


async def test_close_kills_every_worker(pool: ValidatorPool) -> None:
    await pool.validate("book@1.0.0", BOOK, {"title": "Up"})  # starts both workers
    for _ in range(200):
        if len(pool._workers) == 2:
            break
        await asyncio.sleep(0.05)
    pids = [w.process.pid for w in pool._workers]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    pool.close()
    for _ in range(100):
        if not any(_alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_values_too_deep_to_encode_are_a_validation_failure_not_a_crash(pool: ValidatorPool) -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValidationFailed, match="the data cannot be validated: it is nested too deeply"):
        await pool.validate("any@1.0.0", {}, deep)
    with pytest.raises(ValidationFailed, match="the schema cannot be validated: it is nested too deeply"):
        await pool.check_schema({"items": deep})
    with pytest.raises(ValidationFailed, match="schema deep@1.0.0 cannot be validated: it is nested too deeply"):
        await pool.validate("deep@1.0.0", {"items": deep}, 1)
    assert pool.restarts == 0
