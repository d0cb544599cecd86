-- Records as the providers saved them, one row per (provider, kind, club, recordID).
CREATE TABLE records (
    uuid           uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('user', 'staff', 'leadsource')),
    provider       text NOT NULL,
    client         text NOT NULL,
    club           text NOT NULL,
    client_id      text NOT NULL,
    club_id        text NOT NULL,
    record_id      text NOT NULL,
    body           jsonb NOT NULL,
    content_sha256 bytea NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    -- ingress time of the newest message applied; older redeliveries are ignored
    received_at    timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL,
    modified_at    timestamptz NOT NULL DEFAULT now(),
    modified_by    text NOT NULL,
    UNIQUE (provider, kind, client_id, club_id, record_id)
);
CREATE INDEX records_by_record_id ON records (provider, kind, record_id);

-- Every inbox message the router applied: redeliveries are recognised by id,
-- and a record's history (received when, which version it made) stays traceable.
CREATE TABLE receipts (
    message_id  uuid PRIMARY KEY,
    uuid        uuid NOT NULL REFERENCES records (uuid),
    received_at timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('created', 'changed', 'unchanged', 'stale'))
);
CREATE INDEX receipts_by_record ON receipts (uuid, received_at);
