"""Unit-test fixtures: the write side on fakes, wired by the real composition root."""

from __future__ import annotations

import pytest

from adapters.sandbox.pool import SandboxPool
from tests.support.world import World


@pytest.fixture
def world(sandbox: SandboxPool) -> World:
    return World(sandbox)
