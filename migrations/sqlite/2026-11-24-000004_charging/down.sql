DROP TABLE cdrs;
DROP TABLE cpo_sessions;
DROP TABLE charge_commands;
DROP TABLE charging_sessions;
