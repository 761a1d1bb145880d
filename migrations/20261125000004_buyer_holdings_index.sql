-- Why: the allocator reads, per batch, how many tickets each buyer already holds for the event (the
-- per-buyer limit). Without this index that lookup scans every live order as the table grows.
create index orders_buyer_event_live_idx on orders (user_id, event_id)
    where status in ('pending_payment', 'payment_review', 'paid');
