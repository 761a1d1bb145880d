-- Why: the whole schema of the shop in one first step, so that later features (waiting room, checkout
-- pipeline, payments, check-in) extend it instead of rewriting it. PostgreSQL is the source of truth for
-- stock: the CHECK constraints below make an oversell impossible even if every layer above has a bug.

-- Accounts. Emails are stored normalised (trimmed, lowercased) by the application; the unique
-- constraint name is matched in code to turn a duplicate into a 409.
create table users (
    id            uuid primary key,
    email         text not null,
    password_hash text not null,
    name          text not null,
    role          text not null default 'buyer',
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint users_email_key unique (email),
    constraint users_role_check check (role in ('buyer', 'staff', 'admin')),
    constraint users_email_lowercase check (email = lower(email))
);

-- Events are drafts until an admin publishes them; only published events are public.
create table events (
    id                   uuid primary key,
    name                 text not null,
    description          text not null default '',
    venue                text not null,
    starts_at            timestamptz not null,
    ends_at              timestamptz,
    sale_opens_at        timestamptz,
    sale_closes_at       timestamptz,
    status               text not null default 'draft',
    -- A buyer may hold at most this many ticket units for the event across all orders.
    max_tickets_per_buyer integer not null default 6,
    published_at         timestamptz,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    constraint events_status_check check (status in ('draft', 'published', 'cancelled')),
    constraint events_ends_after_start check (ends_at is null or ends_at > starts_at),
    constraint events_sale_window_ordered check (
        sale_opens_at is null or sale_closes_at is null or sale_closes_at > sale_opens_at),
    constraint events_max_tickets_per_buyer_check check (max_tickets_per_buyer between 1 and 100)
);
create index events_public_idx on events (starts_at) where status = 'published';

create table schedules (
    id         uuid primary key,
    event_id   uuid not null references events (id) on delete cascade,
    label      text not null default '',
    starts_at  timestamptz not null,
    ends_at    timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint schedules_ends_after_start check (ends_at > starts_at)
);
create index schedules_event_idx on schedules (event_id, starts_at);

-- sold: paid units; held: units in unpaid orders that have not expired yet.
create table ticket_categories (
    id             uuid primary key,
    event_id       uuid not null references events (id) on delete cascade,
    schedule_id    uuid references schedules (id) on delete set null,
    name           text not null,
    description    text not null default '',
    price          bigint not null,
    quota          integer not null,
    sold           integer not null default 0,
    held           integer not null default 0,
    max_per_order  integer not null default 4,
    sale_starts_at timestamptz,
    sale_ends_at   timestamptz,
    sort_order     integer not null default 0,
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    constraint ticket_categories_price_check check (price >= 0),
    constraint ticket_categories_quota_check check (quota >= 0),
    constraint ticket_categories_counts_check check (sold >= 0 and held >= 0),
    constraint ticket_categories_no_oversell check (sold + held <= quota),
    constraint ticket_categories_max_per_order_check check (max_per_order between 1 and 100),
    constraint ticket_categories_sale_window_ordered check (
        sale_starts_at is null or sale_ends_at is null or sale_ends_at > sale_starts_at)
);
create index ticket_categories_event_idx on ticket_categories (event_id, sort_order);

-- Merchandise may belong to an event or be sold on its own (event_id null).
create table merchandise (
    id            uuid primary key,
    event_id      uuid references events (id) on delete cascade,
    name          text not null,
    description   text not null default '',
    price         bigint not null,
    stock         integer not null,
    sold          integer not null default 0,
    held          integer not null default 0,
    max_per_order integer not null default 5,
    sort_order    integer not null default 0,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint merchandise_price_check check (price >= 0),
    constraint merchandise_stock_check check (stock >= 0),
    constraint merchandise_counts_check check (sold >= 0 and held >= 0),
    constraint merchandise_no_oversell check (sold + held <= stock),
    constraint merchandise_max_per_order_check check (max_per_order between 1 and 100)
);
create index merchandise_event_idx on merchandise (event_id, sort_order);

-- Every accepted checkout request, keyed by (buyer, Idempotency-Key): the record that makes a retry or a
-- stream redelivery give the same answer. body_hash detects the same key reused for another cart (422).
create table order_requests (
    id              uuid primary key,
    user_id         uuid not null references users (id),
    event_id        uuid not null references events (id),
    idempotency_key text not null,
    body_hash       text not null,
    status          text not null default 'queued',
    order_id        uuid,
    reason          text,
    created_at      timestamptz not null default now(),
    decided_at      timestamptz,
    constraint order_requests_user_key unique (user_id, idempotency_key),
    constraint order_requests_status_check check (status in ('queued', 'confirmed', 'rejected')),
    constraint order_requests_key_length check (length(idempotency_key) between 1 and 255)
);

create table orders (
    id              uuid primary key,
    user_id         uuid not null references users (id),
    event_id        uuid not null references events (id),
    request_id      uuid references order_requests (id),
    idempotency_key text not null,
    status          text not null default 'pending_payment',
    total           bigint not null,
    currency        text not null default 'IDR',
    -- An unpaid order holds its stock until expires_at; the sweeper then releases it.
    expires_at      timestamptz not null,
    paid_at         timestamptz,
    cancelled_at    timestamptz,
    refunded_amount bigint not null default 0,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint orders_user_idempotency_key unique (user_id, idempotency_key),
    constraint orders_request_key unique (request_id),
    constraint orders_status_check check (status in (
        'pending_payment', 'payment_review', 'paid', 'expired', 'cancelled', 'refunded', 'partially_refunded')),
    constraint orders_total_check check (total >= 0),
    constraint orders_refunded_check check (refunded_amount between 0 and total)
);
create index orders_user_idx on orders (user_id, created_at desc);
create index orders_pending_expiry_idx on orders (expires_at) where status = 'pending_payment';

create table order_items (
    id                 uuid primary key,
    order_id           uuid not null references orders (id) on delete cascade,
    ticket_category_id uuid references ticket_categories (id),
    merchandise_id     uuid references merchandise (id),
    name               text not null,
    quantity           integer not null,
    unit_price         bigint not null,
    constraint order_items_exactly_one_product check (
        (ticket_category_id is null) <> (merchandise_id is null)),
    constraint order_items_quantity_check check (quantity > 0),
    constraint order_items_unit_price_check check (unit_price >= 0)
);
create index order_items_order_idx on order_items (order_id);

-- One row per admitted person (ticket) or per merchandise line (pickup code). (order_item_id, seq) is
-- unique so that generating tickets twice for the same paid order is impossible.
create table tickets (
    id              uuid primary key,
    order_id        uuid not null references orders (id),
    order_item_id   uuid not null references order_items (id),
    seq             integer not null,
    kind            text not null,
    code            text not null,
    status          text not null default 'valid',
    checked_in_at   timestamptz,
    checked_in_by   uuid references users (id),
    created_at      timestamptz not null default now(),
    constraint tickets_code_key unique (code),
    constraint tickets_item_seq_key unique (order_item_id, seq),
    constraint tickets_kind_check check (kind in ('ticket', 'merchandise_pickup')),
    constraint tickets_status_check check (status in ('valid', 'checked_in', 'void')),
    constraint tickets_checked_in_consistent check ((status = 'checked_in') = (checked_in_at is not null))
);
create index tickets_order_idx on tickets (order_id);

-- A Midtrans transaction started for an order. midtrans_order_id is what Midtrans sends back.
create table payments (
    id                uuid primary key,
    order_id          uuid not null references orders (id),
    midtrans_order_id text not null,
    method            text not null,
    status            text not null default 'pending',
    gross_amount      bigint not null,
    idempotency_key   text not null,
    snap_token        text,
    redirect_url      text,
    qr_string         text,
    transaction_id    text,
    expires_at        timestamptz,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    constraint payments_midtrans_order_id_key unique (midtrans_order_id),
    constraint payments_order_idempotency_key unique (order_id, idempotency_key),
    constraint payments_method_check check (method in ('snap', 'qris')),
    constraint payments_amount_check check (gross_amount >= 0),
    constraint payments_midtrans_order_id_length check (length(midtrans_order_id) <= 50)
);
-- At most one live Midtrans transaction per order.
create unique index payments_one_live_per_order on payments (order_id) where status = 'pending';

-- Every notification received, deduplicated; the processor applies each one exactly once.
create table payment_events (
    id                 bigserial primary key,
    payment_id         uuid references payments (id),
    midtrans_order_id  text not null,
    transaction_id     text,
    transaction_status text not null,
    status_code        text not null,
    fraud_status       text,
    gross_amount       text not null,
    dedupe_key         text not null,
    raw                jsonb not null,
    outcome            text,
    received_at        timestamptz not null default now(),
    applied_at         timestamptz,
    constraint payment_events_dedupe_key unique (dedupe_key)
);
create index payment_events_order_idx on payment_events (midtrans_order_id, received_at);

-- The waiting room's knobs per event; the admission controller reads them every tick.
create table waiting_room_settings (
    event_id               uuid primary key references events (id) on delete cascade,
    admission_rate_per_sec integer not null default 50,
    max_active             integer not null default 2000,
    paused                 boolean not null default false,
    token_ttl_secs         integer not null default 600,
    presence_grace_secs    integer not null default 60,
    updated_at             timestamptz not null default now(),
    constraint waiting_room_rate_check check (admission_rate_per_sec between 1 and 100000),
    constraint waiting_room_max_active_check check (max_active between 1 and 10000000),
    constraint waiting_room_token_ttl_check check (token_ttl_secs between 10 and 86400),
    constraint waiting_room_grace_check check (presence_grace_secs between 5 and 3600)
);

-- Every change an admin or staff member makes, with who and what.
create table audit_log (
    id          bigserial primary key,
    actor_id    uuid references users (id),
    action      text not null,
    entity      text not null,
    entity_id   uuid,
    details     jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now()
);
create index audit_log_entity_idx on audit_log (entity, entity_id, created_at desc);
create index audit_log_created_idx on audit_log (created_at desc);
