-- Books read model (projection "books"). The chapter order is the book row's
-- chapter_ids (a jsonb array of chapter ids); a chapter's 1-based "order" is
-- its place in that array. Chapters have rows of their own so that a pure
-- projection can change one chapter without reading the others.
CREATE TABLE IF NOT EXISTS books (
    id            text PRIMARY KEY,
    owner_id      text        NOT NULL,
    title         text        NOT NULL,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    chapter_ids   jsonb       NOT NULL DEFAULT '[]'::jsonb,
    chapter_count integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer     NOT NULL,
    position      bigint      NOT NULL
);
-- A user's books, paged by id (UUIDv7: creation order).
CREATE INDEX IF NOT EXISTS books_owner_id_idx ON books (owner_id, id);

CREATE TABLE IF NOT EXISTS book_chapters (
    id          text PRIMARY KEY,
    book_id     text        NOT NULL,
    title       text        NOT NULL,
    content     text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     integer     NOT NULL,   -- the book's version at the chapter's last change
    position    bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS book_chapters_book_id_idx ON book_chapters (book_id);
