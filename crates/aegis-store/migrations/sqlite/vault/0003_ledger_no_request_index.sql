-- Nothing looks ledger entries up by request id (strict-mode pairs are matched while reading
-- in id order), and keeping that index cost about a third of every append.
DROP INDEX IF EXISTS ledger_by_request;
