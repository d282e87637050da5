DROP INDEX cdrs_token_ended;
DROP INDEX cdrs_token_billing;
ALTER TABLE cdrs DROP COLUMN billing_at;
ALTER TABLE cdrs DROP COLUMN credit;
ALTER TABLE cdrs DROP COLUMN ended_at;
ALTER TABLE cdrs DROP COLUMN token_key;
