//! Operations: health, readiness, metrics, the OpenAPI document, request ids, start-up refusals.

use e2e::{assert_error, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness_report_the_dependencies() {
    let app = spawn_app().await;
    let body = app.expect(200, "GET", "/healthz", None, None).await;
    assert_eq!(body["status"], "ok");
    let body = app.expect(200, "GET", "/readyz", None, None).await;
    assert_eq!(body, serde_json::json!({ "status": "ready", "postgres": true, "redis": true }));
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let app = spawn_app().await;
    app.anon().get("/api/events").await;
    let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/events\""), "{text}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_contract_paths_and_has_a_viewer() {
    let app = spawn_app().await;
    let (s, doc): (u16, Value) = app.anon().get("/api/openapi.json").await;
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/events",
        "/api/events/{id}",
        "/api/merchandise",
        "/api/merchandise/{id}",
        "/api/auth/register",
        "/api/auth/login",
        "/api/me",
        "/api/admin/events",
        "/api/admin/events/{id}/publish",
        "/api/admin/events/{id}/schedules",
        "/api/admin/events/{id}/ticket-categories",
        "/api/admin/merchandise",
        "/api/admin/events/{id}/waiting-room",
        "/api/orders",
        "/api/orders/{id}",
        "/api/orders/requests/{id}",
        "/api/orders/{id}/payment",
        "/api/orders/{id}/tickets",
        "/api/webhooks/midtrans",
        "/api/checkin",
        "/api/admin/webhooks/dead-letters",
        "/api/admin/webhooks/dead-letters/{id}/replay",
        "/api/admin/payments",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(doc["components"]["schemas"]["EventDetail"].is_object());
    let html = app.get("/api/docs").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("/api/openapi.json"));
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_errors_are_json() {
    let app = spawn_app().await;
    let resp = app.get("/api/events").send().await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
    let resp = app.get("/api/events").header("x-request-id", "trace-me-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    let resp = app.delete("/api/events").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET,HEAD");
    let body: Value = resp.json().await.unwrap();
    assert_error(&body, "method_not_allowed");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = spawn_app().await;
    let allowed = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/api/events"))
        .header("origin", "http://127.0.0.1")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "http://127.0.0.1");
    let refused = app.get("/api/events").header("origin", "https://evil.example").send().await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn production_refuses_to_start_with_a_weak_secret_or_wildcard_cors() {
    let mut config = e2e::test_config("unused", "unused:", &e2e::Options::default());
    config.process.app_env = gateway::config::AppEnv::Production;
    config.jwt_secret = Some("too-short".parse().unwrap());
    let err = gateway::Application::build(config.clone()).await.err().expect("refused");
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    config.jwt_secret = Some("x".repeat(48).parse().unwrap());
    config.cors_origins = "*".into();
    let err = gateway::Application::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("CORS_ORIGINS"), "{err}");
}

#[tokio::test]
async fn the_storefront_is_served_at_the_root() {
    let app = spawn_app().await;
    let resp = app.get("/").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn storefront_pages_carry_a_same_origin_content_security_policy() {
    let app = spawn_app().await;
    for page in ["/", "/cart.html", "/admin.html"] {
        let resp = app.get(page).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{page}");
        let policy = resp.headers()["content-security-policy"].to_str().unwrap();
        for directive in
            ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'self'"]
        {
            assert!(policy.contains(directive), "{page}: {policy} lacks {directive}");
        }
        assert!(!policy.contains("unsafe-inline"), "{page}: {policy}");
        assert_eq!(resp.headers()["referrer-policy"], "same-origin", "{page}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "{page}");
    }
}

#[test]
fn every_path_the_architecture_code_map_names_exists() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let section = doc.split("## Where the code lives").nth(1).expect("the code map section");
    let block = section.split("```").nth(1).expect("the code map block");
    // A line at the margin names a folder; an indented entry a file or folder inside it; inside a folder
    // entry's description (and its continuation lines), every `name.rs`-like word is a file in it.
    let (mut folder, mut entry_dir) = (String::new(), None::<String>);
    let mut missing = Vec::new();
    let mut check = |path: String| {
        if !root.join(&path).exists() {
            missing.push(path);
        }
    };
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let first = line.split_whitespace().next().unwrap().to_owned();
        let rest: String =
            if indent <= 2 { line.trim_start()[first.len()..].to_owned() } else { line.to_owned() };
        match indent {
            0 => {
                folder = first.clone();
                entry_dir = first.ends_with('/').then(|| first.clone());
                check(first);
            }
            2 => {
                let path = format!("{folder}{first}");
                entry_dir = first.ends_with('/').then(|| path.clone());
                check(path);
            }
            _ => {}
        }
        if let Some(dir) = &entry_dir {
            for word in rest.split(|c: char| !(c.is_alphanumeric() || "._/-".contains(c))) {
                if [".rs", ".lua", ".html"].iter().any(|ext| word.ends_with(ext)) {
                    check(format!("{dir}{word}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}

/// The values a CHECK constraint `<column> in ('a', 'b', …)` allows, read from PostgreSQL.
async fn allowed_values(db: &sqlx::PgPool, constraint: &str) -> Vec<String> {
    let definition: String =
        sqlx::query_scalar("select pg_get_constraintdef(oid) from pg_constraint where conname = $1")
            .bind(constraint)
            .fetch_one(db)
            .await
            .unwrap_or_else(|e| panic!("{constraint}: {e}"));
    let mut values: Vec<String> = definition.split('\'').skip(1).step_by(2).map(str::to_owned).collect();
    values.sort();
    values
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<String> {
    let mut v: Vec<String> = all.iter().map(|s| name(*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn every_state_enum_lists_exactly_what_its_column_allows() {
    use pipeline::states::*;
    let app = spawn_app().await;
    let cases = [
        ("order_requests_status_check", names(RequestStatus::ALL, RequestStatus::as_str)),
        ("orders_status_check", names(OrderStatus::ALL, OrderStatus::as_str)),
        ("payments_status_check", names(PaymentStatus::ALL, PaymentStatus::as_str)),
        ("tickets_status_check", names(TicketStatus::ALL, TicketStatus::as_str)),
        ("events_status_check", names(EventStatus::ALL, EventStatus::as_str)),
    ];
    for (constraint, enum_values) in cases {
        assert_eq!(allowed_values(&app.db, constraint).await, enum_values, "{constraint}");
    }
    assert_eq!(
        allowed_values(&app.db, "order_requests_reason_check").await,
        names(Reason::ALL, Reason::as_str),
        "order_requests_reason_check"
    );
}
