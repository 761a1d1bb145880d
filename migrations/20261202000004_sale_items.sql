-- Why: the order intake checks a cart line against its product whichever family it belongs to (ticket
-- category or merchandise); one view names both families' sale rules, so the intake asks one question
-- instead of writing the same statement once per family. Read-only: stock changes stay on the tables.
create view sale_items as
    select id, true as ticket, event_id, max_per_order, sale_starts_at, sale_ends_at
    from ticket_categories
    union all
    select id, false as ticket, event_id, max_per_order, null::timestamptz as sale_starts_at,
           null::timestamptz as sale_ends_at
    from merchandise;
