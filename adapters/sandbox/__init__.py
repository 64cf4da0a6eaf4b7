"""User JavaScript in V8 (the ``Sandbox`` port): ``pool.SandboxPool`` runs it in
worker processes (``worker.py``), which run ``engine.py``.

Nothing is imported here: a worker process imports this package first, and it
should not pay for the pool's imports.
"""
