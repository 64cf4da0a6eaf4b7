"""The chain budget, pure: how one event's matches share what the triggering job may still spawn,
and the property that bounds fan-out: whatever the processors, a chain runs at most
``MAX_CHAIN_JOBS`` jobs (depth alone let K processors on one schema run K + K² + … + K⁸)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.job import FULL_BUDGET, MAX_CHAIN_JOBS, MAX_DEPTH, OVER_BUDGET, budget_left, split_budget

budgets = st.integers(0, MAX_CHAIN_JOBS)
matches = st.integers(0, 40)


@given(budget=budgets, n=matches)
def test_the_shares_cover_at_most_the_budget_and_the_first_matches_run(budget: int, n: int) -> None:
    shares = split_budget(budget, n)
    assert len(shares) == n
    running = [s for s in shares if s is not None]
    assert len(running) == min(n, budget)
    assert shares[: len(running)] == running  # in processor id order: the first ones run
    assert all(isinstance(s, int) and 0 <= s <= FULL_BUDGET for s in running)
    assert sum(1 + s for s in running) == (budget if running else 0)  # nothing lost, nothing made up
    if running:
        assert max(running) - min(running) <= 1 and running == sorted(running, reverse=True)  # evenly


@given(budget=st.integers(-5, 0), n=matches)
def test_nothing_left_runs_nothing(budget: int, n: int) -> None:
    assert split_budget(budget, n) == [None] * n


def test_examples() -> None:
    assert split_budget(MAX_CHAIN_JOBS, 3) == [5, 4, 4]
    assert split_budget(5, 2) == [2, 1]
    assert split_budget(1, 3) == [0, None, None]
    assert split_budget(0, 2) == [None, None]
    assert split_budget(MAX_CHAIN_JOBS, 1) == [FULL_BUDGET]
    assert split_budget(7, 0) == []


@given(budget=st.one_of(st.integers(-(2**40), 2**40), st.none(), st.booleans(), st.text(max_size=3)),
       depth=st.one_of(st.integers(-3, MAX_DEPTH + 3), st.none(), st.booleans()))
def test_budget_left_is_never_more_than_a_full_budget(budget: object, depth: object) -> None:
    left = budget_left(budget, depth)
    assert isinstance(left, int) and 0 <= left <= FULL_BUDGET


def test_budget_left_of_a_job_from_before_budgets_is_what_the_depth_limit_left_it() -> None:
    assert [budget_left(None, d) for d in range(MAX_DEPTH + 2)] == [8, 7, 6, 5, 4, 3, 2, 1, 0, 0]
    assert budget_left(OVER_BUDGET, 1) == 0
    assert budget_left(3, 8) == 3  # a budget is the budget: depth is checked on its own


# -- the property: any chain ----------------------------------------------------------------------


@dataclass
class Chain:
    ran: int = 0
    refused: int = 0
    events: int = 0


def grow(chain: Chain, budget: int, draw_matches: st.DataObject) -> None:
    """One event (a user's blob, or a job's output) that matches some processors; every job that
    runs makes one output, which matches some processors again, and so on."""
    chain.events += 1
    n = draw_matches.draw(st.integers(0, 6))
    shares = split_budget(budget, n)
    chain.refused += shares.count(None)  # each match left out is recorded refused, and runs nothing
    for share in shares:
        if share is not None:
            chain.ran += 1
            grow(chain, budget_left(share, 0), draw_matches)


@settings(max_examples=300)
@given(data=st.data(), from_a_job=st.booleans())
def test_a_chain_runs_at_most_max_chain_jobs_whatever_matches(data: st.DataObject, from_a_job: bool) -> None:
    chain = Chain()
    if from_a_job:  # a user's request: that job, then what its output triggers
        chain.ran += 1
        grow(chain, budget_left(FULL_BUDGET, 0), data)
    else:  # a user's blob: what it triggers
        grow(chain, MAX_CHAIN_JOBS, data)
    assert chain.ran <= MAX_CHAIN_JOBS
    assert chain.events <= chain.ran + 1  # refusals make no events: they never fan out
    assert chain.refused <= 6 * chain.events  # at most one per matching processor of each event


@settings(max_examples=100)
@given(data=st.data(), depth=st.integers(1, MAX_DEPTH))
def test_a_job_from_before_budgets_spawns_at_most_what_the_depth_limit_left_it(data: st.DataObject,
                                                                                depth: int) -> None:
    chain = Chain()
    grow(chain, budget_left(None, depth), data)
    assert chain.ran <= MAX_DEPTH - depth


def test_k_processors_on_one_schema_each_writing_it() -> None:
    """The case that made this: K processors triggered by one schema, each writing that schema
    (a processor's own output never triggers it, so each output matches K - 1)."""
    for k in range(1, 8):
        ran = refused = 0
        pending = [(MAX_CHAIN_JOBS, k)]  # a user's blob matches all K
        while pending:
            budget, n = pending.pop()
            shares = split_budget(budget, n)
            refused += None in shares
            for share in shares:
                if share is not None:
                    ran += 1
                    pending.append((share, k - 1))
        assert ran == (k if k == 1 else MAX_CHAIN_JOBS)  # one processor alone: its output triggers nothing
        assert refused <= ran + 1


def test_what_a_blob_change_hands_its_matches() -> None:
    from adapters.jobs.dispatcher import chain_budget

    assert chain_budget(None) == MAX_CHAIN_JOBS  # a user's own blob starts a chain
    assert chain_budget({"job_id": "j", "processor_id": "p", "depth": 2, "run": 1, "budget": 5}) == 5
    assert chain_budget({"job_id": "j", "processor_id": "p", "depth": 3, "run": 1}) == MAX_DEPTH - 3  # from before
    assert chain_budget({"depth": 1, "budget": 99}) == FULL_BUDGET  # never more than a chain holds
