//! Accounts: who a user is (email, name, role), how they prove it (argon2id password, JWT access token),
//! and what each role may do.

pub mod password;
pub mod routes;
pub mod sessions;
pub mod store;
pub mod token;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An email address as stored: trimmed, lowercased, structurally valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("email must not be empty".into());
        }
        if s.len() > 254 || raw.chars().count() > 254 {
            return Err("email must be at most 254 characters".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("email must contain @".into());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err("email is not a valid address".into());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the rules. Only ever held briefly before hashing.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str, email: &Email) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(format!("password must be at least {} characters", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("password must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.trim().is_empty() {
            return Err("password must not be only spaces".into());
        }
        if raw.eq_ignore_ascii_case(email.as_str()) {
            return Err("password must not be your email address".into());
        }
        if raw.chars().all(|c| c == raw.chars().next().unwrap_or(' ')) {
            return Err("password must not repeat a single character".into());
        }
        Ok(NewPassword(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Buyer,
    Staff,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "buyer" => Some(Role::Buyer),
            "staff" => Some(Role::Staff),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The single table of who may do what.
    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Staff => matches!(permission, CheckIn | ViewOrders),
            Role::Buyer => false,
        }
    }
}

// Stored as text (checked by `users_role_check`); decoded strictly.
impl sqlx::Type<sqlx::Postgres> for Role {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Role {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let s = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Role::parse(s).ok_or_else(|| format!("unknown role `{s}`").into())
    }
}

/// Privileged actions. Buying needs no permission beyond being logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Create and change events, schedules, categories, merchandise.
    ManageCatalog,
    /// Change other users' roles.
    ManageUsers,
    /// Tune the waiting room while a sale runs.
    ControlWaitingRoom,
    /// Read the audit log.
    ReadAudit,
    /// See every buyer's orders.
    ViewOrders,
    /// Scan tickets at the gate.
    CheckIn,
    /// Inspect and replay payment notifications that could not be applied.
    ManagePayments,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(Email::parse("  Budi.Utomo@Kampus.AC.id ").unwrap().as_str(), "budi.utomo@kampus.ac.id");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in ["", "plain", "@kampus.id", "a@", "a@b", "a b@c.id", "a@-c.id", "a..b@c.id", "a@c..id"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}@c.id", "a".repeat(65));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn password_rules() {
        let email = Email::parse("a@b.id").unwrap();
        assert!(NewPassword::parse("short", &email).is_err());
        assert!(NewPassword::parse("        ", &email).is_err());
        assert!(NewPassword::parse("aaaaaaaaaa", &email).is_err());
        assert!(NewPassword::parse("A@B.ID", &email).is_err());
        assert!(NewPassword::parse(&"x".repeat(129), &email).is_err());
        assert!(NewPassword::parse("correct horse", &email).is_ok());
    }

    #[test]
    fn only_admins_manage_the_catalog() {
        assert!(Role::Admin.grants(Permission::ManageCatalog));
        assert!(!Role::Staff.grants(Permission::ManageCatalog));
        assert!(!Role::Buyer.grants(Permission::ManageCatalog));
        assert!(Role::Staff.grants(Permission::CheckIn));
        assert!(!Role::Buyer.grants(Permission::CheckIn));
    }
}
