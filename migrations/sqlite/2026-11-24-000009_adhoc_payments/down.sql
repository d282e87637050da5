DROP TABLE adhoc_charges;
DROP TABLE payment_customers;
