"""Live updates: one router per API process from the log's tail to its WebSocket and SSE connections."""
