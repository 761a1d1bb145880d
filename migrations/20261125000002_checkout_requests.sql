-- Why: the checkout pipeline keeps each accepted request's cart and the waiting-room visitor it came
-- from, so that a request whose stream entry was lost (a Redis restart) can be queued again from
-- PostgreSQL, and its result pushed to the right browser.
alter table order_requests
    add column visitor_id uuid,
    add column items jsonb not null default '[]'::jsonb,
    add column attempts integer not null default 0;

create index order_requests_queued_idx on order_requests (created_at) where status = 'queued';
