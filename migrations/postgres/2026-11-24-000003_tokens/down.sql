DROP TABLE token_push_state;
DROP TABLE token_authorizations;
DROP TABLE token_audit;
DROP TABLE tokens;
