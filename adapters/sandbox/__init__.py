"""User JavaScript in V8 (the ``Sandbox`` port)."""

from adapters.sandbox.javascript import JavaScriptSandbox, SandboxError

__all__ = ["JavaScriptSandbox", "SandboxError"]
