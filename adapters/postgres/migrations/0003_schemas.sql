-- Schema versions (projection "schemas"). `version` is the semantic version;
-- (major, minor, patch, pre COLLATE "C") orders them by semver precedence.
CREATE TABLE IF NOT EXISTS schemas (
    id                text        PRIMARY KEY,          -- name@version
    name              text        NOT NULL,
    version           text        NOT NULL,
    owner_id          text        NOT NULL,
    schema            jsonb       NOT NULL,
    migration         jsonb,
    major             bigint      NOT NULL,
    minor             bigint      NOT NULL,
    patch             bigint      NOT NULL,
    pre               text        COLLATE "C" NOT NULL, -- SemVer.pre_sort_key(): "~" for a release
    created_at        timestamptz NOT NULL,
    aggregate_version integer     NOT NULL,
    position          bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS schemas_name_precedence
    ON schemas (name, major DESC, minor DESC, patch DESC, pre DESC);
