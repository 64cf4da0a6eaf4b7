"""compose.yaml describes the production shape and names every setting the roles need."""

from __future__ import annotations

from pathlib import Path

import yaml

from adapters.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
REQUIRED = {"INKSTREAM_NATS_URL", "INKSTREAM_DATABASE_URL", "INKSTREAM_JWT_SECRET", "INKSTREAM_STREAM_REPLICAS",
            "INKSTREAM_LOG_FORMAT"}


def test_compose_parses_and_has_a_three_node_cluster_postgres_mongo_and_the_roles() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"nats-1", "nats-2", "nats-3", "postgres", "mongo", "api", "project", "project-mongo", "work"} <= set(services)
    for name in ("nats-1", "nats-2", "nats-3"):
        command = services[name]["command"]
        assert "-js" in command and "--cluster_name" in command and "--routes" in command
    assert services["api"]["command"] == ["inkstream", "api"]
    assert services["project"]["command"] == ["inkstream", "project", "--store", "postgres"]
    assert services["project-mongo"]["command"] == ["inkstream", "project", "--store", "mongo"]
    assert services["work"]["command"] == ["inkstream", "work"]
    assert "--replSet" in services["mongo"]["command"], "MongoDB offers transactions on a replica set only"
    roles = ("api", "project", "project-mongo", "work")
    assert len({services[role]["image"] for role in roles}) == 1, "the roles share one image"
    assert (ROOT / services["api"]["build"]["dockerfile"]).exists()


def test_every_role_gets_every_setting_it_needs_and_each_is_a_real_setting() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    known = {f"INKSTREAM_{name.upper()}" for name in Settings.model_fields}
    for role in ("api", "project", "project-mongo", "work"):
        env = compose["services"][role]["environment"]
        assert REQUIRED <= set(env), f"{role} misses {REQUIRED - set(env)}"
        unknown = {k for k in env if k.startswith("INKSTREAM_")} - known
        assert not unknown, f"{role} sets unknown settings {unknown}"
    assert compose["services"]["api"]["environment"]["INKSTREAM_STREAM_REPLICAS"] == "3"
