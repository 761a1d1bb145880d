//! `POST /api/auth/register`, `POST /api/auth/login`, `GET /api/me`.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Email, NewPassword, Role, store};
use crate::{
    error::{ApiError, ErrorBody, on_constraint},
    http::extract::{ApiJson, AuthUser, ClientIp},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register)).routes(routes!(login)).routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// An address as `Email::parse` takes it (surrounding spaces are trimmed, letters lowercased).
    #[schema(
        max_length = 254,
        pattern = "^[\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*(?=[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$"
    )]
    pub email: String,
    /// 8–128 characters, not only spaces, not one character repeated, and not the email address.
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = "^(?!([\\s\\S])\\1*$)[\\s\\S]*[^\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub password: String,
    #[schema(schema_with = crate::http::text::text_schema::<1, 100, false, false>)]
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<store::UserRow> for User {
    fn from(r: store::UserRow) -> Self {
        User { id: r.id, email: r.email, name: r.name, role: r.role, created_at: r.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    pub user: User,
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Create a buyer account and sign in.
#[utoipa::path(post, path = "/api/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = SessionResponse),
        (status = 409, description = "email already registered", body = ErrorBody),
        (status = 422, description = "invalid email, password or name", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<SessionResponse>), ApiError> {
    state.limits.check(state.rules.register_ip, &ip.group()).await?;
    let email = Email::parse(&req.email).map_err(ApiError::validation)?;
    let password = NewPassword::parse(&req.password, &email).map_err(ApiError::validation)?;
    let name = crate::http::text::text("name", &req.name, 1, 100, false)?;

    let hash = state.passwords.hash(password.expose().to_owned()).await?;
    let mut conn = state.db.acquire().await?;
    let user = store::insert(&mut conn, &email, &hash, &name, Role::Buyer).await.map_err(|e| {
        on_constraint(e, |c| {
            (c == "users_email_key")
                .then(|| ApiError::conflict("email_taken", "an account with this email already exists"))
        })
    })?;
    tracing::info!(user_id = %user.id, "buyer registered");
    let access_token = state.tokens.issue_access(user.id, user.role, 0)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionResponse {
            user: user.into(),
            access_token,
            token_type: "Bearer",
            expires_in: state.tokens.access_ttl_secs(),
        }),
    ))
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, body = SessionResponse),
        (status = 401, description = "wrong email or password", body = ErrorBody),
        (status = 429, description = "too many attempts", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<axum::Json<SessionResponse>, ApiError> {
    let address = ip.group();
    state.limits.check(state.rules.login_ip, &address).await?;
    // A malformed email cannot belong to an account; answer like a wrong password.
    let email = Email::parse(&req.email).map_err(|_| ApiError::Unauthorized("invalid email or password"))?;
    // The tight limit is per (account, address): wrong guesses from one place slow that place only, so
    // nobody can lock the owner out from their own address. The per-account limit, far higher, keeps
    // guessing slow when it is spread over many addresses.
    state.limits.check(state.rules.login_account_address, &format!("{address}|{}", email.as_str())).await?;
    state.limits.check(state.rules.login_email, email.as_str()).await?;
    if req.password.len() > 4 * NewPassword::MAX_CHARS {
        return Err(ApiError::Unauthorized("invalid email or password"));
    }

    let mut conn = state.db.acquire().await?;
    let creds = store::credentials(&mut conn, &email).await?;
    drop(conn); // do not hold a pooled connection during the slow hash check
    let (id, stored) = match creds {
        Some(c) => (Some((c.id, c.role, c.token_version)), Some(c.password_hash)),
        None => (None, None),
    };
    let ok = state.passwords.verify(req.password, stored).await?;
    let Some((user_id, role, version)) = id.filter(|_| ok) else {
        metrics::counter!("login_failures_total").increment(1);
        return Err(ApiError::Unauthorized("invalid email or password"));
    };
    let mut conn = state.db.acquire().await?;
    let user =
        store::by_id(&mut conn, user_id).await?.ok_or(ApiError::Unauthorized("invalid email or password"))?;
    let access_token = state.tokens.issue_access(user_id, role, version)?;
    Ok(axum::Json(SessionResponse {
        user: user.into(),
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs(),
    }))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/me", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, body = User)))]
async fn me(State(state): State<AppState>, user: AuthUser) -> Result<axum::Json<User>, ApiError> {
    let mut conn = state.db.acquire().await?;
    let row =
        store::by_id(&mut conn, user.id).await?.ok_or(ApiError::Unauthorized("account no longer exists"))?;
    Ok(axum::Json(row.into()))
}
