-- A CDR belongs to the fleet its card belonged to when the CDR arrived (`fleet_id`), not to the
-- fleet the card belongs to when an invoice run reads it: a card moved to another fleet leaves
-- its earlier sessions with the fleet that had it. A CDR that arrived while its card had no fleet
-- (or before its token existed) joins the fleet the card is first given. Rows stored before
-- this migration take the fleet their token has now.

ALTER TABLE cdrs ADD COLUMN fleet_id TEXT;

UPDATE cdrs SET fleet_id = (SELECT t.fleet_id FROM tokens t WHERE t.key = cdrs.token_key)
WHERE token_key IS NOT NULL;

CREATE INDEX cdrs_fleet_billing ON cdrs (fleet_id, billing_at);
CREATE INDEX cdrs_fleet_ended ON cdrs (fleet_id, ended_at);
