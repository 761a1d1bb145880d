//! The rule for free text sent by clients (names, venues, labels, descriptions), and the same rule as an
//! OpenAPI schema, so that the document states exactly what the server refuses.

use crate::error::ApiError;

/// Text of at most `max` characters without control characters (newlines and tabs allowed if
/// `multiline`), stored trimmed, with at least `min` characters left after trimming. [`text_schema`] states
/// the same rule in the OpenAPI document.
pub fn text(field: &str, value: &str, min: usize, max: usize, multiline: bool) -> Result<String, ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::validation(format!("{field} must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) {
        return Err(ApiError::validation(format!("{field} must not contain control characters")));
    }
    let v = value.trim();
    if v.chars().count() < min {
        return Err(ApiError::validation(if min == 1 {
            format!("{field} must not be empty")
        } else {
            format!("{field} must be at least {min} characters")
        }));
    }
    Ok(v.to_owned())
}

/// Control characters (Unicode `Cc`, what `char::is_control` refuses), as a regular-expression class body.
const CONTROL: &str = "\\u0000-\\u001F\\u007F-\\u009F";
/// The same without tab, line feed and carriage return.
const CONTROL_BUT_LINES: &str = "\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F";
/// Control characters and what `str::trim` removes (Unicode `White_Space`).
const CONTROL_OR_SPACE: &str =
    "\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";

/// The OpenAPI schema of a [`text`] field of `MIN` (0 or 1) to `MAX` characters; `NULLABLE` for the
/// fields of a PATCH body, where `null` leaves the value as it is. Used as `#[schema(schema_with = …)]`.
pub fn text_schema<const MIN: usize, const MAX: usize, const MULTILINE: bool, const NULLABLE: bool>()
-> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let allowed = if MULTILINE { CONTROL_BUT_LINES } else { CONTROL };
    let pattern = if MIN == 0 {
        format!("^[^{allowed}]*$")
    } else {
        format!("^[^{allowed}]*[^{CONTROL_OR_SPACE}][^{allowed}]*$")
    };
    let kind = if NULLABLE { SchemaType::from_iter([Type::String, Type::Null]) } else { Type::String.into() };
    ObjectBuilder::new()
        .schema_type(kind)
        .min_length(Some(MIN))
        .max_length(Some(MAX))
        .pattern(Some(pattern))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("name", "  Konser ", 1, 10, false).unwrap(), "Konser");
        assert!(text("name", "   ", 1, 10, false).is_err());
        assert!(text("name", "abcdefghijk", 1, 10, false).is_err());
        assert!(text("name", "a\nb", 1, 10, false).is_err());
        assert!(text("description", "a\nb", 0, 10, true).is_ok());
        assert!(
            text("name", "Konser\n", 1, 10, false).is_err(),
            "a control character is refused, trimmed or not"
        );
        assert!(text("name", "  Konser   ", 1, 10, false).is_err(), "the limit counts what was sent");
    }

    #[test]
    fn the_schema_states_the_text_rule() {
        let schema = serde_json::to_value(text_schema::<1, 10, false, true>()).unwrap();
        assert_eq!(schema["type"], serde_json::json!(["string", "null"]));
        assert_eq!((schema["minLength"].as_u64(), schema["maxLength"].as_u64()), (Some(1), Some(10)));
        let pattern = schema["pattern"].as_str().unwrap();
        assert!(pattern.starts_with("^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\u0000-\\u0020"), "{pattern}");
    }
}
