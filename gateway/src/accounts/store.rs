//! SQL for users.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Email, Role};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub struct Credentials {
    pub id: Uuid,
    pub role: Role,
    pub token_version: i32,
    pub password_hash: String,
}

pub async fn insert(
    conn: &mut PgConnection,
    email: &Email,
    password_hash: &str,
    name: &str,
    role: Role,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"insert into users (id, email, password_hash, name, role)
           values ($1, $2, $3, $4, $5)
           returning id, email, name, role as "role: Role", created_at"#,
        Uuid::now_v7(),
        email.as_str(),
        password_hash,
        name,
        role.as_str(),
    )
    .fetch_one(conn)
    .await
}

pub async fn credentials(conn: &mut PgConnection, email: &Email) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as!(
        Credentials,
        r#"select id, role as "role: Role", token_version, password_hash from users where email = $1"#,
        email.as_str()
    )
    .fetch_optional(conn)
    .await
}

pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"select id, email, name, role as "role: Role", created_at from users where id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn list(conn: &mut PgConnection, limit: i64, offset: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"select id, email, name, role as "role: Role", created_at from users
           order by created_at, id limit $1 offset $2"#,
        limit,
        offset
    )
    .fetch_all(conn)
    .await
}

/// Changes a role; a change ends the account's sessions (their tokens name the old role).
pub async fn set_role(conn: &mut PgConnection, id: Uuid, role: Role) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"update users set role = $2, updated_at = now(),
                  token_version = token_version + (role is distinct from $2)::int
           where id = $1
           returning id, email, name, role as "role: Role", created_at"#,
        id,
        role.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// What [`ensure_admin`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// No account had the email: an admin was created with the given password.
    Created,
    /// The account was an admin already: left as it is (its password may have been changed since).
    Present,
    /// A buyer or staff account had the email (anyone may register any address): it became an admin
    /// *with the given password*, and its sessions ended, so whoever registered it cannot use it.
    TakenOver,
}

/// Makes sure an admin with this email exists. An existing admin keeps its password; any other account
/// with the email is never promoted as it is, since registration does not prove the address: it is
/// taken over (the configured password replaces its own, and its session version moves on).
pub async fn ensure_admin(
    conn: &mut PgConnection,
    email: &Email,
    name: &str,
    password_hash: &str,
) -> Result<(Uuid, Ensured), sqlx::Error> {
    let changed = sqlx::query!(
        r#"insert into users (id, email, password_hash, name, role)
           values ($1, $2, $3, $4, 'admin')
           on conflict (email) do update
               set role = 'admin', password_hash = excluded.password_hash,
                   token_version = users.token_version + 1, updated_at = now()
               where users.role <> 'admin'
           returning id, (xmax = 0) as "created!""#,
        Uuid::now_v7(),
        email.as_str(),
        password_hash,
        name,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = changed {
        return Ok((row.id, if row.created { Ensured::Created } else { Ensured::TakenOver }));
    }
    let id = sqlx::query_scalar!("select id from users where email = $1", email.as_str())
        .fetch_one(&mut *conn)
        .await?;
    Ok((id, Ensured::Present))
}
