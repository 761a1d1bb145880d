//! Per-event waiting-room settings, kept in PostgreSQL (`waiting_room_settings`) and read by the admission
//! controller every tick, so an admin's change takes effect within one tick.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Settings {
    pub event_id: Uuid,
    /// Visitors admitted per second from the head of the queue.
    pub admission_rate_per_sec: i32,
    /// Most admitted buyers allowed to be active (admitted, token not yet used or expired) at once.
    pub max_active: i32,
    /// While paused nobody is admitted; the queue keeps its order.
    pub paused: bool,
    /// Lifetime of an admission token.
    pub token_ttl_secs: i32,
    /// A visitor unseen (no socket, no poll) for this long is skipped at admission.
    pub presence_grace_secs: i32,
    /// The event's sale opening (the pre-queue draw happens at the first tick after it).
    pub sale_opens_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A change to some of the settings; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[schema(minimum = 1, maximum = 100_000)]
    pub admission_rate_per_sec: Option<i32>,
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub max_active: Option<i32>,
    pub paused: Option<bool>,
    #[schema(minimum = 10, maximum = 86_400)]
    pub token_ttl_secs: Option<i32>,
    #[schema(minimum = 5, maximum = 3_600)]
    pub presence_grace_secs: Option<i32>,
    /// Moves the sale opening; `null` opens the sale at once.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub sale_opens_at: Option<Option<DateTime<Utc>>>,
}

/// A missing field is `None`, an explicit `null` is `Some(None)`.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error("event not found")]
    UnknownEvent,
    /// The new opening is not before the event's stored sale closing.
    #[error("sale_opens_at must be before the sale closes")]
    AfterSaleCloses,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl SettingsPatch {
    /// Checks each present value against the same bounds as the table's CHECK constraints.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bounds: [(&str, Option<i32>, i32, i32); 4] = [
            ("admission_rate_per_sec", self.admission_rate_per_sec, 1, 100_000),
            ("max_active", self.max_active, 1, 10_000_000),
            ("token_ttl_secs", self.token_ttl_secs, 10, 86_400),
            ("presence_grace_secs", self.presence_grace_secs, 5, 3_600),
        ];
        for (name, value, lo, hi) in bounds {
            if let Some(v) = value
                && !(lo..=hi).contains(&v)
            {
                return Err(SettingsError::Invalid(format!("{name} must be between {lo} and {hi}")));
            }
        }
        Ok(())
    }
}

/// Creates the default settings row for a new event.
pub async fn insert_defaults(conn: &mut PgConnection, event: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("insert into waiting_room_settings (event_id) values ($1) on conflict do nothing", event)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn load(conn: &mut PgConnection, event: Uuid) -> Result<Option<Settings>, sqlx::Error> {
    sqlx::query_as!(
        Settings,
        r#"select s.event_id, s.admission_rate_per_sec, s.max_active, s.paused, s.token_ttl_secs,
                  s.presence_grace_secs, e.sale_opens_at, s.updated_at
           from waiting_room_settings s join events e on e.id = s.event_id where s.event_id = $1"#,
        event
    )
    .fetch_optional(conn)
    .await
}

/// Applies a validated patch and returns the settings now in force.
pub async fn update(
    conn: &mut PgConnection,
    event: Uuid,
    patch: &SettingsPatch,
) -> Result<Settings, SettingsError> {
    patch.validate()?;
    insert_defaults_if_event_exists(conn, event).await?;
    let updated = sqlx::query!(
        r#"update waiting_room_settings set
               admission_rate_per_sec = coalesce($2, admission_rate_per_sec),
               max_active = coalesce($3, max_active),
               paused = coalesce($4, paused),
               token_ttl_secs = coalesce($5, token_ttl_secs),
               presence_grace_secs = coalesce($6, presence_grace_secs),
               updated_at = now()
           where event_id = $1"#,
        event,
        patch.admission_rate_per_sec,
        patch.max_active,
        patch.paused,
        patch.token_ttl_secs,
        patch.presence_grace_secs
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(SettingsError::UnknownEvent);
    }
    if let Some(opens) = patch.sale_opens_at {
        let moved = sqlx::query!(
            r#"update events set sale_opens_at = $2, updated_at = now()
               where id = $1 and ($2::timestamptz is null or sale_closes_at is null or sale_closes_at > $2)"#,
            event,
            opens
        )
        .execute(&mut *conn)
        .await?;
        if moved.rows_affected() == 0 {
            return Err(SettingsError::AfterSaleCloses);
        }
    }
    load(conn, event).await?.ok_or(SettingsError::UnknownEvent)
}

async fn insert_defaults_if_event_exists(conn: &mut PgConnection, event: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into waiting_room_settings (event_id)
           select id from events where id = $1
           on conflict do nothing"#,
        event
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_refused() {
        let bad = SettingsPatch { admission_rate_per_sec: Some(0), ..Default::default() };
        assert!(bad.validate().is_err());
        let bad = SettingsPatch { token_ttl_secs: Some(5), ..Default::default() };
        assert!(bad.validate().is_err());
        let ok =
            SettingsPatch { admission_rate_per_sec: Some(200), paused: Some(true), ..Default::default() };
        assert!(ok.validate().is_ok());
    }
}
