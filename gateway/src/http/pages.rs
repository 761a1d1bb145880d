//! The storefront: its pages and the static files beside them, under one security policy.
//!
//! Each page is written once, as a fragment in `{WEB_DIR}/pages/{name}.html`: its `<title>` line, then its
//! `<main id="main">`. The gateway wraps every fragment in the one document shell all pages share (doctype,
//! language, character set, viewport, the stylesheet and the page's own module `js/pages/{name}.js`) when
//! the router is built, and serves it at `/{name}.html` (`index` also at `/`). Everything else under
//! `WEB_DIR` (scripts, styles, images, the widget) is served as it is on disk. A page edited on disk shows
//! after a restart.

use std::path::Path;

use axum::{
    Router,
    body::Bytes,
    handler::HandlerWithoutStateExt,
    http::{HeaderValue, header},
    response::{Html, IntoResponse},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

use crate::error::ApiError;

/// The storefront's pages load scripts, styles and images from this origin only and call only its API;
/// they may not be framed elsewhere (the embeddable widget is a script, not a frame).
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// The storefront under `web_dir`: its assembled pages, then the files on disk; 404 JSON for the rest.
pub fn storefront(web_dir: &str) -> std::io::Result<Router> {
    let mut router = Router::new();
    for (name, page) in assemble_all(Path::new(web_dir))? {
        let page = Bytes::from(page);
        let serve = get(move || async move { Html(page) });
        if name == "index" {
            router = router.route("/", serve.clone());
        }
        router = router.route(&format!("/{name}.html"), serve);
    }
    let files = ServeDir::new(web_dir).not_found_service(not_found.into_service());
    Ok(router.fallback_service(files).layer(
        ServiceBuilder::new()
            .layer(header_if_absent(header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
            .layer(header_if_absent(header::REFERRER_POLICY, "same-origin"))
            .layer(header_if_absent(header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
    ))
}

fn header_if_absent(name: header::HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

async fn not_found() -> impl IntoResponse {
    ApiError::NotFound("route")
}

/// Every fragment in `{web_dir}/pages`, by name, wrapped in the shell. No `pages` folder: no pages.
fn assemble_all(web_dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let dir = web_dir.join("pages");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".html"))
        else {
            continue;
        };
        let fragment = std::fs::read_to_string(&path)?;
        let page = assemble(name, &fragment).map_err(|why| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {why}", path.display()))
        })?;
        pages.push((name.to_owned(), page));
    }
    Ok(pages)
}

/// The page `name` from its fragment: the `<title>` line first, then the body.
fn assemble(name: &str, fragment: &str) -> Result<String, &'static str> {
    let (title, body) = fragment.split_once('\n').ok_or("a page needs a <title> line and a body")?;
    let title = title.trim();
    if !(title.starts_with("<title>") && title.ends_with("</title>")) {
        return Err("the first line must be the page's <title>…</title>");
    }
    if !body.contains(r#"<main id="main""#) {
        return Err(r#"the body must hold <main id="main"> (the skip link and the page frame need it)"#);
    }
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n{title}\n\
         <link rel=\"stylesheet\" href=\"css/site.css\">\n\
         <script type=\"module\" src=\"js/pages/{name}.js\"></script>\n</head>\n<body>\n{body}</body>\n</html>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_becomes_a_whole_document_with_its_own_module() {
        let page = assemble("cart", "<title>Your cart</title>\n<main id=\"main\">\n</main>\n").unwrap();
        assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(page.contains("<title>Your cart</title>"));
        assert!(page.contains(r#"<script type="module" src="js/pages/cart.js"></script>"#));
        assert!(page.ends_with("<body>\n<main id=\"main\">\n</main>\n</body>\n</html>\n"));
    }

    #[test]
    fn a_fragment_without_its_title_or_main_is_refused() {
        assert!(assemble("x", "<main id=\"main\"></main>\n").is_err());
        assert!(assemble("x", "<title>X</title>\n<div></div>\n").is_err());
    }

    #[test]
    fn every_storefront_page_in_the_repository_assembles() {
        let web = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../web-widget"));
        let pages = assemble_all(web).unwrap();
        assert!(pages.len() >= 10, "{} pages", pages.len());
        for (name, _) in &pages {
            assert!(
                web.join(format!("js/pages/{name}.js")).is_file(),
                "{name} has no module js/pages/{name}.js"
            );
        }
    }
}
