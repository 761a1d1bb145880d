-- Why: a payment under review (its notification's amount differed from what was charged) kept its
-- order's hold until a person looked, and nobody had to. When the review began is now recorded, so an
-- operator resolves it (accept or refund) and the workers refund one left unresolved past its deadline.
alter table payments add column review_started_at timestamptz;
update payments set review_started_at = updated_at where status = 'needs_review';
