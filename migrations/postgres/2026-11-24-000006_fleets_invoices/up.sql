-- Fleets, their members, and the invoices and credit notes we issue them.
--
-- An invoice row keeps the whole rendered document as JSON (`document`), so its PDF, CSV and XML are
-- regenerated identically whatever the configuration says later; the other columns are what lists
-- and searches need. Numbers come from `document_counters`, one row per series and year, incremented
-- inside the transaction that issues: a rolled-back run gives its number back, so numbers have no
-- gaps, and the row lock makes concurrent runs take turns. A CDR is billed on one document only
-- (`invoice_lines_cdr`), one invoice per fleet and month (`invoices_fleet_period`), so a rerun or a
-- concurrent run of the same month cannot bill twice. Issued documents never change (triggers).

CREATE TABLE fleets (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    street TEXT NOT NULL,
    additional_address TEXT,
    postal_code TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    vat_id TEXT,
    time_zone TEXT NOT NULL,
    currency TEXT NOT NULL,
    billing_email TEXT NOT NULL,
    buyer_reference TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE fleet_members (
    fleet_id TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('DRIVER', 'FLEET_MANAGER')),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (fleet_id, user_id)
);
CREATE INDEX fleet_members_user ON fleet_members (user_id);

CREATE TABLE document_counters (
    series TEXT NOT NULL,
    year INTEGER NOT NULL,
    last_number BIGINT NOT NULL,
    PRIMARY KEY (series, year)
);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY NOT NULL,
    fleet_id TEXT NOT NULL REFERENCES fleets (id),
    kind TEXT NOT NULL CHECK (kind IN ('INVOICE', 'CREDIT_NOTE')),
    status TEXT NOT NULL CHECK (status IN ('DRAFT', 'ISSUED', 'PAID', 'VOID')),
    series TEXT NOT NULL,
    year INTEGER,
    number BIGINT,
    display_number TEXT,
    period TEXT NOT NULL,
    issue_date DATE NOT NULL,
    due_date DATE,
    currency TEXT NOT NULL,
    net_total TEXT NOT NULL,
    vat_total TEXT NOT NULL,
    gross_total TEXT NOT NULL,
    preceding_invoice_id TEXT REFERENCES invoices (id),
    document TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    issued_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((status = 'DRAFT') = (number IS NULL))
);
CREATE UNIQUE INDEX invoices_number ON invoices (series, year, number);
CREATE UNIQUE INDEX invoices_fleet_period ON invoices (fleet_id, period) WHERE kind = 'INVOICE';
CREATE INDEX invoices_fleet ON invoices (fleet_id, created_at);

CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    cdr_id TEXT NOT NULL,
    credit BOOLEAN NOT NULL,
    ended_at TIMESTAMP NOT NULL,
    net TEXT NOT NULL,
    vat_rate TEXT NOT NULL,
    vat TEXT NOT NULL,
    PRIMARY KEY (invoice_id, position)
);
CREATE UNIQUE INDEX invoice_lines_cdr ON invoice_lines (cdr_id);

CREATE FUNCTION invoices_keep_issued() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'DRAFT' THEN
            RAISE EXCEPTION 'an issued invoice is never deleted';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'DRAFT' AND (
        NEW.document IS DISTINCT FROM OLD.document OR NEW.net_total IS DISTINCT FROM OLD.net_total
        OR NEW.vat_total IS DISTINCT FROM OLD.vat_total OR NEW.gross_total IS DISTINCT FROM OLD.gross_total
        OR NEW.number IS DISTINCT FROM OLD.number OR NEW.display_number IS DISTINCT FROM OLD.display_number
        OR NEW.fleet_id IS DISTINCT FROM OLD.fleet_id OR NEW.issue_date IS DISTINCT FROM OLD.issue_date
        OR NEW.status = 'DRAFT'
    ) THEN
        RAISE EXCEPTION 'an issued invoice never changes';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_keep_issued BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_keep_issued();

CREATE FUNCTION invoice_lines_keep_issued() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoices WHERE id = OLD.invoice_id AND status <> 'DRAFT') THEN
        RAISE EXCEPTION 'the lines of an issued invoice never change';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoice_lines_keep_issued BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_keep_issued();
