-- Why: an access token names a role, and a demoted admin or staff member kept their rights until the
-- token expired (up to 8 hours). Each account now has a session version that every token carries; a role
-- change or a password reset moves it on, and a token naming an older version is refused.
alter table users add column token_version integer not null default 0;
