-- A delivery in progress: which worker has claimed the record at the partner, and until
-- when. The claim is taken and released by short statements, never held across the
-- partner's call; a claim whose worker died runs out at `claimed_until`.
ALTER TABLE deliveries
    ADD COLUMN claimed_by    text,
    ADD COLUMN claimed_until timestamptz;
