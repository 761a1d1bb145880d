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
        r#"select id, role as "role: Role", password_hash from users where email = $1"#,
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

pub async fn set_role(conn: &mut PgConnection, id: Uuid, role: Role) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"update users set role = $2, updated_at = now() where id = $1
           returning id, email, name, role as "role: Role", created_at"#,
        id,
        role.as_str()
    )
    .fetch_optional(conn)
    .await
}

/// Makes sure an admin with this email exists: creates it with `password_hash`, or promotes an existing
/// account (whose password is left alone). Returns the user and whether it was created.
pub async fn ensure_admin(
    conn: &mut PgConnection,
    email: &Email,
    name: &str,
    password_hash: &str,
) -> Result<(UserRow, bool), sqlx::Error> {
    let row = sqlx::query!(
        r#"insert into users (id, email, password_hash, name, role)
           values ($1, $2, $3, $4, 'admin')
           on conflict (email) do update set role = 'admin', updated_at = now()
           returning id, email, name, created_at, (xmax = 0) as "created!""#,
        Uuid::now_v7(),
        email.as_str(),
        password_hash,
        name,
    )
    .fetch_one(conn)
    .await?;
    Ok((
        UserRow {
            id: row.id,
            email: row.email,
            name: row.name,
            role: Role::Admin,
            created_at: row.created_at,
        },
        row.created,
    ))
}
