DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE document_counters;
DROP TABLE fleet_members;
DROP TABLE fleets;
