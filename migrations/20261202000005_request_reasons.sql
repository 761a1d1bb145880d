-- Why: a rejected request's reason is shown to buyers and read back by every process as a typed value
-- (pipeline/src/states.rs); like every status column, the column now allows exactly the values the code
-- knows, so a typo in a writer fails at the write instead of at a later read.
alter table order_requests
    add constraint order_requests_reason_check check (reason is null or reason in (
        'sold_out', 'per_order_limit', 'per_buyer_limit', 'not_on_sale', 'unknown_item', 'rate_limited',
        'internal_error'));
