-- Why: payments through Midtrans. A payment row is written before Midtrans is called (so one order never
-- gets two live transactions), follows the Midtrans status it last applied, and carries what a refund
-- needs. Orders gain a buyer-facing notice (e.g. "paid after the hold ended; refunded").

alter table payments
    add column midtrans_status  text,
    add column refunded_amount  bigint not null default 0,
    add column refund_key       text,
    add column refund_reason    text,
    add column paid_at          timestamptz,
    add column checked_at       timestamptz,
    add constraint payments_status_check check (status in (
        'pending', 'challenge', 'paid', 'failed', 'expired', 'cancelled',
        'refund_pending', 'refunded', 'partially_refunded', 'reversed')),
    add constraint payments_refunded_check check (refunded_amount between 0 and gross_amount);

-- A key whose attempt Midtrans refused may start a new attempt (Midtrans, too, replays only successes), so
-- the key alone is not unique; one live payment per order is.
alter table payments drop constraint payments_order_idempotency_key;
create index payments_order_key_idx on payments (order_id, idempotency_key);

-- A payment under fraud review is as live as a pending one.
drop index payments_one_live_per_order;
create unique index payments_one_live_per_order on payments (order_id) where status in ('pending', 'challenge');
create index payments_order_idx on payments (order_id, created_at desc);
create index payments_open_idx on payments (checked_at nulls first) where status in ('pending', 'challenge');
create index payments_refund_pending_idx on payments (updated_at) where status = 'refund_pending';

alter table orders add column notice text;

-- Check-in looks tickets up by code (unique index exists); staff lists are per order.
create index tickets_checked_in_by_idx on tickets (checked_in_by) where checked_in_by is not null;
