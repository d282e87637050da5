-- Fleet invoicing from stored CDRs: each CDR knows the token of ours it was charged on
-- (`token_key`, the `tokens.key` its cdr_token resolved to on arrival; NULL when it is none of
-- ours), when the session ended (`ended_at`), whether it is a credit, and the instant that decides
-- its billing month (`billing_at`: the end for a charge, the receipt for a credit). A fleet's CDRs
-- are `cdrs JOIN tokens ON tokens.key = cdrs.token_key WHERE tokens.fleet_id = ?`; the indexes
-- serve the monthly run (by billing instant) and the fleet managers' session list (by end).
-- Rows stored before this migration are filled from their documents; their token is found by uid
-- (2.2.1) or, failing that, by contract id (2.1.1 CDRs carry the contract id as the uid).

ALTER TABLE cdrs ADD COLUMN token_key TEXT;
ALTER TABLE cdrs ADD COLUMN ended_at TIMESTAMP;
ALTER TABLE cdrs ADD COLUMN credit BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cdrs ADD COLUMN billing_at TIMESTAMP;

UPDATE cdrs SET
    ended_at = replace(replace(json_extract(document, '$.end_date_time'), 'T', ' '), 'Z', ''),
    credit = (coalesce(json_extract(document, '$.credit'), 0) = 1
        OR (total_cost_excl LIKE '-%' AND CAST(total_cost_excl AS REAL) <> 0)),
    token_key = coalesce(
        (SELECT t.key FROM tokens t WHERE t.uid_key = upper(cdrs.token_uid) ORDER BY t.key LIMIT 1),
        (SELECT t.key FROM tokens t
            WHERE t.contract_key = upper(replace(replace(replace(cdrs.token_uid, '-', ''), '*', ''), ' ', ''))
            ORDER BY t.key LIMIT 1)
    );
UPDATE cdrs SET billing_at = CASE WHEN credit THEN received_at ELSE ended_at END;

CREATE INDEX cdrs_token_billing ON cdrs (token_key, billing_at);
CREATE INDEX cdrs_token_ended ON cdrs (token_key, ended_at);
