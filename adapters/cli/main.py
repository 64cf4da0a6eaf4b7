"""The ``inkstream`` command: run the system, manage streams, replay, audit, export, migrate."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from adapters.cli.audit import KINDS
from adapters.runtime.event_loop import run as run_event_loop
from adapters.runtime.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inkstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start everything (embedded nats-server and PostgreSQL unless URLs are set)")
    api = sub.add_parser("api", help="serve the HTTP API only (needs NATS_URL, and DATABASE_URL or MONGO_URL "
                                    "for the READ_STORE)")
    api.add_argument("--workers", type=int, default=None,
                     help="API processes sharing the port (SO_REUSEPORT; default INKSTREAM_API_WORKERS, 1)")
    project = sub.add_parser("project", help="run the projectors only (needs NATS_URL and each store's URL)")
    project.add_argument("--store", action="append", choices=["postgres", "mongo"],
                         help="project into this store only (repeatable; default: PostgreSQL, and MongoDB "
                              "when MONGO_URL is set)")
    sub.add_parser("work", help="run jobs: the job runner and the trigger dispatcher, with /health and /metrics "
                                "on HTTP_PORT (needs NATS_URL and DATABASE_URL)")
    cluster = sub.add_parser(
        "dev-cluster",
        help="the production topology on this machine: 3 NATS nodes, PostgreSQL, and each role as processes",
        description="A three-node JetStream cluster (every stream at 3 replicas), PostgreSQL, two api processes "
        "on consecutive ports, two project processes (leader and standby) and two work processes where that role "
        "exists, all local processes under DATA_DIR/cluster; prints where each listens; Ctrl-C stops them all. "
        "The local stand-in for compose.yaml (`make cluster`).",
    )
    cluster.add_argument("--port", type=int, default=None, help="the first API's port (default INKSTREAM_HTTP_PORT)")
    cluster.add_argument("--apis", type=int, default=2, help="api processes (default 2)")
    cluster.add_argument("--projectors", type=int, default=2, help="project processes (default 2)")
    cluster.add_argument("--workers", type=int, default=2, help="work processes, where the role exists (default 2)")
    cluster.add_argument("--sync-always", action="store_true",
                         help="every node syncs each write to disk (default: JetStream's 2-minute sync; a quorum "
                         "of nodes holds each acknowledged write)")
    streams = sub.add_parser("streams", help="JetStream streams")
    streams_sub = streams.add_subparsers(dest="streams_command", required=True)
    streams_sub.add_parser("apply", help="apply streams.yaml idempotently")
    replay = sub.add_parser("replay", help="rebuild read models from the log, then swap them in")
    replay.add_argument("--projection", action="append", help="only this projection (repeatable)")
    replay.add_argument("--store", choices=["postgres", "mongo"],
                        help="the store to rebuild (default: INKSTREAM_READ_STORE)")
    audit = sub.add_parser("audit", help="print an aggregate's event history")
    audit.add_argument("kind", choices=KINDS)
    audit.add_argument("id")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    export = sub.add_parser("export", help="export a book")
    export.add_argument("book_id")
    export.add_argument("--format", default="markdown", choices=["text", "markdown", "html", "epub"])
    export.add_argument("-o", "--output", required=True)
    migrate = sub.add_parser(
        "migrate", help="migrate your stored blobs from one schema version to another (dry unless --apply)",
        description="Requests a migration run over HTTP as you (INKSTREAM_TOKEN, or --email with "
        "INKSTREAM_PASSWORD) and follows its progress; ends with the counts and the first errors.")
    migrate.add_argument("schema_id", help="the target version, name@version")
    migrate.add_argument("--from", dest="from_version", required=True, help="the source version of the same schema")
    migrate.add_argument("--bucket", help="only blobs in this bucket and its sub-buckets")
    migrate.add_argument("--apply", action="store_true", help="write (default: a dry run, which writes nothing)")
    migrate.add_argument("--url", help="the API (default INKSTREAM_URL, else http://127.0.0.1:INKSTREAM_HTTP_PORT)")
    migrate.add_argument("--email", help="log in as this user (password in INKSTREAM_PASSWORD)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    from adapters.telemetry.logging import configure_logging

    serving = args.command in ("up", "api", "project", "work", "dev-cluster")
    configure_logging(settings.log_format, settings.log_level, None if serving else sys.stderr)
    if args.command in ("up", "api", "project", "work"):
        from adapters.runtime.serve import serve

        if getattr(args, "workers", None) is not None:
            if args.workers < 1:
                print("--workers must be at least 1", file=sys.stderr)
                return 2
            settings = settings.model_copy(update={"api_workers": args.workers})

        return run_event_loop(serve(settings, role=args.command, stores=getattr(args, "store", None)))
    if args.command == "dev-cluster":
        from adapters.cli.dev_cluster import dev_cluster_command

        port = args.port if args.port is not None else settings.http_port
        return run_event_loop(dev_cluster_command(settings, port, args.apis, args.projectors, args.workers,
                                               args.sync_always))
    if args.command == "streams":
        from adapters.cli.streams import apply_command

        return run_event_loop(apply_command(settings))
    if args.command == "replay":
        from adapters.cli.replay import replay_command

        return run_event_loop(replay_command(settings, args.projection, args.store or settings.read_store))
    if args.command == "audit":
        from adapters.cli.audit import audit_command

        return run_event_loop(audit_command(settings, args.kind, args.id, as_json=args.json))
    if args.command == "migrate":
        from adapters.cli.migrate import migrate_command

        return run_event_loop(migrate_command(settings, args.schema_id, args.from_version, args.bucket, args.apply,
                                           url=args.url, email=args.email))
    if args.command == "export":
        from adapters.cli.export import export_command

        return run_event_loop(export_command(settings, args.book_id, args.format, args.output))
    return 2


if __name__ == "__main__":
    sys.exit(main())
