-- What the router sent to each partner, beside what the partner has: a row with
-- routed_version > delivered_version is a record waiting for that partner.
ALTER TABLE deliveries
    ADD COLUMN routed_version integer NOT NULL DEFAULT 0,
    ADD COLUMN routed_at      timestamptz;
CREATE INDEX deliveries_waiting ON deliveries (partner, routed_at)
    WHERE routed_version > delivered_version;

-- A dead letter's state: dead until an operator replays or purges it; dead again
-- if its replay dies.
ALTER TABLE dead_letters
    ADD COLUMN state      text NOT NULL DEFAULT 'dead'
                          CHECK (state IN ('dead', 'replayed', 'skipped', 'purged')),
    ADD COLUMN settled_at timestamptz,
    ADD COLUMN settled_by text;
CREATE INDEX dead_letters_by_record ON dead_letters (uuid);
CREATE INDEX dead_letters_dead ON dead_letters (partner, reason) WHERE state = 'dead';

-- Every operator action (replay, purge, redeliver, mappings refresh): who, when,
-- what (ids or filters) and the result.
CREATE TABLE operator_actions (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    operator text NOT NULL,
    action   text NOT NULL CHECK (action IN ('replay', 'purge', 'redeliver', 'refresh')),
    target   jsonb NOT NULL,
    result   jsonb NOT NULL DEFAULT '{}'
);

-- Each record an operator action sent again (or skipped), for the record's trace.
CREATE TABLE replays (
    id             bigserial PRIMARY KEY,
    action_id      bigint NOT NULL REFERENCES operator_actions (id),
    dead_letter_id bigint REFERENCES dead_letters (id),
    partner        text,
    uuid           uuid,
    version        integer,
    at             timestamptz NOT NULL DEFAULT now(),
    outcome        text NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    detail         text NOT NULL
);
CREATE INDEX replays_by_record ON replays (uuid);

-- Each partner's circuit as its delivery workers last saw it.
CREATE TABLE partner_health (
    partner    text PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('closed', 'open', 'half-open')),
    since      timestamptz NOT NULL DEFAULT now(),
    last_error text
);

-- Who sent each save (a partner's save of a record the hub created there is a
-- receipt of that record, from that partner).
ALTER TABLE receipts ADD COLUMN sender text;
