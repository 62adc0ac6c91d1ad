-- spindrive schema 1: the seed tables (users, files, permissions,
-- transformation_jobs, notifications) and what authentication needs
-- (sessions, login_failures).
--
-- Every time is `timestamp` (without time zone) holding UTC: Spin 4.0.2
-- fails every read of a `timestamptz` column. Statements are idempotent so
-- a re-run after a partial failure is safe; applied files are recorded in
-- schema_migrations by migrations/migrate.sh and never edited afterwards.

CREATE TABLE IF NOT EXISTS users (
    id          bigserial    PRIMARY KEY,
    username    varchar(32)  NOT NULL CHECK (username ~ '^[a-z0-9_.-]{3,32}$'),
    email       varchar(254) NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    -- argon2id PHC string; never leaves the database through the API.
    password    text         NOT NULL CHECK (password LIKE '$argon2id$%'),
    role        varchar(16)  NOT NULL DEFAULT 'viewer' CHECK (role IN ('admin', 'viewer')),
    disabled    boolean      NOT NULL DEFAULT false,
    created_at  timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at  timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
-- Case-insensitive uniqueness; login looks users up by these expressions.
CREATE UNIQUE INDEX IF NOT EXISTS users_username_key ON users (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email));

CREATE TABLE IF NOT EXISTS sessions (
    id          bigserial PRIMARY KEY,
    user_id     bigint    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  bytea     NOT NULL CHECK (length(token_hash) = 32),
    created_at  timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    expires_at  timestamp NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX IF NOT EXISTS sessions_user_id_idx ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_expires_at_idx ON sessions (expires_at);

-- Failed logins, counted per account (the login as typed, lowercased, so
-- unknown accounts count too) and per client address over a sliding hour.
CREATE TABLE IF NOT EXISTS login_failures (
    id         bigserial    PRIMARY KEY,
    account    varchar(254) NOT NULL,
    client     varchar(64)  NOT NULL,
    failed_at  timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS login_failures_account_idx ON login_failures (account, failed_at);
CREATE INDEX IF NOT EXISTS login_failures_client_idx ON login_failures (client, failed_at);

CREATE TABLE IF NOT EXISTS files (
    -- Random (v4) ids: unguessable, safe to show in URLs.
    id          uuid         PRIMARY KEY,
    user_id     bigint       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_name   varchar(255) NOT NULL CHECK (octet_length(file_name) BETWEEN 1 AND 255),
    -- Where the bytes are: `pg:<storage key>` for the Postgres content store.
    file_path   text         NOT NULL,
    file_size   bigint       NOT NULL CHECK (file_size >= 0),
    is_shared   boolean      NOT NULL DEFAULT false,
    created_at  timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at  timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS files_user_id_idx ON files (user_id, created_at, id);

CREATE TABLE IF NOT EXISTS permissions (
    id          bigserial   PRIMARY KEY,
    file_id     uuid        NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission  varchar(16) NOT NULL CHECK (permission IN ('read', 'write', 'delete')),
    is_owner    boolean     NOT NULL DEFAULT false,
    granted_by  bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at  timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    CONSTRAINT permissions_file_user_key UNIQUE (file_id, user_id)
);
CREATE INDEX IF NOT EXISTS permissions_user_id_idx ON permissions (user_id, file_id);

CREATE TABLE IF NOT EXISTS transformation_jobs (
    id                   uuid        PRIMARY KEY,
    file_id              uuid        NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id              bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    transformation_type  varchar(32) NOT NULL
        CHECK (transformation_type IN ('thumbnail', 'resize', 'convert', 'pdf_text', 'ocr')),
    params               jsonb       NOT NULL DEFAULT '{}',
    status               varchar(16) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'complete', 'failed')),
    result_file_id       uuid        REFERENCES files (id) ON DELETE SET NULL,
    error                text,
    created_at           timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at           timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS transformation_jobs_user_idx ON transformation_jobs (user_id, created_at, id);
CREATE INDEX IF NOT EXISTS transformation_jobs_file_idx ON transformation_jobs (file_id, created_at);
CREATE INDEX IF NOT EXISTS transformation_jobs_status_idx ON transformation_jobs (status, updated_at);

CREATE TABLE IF NOT EXISTS notifications (
    id          bigserial   PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message     text        NOT NULL,
    kind        varchar(32) NOT NULL DEFAULT 'info',
    data        jsonb       NOT NULL DEFAULT '{}',
    -- Webhook delivery: pending until sent or given up.
    status      varchar(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    read_at     timestamp,
    created_at  timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at  timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX IF NOT EXISTS notifications_user_idx ON notifications (user_id, created_at, id);
CREATE INDEX IF NOT EXISTS notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;
CREATE INDEX IF NOT EXISTS notifications_status_idx ON notifications (status, updated_at);
