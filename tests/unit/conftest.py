"""Unit-test fixtures: the write side on fakes, wired by the real composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.sandbox.pool import SandboxPool
from adapters.validation.pool import ValidatorPool
from tests.support.world import World


@pytest.fixture(scope="session")
async def validators() -> AsyncIterator[ValidatorPool]:
    """The validation workers the server would use, shared by every world (each starts in ~50 ms)."""
    pool = ValidatorPool()
    yield pool
    await pool.aclose()


@pytest.fixture
def world(sandbox: SandboxPool, validators: ValidatorPool) -> World:
    return World(sandbox, validators)
