"""Keep secrets out of logs and error messages: URLs lose their passwords.

The embedded servers hand out URLs with credentials in them (``nats://user:pw@``,
``postgresql://user:pw@``); anything that logs or reports such a URL passes it
through here first.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def without_password(url: str) -> str:
    """``url`` with any password replaced by ``***``; several comma-separated URLs (a NATS
    cluster's seeds) each lose theirs."""
    return ",".join(_one(part) for part in url.split(","))


def _one(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    if ":" in userinfo:
        masked = f"{user}:***"
    else:  # for NATS a lone userinfo is a token, the secret itself; for PostgreSQL a user name
        masked = user if parts.scheme.startswith("postgres") else "***"
    return urlunsplit(parts._replace(netloc=f"{masked}@{hostport}"))
