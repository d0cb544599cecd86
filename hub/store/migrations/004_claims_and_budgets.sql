-- A delivery in progress: which worker has claimed the record at the partner, and until
-- when. The claim is taken and released by short statements, never held across the
-- partner's call; a claim whose worker died runs out at `claimed_until`.
ALTER TABLE deliveries
    ADD COLUMN claimed_by    text,
    ADD COLUMN claimed_until timestamptz;

-- A partner's list being refreshed (or created in) by one worker, until `claimed_until`;
-- the row goes when it is done. Never held across the partner's call as a lock.
CREATE TABLE list_claims (
    partner       text NOT NULL,
    client_id     text NOT NULL,
    club_id       text NOT NULL,
    kind          text NOT NULL,
    claimed_by    text NOT NULL,
    claimed_until timestamptz NOT NULL,
    PRIMARY KEY (partner, client_id, club_id, kind)
);

-- A partner's circuit, shared by every delivery process: after `threshold` transient
-- failures in a row (`failures`) it opens at `opened_at` for `cooldown_s`; then one
-- process takes the probe (half-open) until `probe_until`.
ALTER TABLE partner_health
    ADD COLUMN failures    integer NOT NULL DEFAULT 0,
    ADD COLUMN opened_at   timestamptz,
    ADD COLUMN cooldown_s  double precision,
    ADD COLUMN probe_until timestamptz;

-- A partner's rate: the earliest moment the next call may start, for every process.
CREATE TABLE partner_rates (
    partner   text PRIMARY KEY,
    next_call timestamptz NOT NULL
);

-- Calls made to a partner's site per UTC day (Mindbody's daily quota), by every process.
CREATE TABLE partner_quotas (
    partner text NOT NULL,
    site    text NOT NULL,
    day     date NOT NULL,
    used    integer NOT NULL,
    PRIMARY KEY (partner, site, day)
);
