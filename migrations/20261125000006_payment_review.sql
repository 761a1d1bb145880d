-- Why: a reversal (settlement turned into deny) must be matched to the transaction that actually paid, not
-- to any failed attempt of the same Snap order; and a notification whose amount does not match what was
-- charged puts the payment under review (its order keeps its hold) instead of being silently recorded.
alter table payments
    add column paid_transaction_id text,
    drop constraint payments_status_check,
    add constraint payments_status_check check (status in (
        'pending', 'challenge', 'paid', 'failed', 'expired', 'cancelled',
        'refund_pending', 'refunded', 'partially_refunded', 'reversed', 'needs_review'));
