"""The JavaScript sandbox: JSON in, JSON out, with time and memory limits."""

from __future__ import annotations

import pytest

from adapters.sandbox import JavaScriptSandbox, SandboxError


def test_sandbox_runs_json_in_json_out_with_limits() -> None:
    sandbox = JavaScriptSandbox(timeout_ms=300, max_memory=32 * 1024 * 1024)
    assert sandbox.call("function migrate(d) { d.n += 1; return d; }", "migrate", {"n": 1, "s": "é"}) == {
        "n": 2, "s": "é"
    }  # fmt: skip
    assert sandbox.call("function f(d) { return typeof require + typeof fetch; }", "f", None) == "undefinedundefined"
    with pytest.raises(SandboxError, match="ran longer than 300 ms"):
        sandbox.call("function f(d) { while (true) {} }", "f", 1)
    with pytest.raises(SandboxError, match="memory"):
        sandbox.call("function f(d) { var a = []; while (true) a.push(new Array(1e5).fill(1)); }", "f", 1)
    with pytest.raises(SandboxError, match="returned nothing"):
        sandbox.call("function f(d) {}", "f", 1)
    assert sandbox.compile_check("while (true) {}", "migrate") == "ran longer than 300 ms"
    assert sandbox.compile_check("function migrate(d) { return d }", "migrate") is None
    assert sandbox.compile_check("function migrate(d) { return d }", "bad name") is not None
