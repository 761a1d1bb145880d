-- Why: while one request is creating a payment at Midtrans, a concurrent one is told to retry shortly;
-- once Midtrans has answered (or failed to), a retry may call again at once. The window is explicit
-- instead of being inferred from created_at.
alter table payments add column creating_until timestamptz;
