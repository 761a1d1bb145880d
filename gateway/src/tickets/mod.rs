//! E-tickets and check-in: the buyer's tickets with their QR codes, and the gate's scan.

pub mod checkin;
pub mod list;

use qrcode::{EcLevel, QrCode, render::svg};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list::tickets)).routes(routes!(checkin::checkin))
}

/// `text` as a standalone SVG QR code (medium error correction, quiet zone included), or `None` if it is
/// too long for a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(220, 220)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_svg() {
        let svg = super::qr_svg("ABCDEFGHJKLMNPQRSTUVWXYZ23").unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(super::qr_svg(&"x".repeat(5000)).is_none());
    }
}
