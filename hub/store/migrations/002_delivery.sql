-- Where each record stands at each partner: the partner's ID for it (so that the next
-- save is an update) and the newest version delivered (never deliver an older one).
CREATE TABLE deliveries (
    partner           text NOT NULL,
    uuid              uuid NOT NULL REFERENCES records (uuid),
    partner_id        text,
    delivered_version integer NOT NULL DEFAULT 0,
    delivered_at      timestamptz,
    PRIMARY KEY (partner, uuid)
);
-- A partner's ID for a record leads back to the record: two-way sync without loops.
CREATE INDEX deliveries_by_partner_id ON deliveries (partner, partner_id);

-- Every attempt to deliver, with the partner's answer.
CREATE TABLE delivery_attempts (
    id          bigserial PRIMARY KEY,
    partner     text NOT NULL,
    uuid        uuid NOT NULL,
    version     integer NOT NULL,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('delivered', 'skipped', 'transient', 'permanent')),
    status      integer,
    latency_ms  double precision,
    error       text,
    answer      text,
    notes       text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX delivery_attempts_by_record ON delivery_attempts (uuid, partner, at);
CREATE INDEX delivery_attempts_by_time ON delivery_attempts (partner, at);

-- The partner's staff and lead sources, per club, as last listed (refreshed after a TTL).
CREATE TABLE partner_lists (
    partner      text NOT NULL,
    client_id    text NOT NULL,
    club_id      text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('staff', 'leadsource')),
    entries      jsonb NOT NULL,   -- {"normalised key": "partner id"}
    refreshed_at timestamptz NOT NULL,
    PRIMARY KEY (partner, client_id, club_id, kind)
);

-- Owners and lead sources that found no match at a partner, for operators.
CREATE TABLE mapping_gaps (
    id         bigserial PRIMARY KEY,
    partner    text NOT NULL,
    client_id  text NOT NULL,
    club_id    text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('staff', 'leadsource')),
    key        text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    count      integer NOT NULL DEFAULT 1,
    UNIQUE (partner, client_id, club_id, kind, key)
);

-- What could not be delivered (or routed), kept for operators to inspect and replay.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    message_id  text NOT NULL UNIQUE,  -- one row per dead message, however often it arrives
    queue       text NOT NULL,
    partner     text,
    uuid        uuid,
    version     integer,
    reason      text NOT NULL,
    body        bytea NOT NULL,
    headers     jsonb NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT now(),
    deaths      integer NOT NULL DEFAULT 1
);
CREATE INDEX dead_letters_by_partner ON dead_letters (partner, dead_at);
