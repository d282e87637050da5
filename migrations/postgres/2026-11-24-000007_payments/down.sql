DROP TABLE payment_actions;
DROP TABLE payment_webhook_events;
DROP TABLE payments;
