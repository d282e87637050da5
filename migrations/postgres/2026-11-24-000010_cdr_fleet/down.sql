DROP INDEX cdrs_fleet_ended;
DROP INDEX cdrs_fleet_billing;
ALTER TABLE cdrs DROP COLUMN fleet_id;
