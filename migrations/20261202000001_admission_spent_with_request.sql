-- Why: an admission is spent by the very insert that records the checkout request it paid for. Before,
-- the request row was committed first and the admission marked spent in Redis a round trip later, so a
-- request cut off in between (a dropped connection, a timeout) left a queued request with its admission
-- unspent, and the same admission bought again. One unique constraint makes "recorded" and "spent" one
-- fact, in PostgreSQL, which also survives a Redis restart. A request refused before it was queued (the
-- per-buyer rate limit) gives its admission back by clearing the column.
alter table order_requests add column admission_jti text;
alter table order_requests
    add constraint order_requests_admission_once unique (event_id, admission_jti);
