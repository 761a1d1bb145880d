//! The public catalog: browsable without a token, published events only, cacheable, bad input refused.

use e2e::{Options, assert_error, spawn_app, spawn_app_with, spawn_with_admin};
use serde_json::{Value, json};

#[tokio::test]
async fn a_guest_browses_every_public_endpoint_without_a_token() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, merch) = app.published_event(&admin, 100, 50).await;

    let events = app.expect(200, "GET", "/api/events", None, None).await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["id"], event.to_string());
    assert_eq!(events[0]["from_price"], 150000);
    assert_eq!(events[0]["tickets_remaining"], 100);

    let detail = app.expect(200, "GET", &format!("/api/events/{event}"), None, None).await;
    let c = &detail["ticket_categories"][0];
    assert_eq!(c["id"], category.to_string());
    for field in ["id", "name", "price", "quota", "remaining", "max_per_order"] {
        assert!(!c[field].is_null(), "category field {field} missing: {c}");
    }
    assert_eq!(c["remaining"], 100);
    assert!(c.get("sold").is_none(), "internal counters are not public");
    let m = &detail["merchandise"][0];
    for field in ["id", "name", "price", "stock", "remaining"] {
        assert!(!m[field].is_null(), "merchandise field {field} missing: {m}");
    }
    assert!(detail["schedules"].is_array());

    let list = app.expect(200, "GET", &format!("/api/merchandise?event_id={event}"), None, None).await;
    assert_eq!(list[0]["id"], merch.to_string());
    let all = app.expect(200, "GET", "/api/merchandise", None, None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let one = app.expect(200, "GET", &format!("/api/merchandise/{merch}"), None, None).await;
    assert_eq!(one["remaining"], 50);
}

#[tokio::test]
async fn remaining_counts_subtract_sold_and_held_units() {
    let app = spawn_app_with(Options { catalog_cache_ttl_ms: 0, ..Options::default() }).await;
    let admin = app.admin_token().await;
    let (event, category, merch) = app.published_event(&admin, 100, 50).await;
    sqlx::query("update ticket_categories set sold = 30, held = 5 where id = $1")
        .bind(category)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("update merchandise set sold = 50 where id = $1").bind(merch).execute(&app.db).await.unwrap();

    let (_, detail) = app.anon().get(&format!("/api/events/{event}")).await;
    assert_eq!(detail["ticket_categories"][0]["remaining"], 65);
    assert_eq!(detail["merchandise"][0]["remaining"], 0);
    let (_, events) = app.anon().get("/api/events").await;
    assert_eq!(events[0]["tickets_remaining"], 65);
}

#[tokio::test]
async fn draft_events_and_their_merchandise_are_not_public() {
    let (app, admin) = spawn_with_admin().await;
    let (s, draft) = app
        .by(&admin)
        .post(
            "/api/admin/events",
            json!({
                "name": "Secret show", "venue": "Aula", "starts_at": "2030-01-01T12:00:00Z"
            }),
        )
        .await;
    assert_eq!(s, 201);
    let id = draft["id"].as_str().unwrap();
    let (s, merch) = app
        .by(&admin)
        .post(
            "/api/admin/merchandise",
            json!({
                "event_id": id, "name": "Kaos", "price": 1000, "stock": 5
            }),
        )
        .await;
    assert_eq!(s, 201);

    let (_, events) = app.anon().get("/api/events").await;
    assert_eq!(events, json!([]));
    let body = app.expect(404, "GET", &format!("/api/events/{id}"), None, None).await;
    assert_error(&body, "not_found");
    let (s, _) = app.anon().get(&format!("/api/merchandise/{}", merch["id"].as_str().unwrap())).await;
    assert_eq!(s, 404);
    app.expect(404, "GET", &format!("/api/merchandise?event_id={id}"), None, None).await;
    let (_, all) = app.anon().get("/api/merchandise").await;
    assert_eq!(all, json!([]));
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_with_a_json_error() {
    let app = spawn_app().await;
    for path in [
        format!("/api/events/{}", uuid::Uuid::new_v4()),
        "/api/events/not-a-uuid".to_owned(),
        format!("/api/merchandise/{}", uuid::Uuid::new_v4()),
        format!("/api/merchandise?event_id={}", uuid::Uuid::new_v4()),
        "/api/no-such-route".to_owned(),
    ] {
        let body = app.expect(404, "GET", &path, None, None).await;
        assert_error(&body, "not_found");
    }
}

#[tokio::test]
async fn bad_query_strings_are_400() {
    let app = spawn_app().await;
    for path in [
        "/api/events?limit=0",
        "/api/events?limit=1000",
        "/api/events?offset=-1",
        "/api/events?limit=abc",
        "/api/events?surprise=1",
        "/api/merchandise?event_id=not-a-uuid",
    ] {
        let body = app.expect(400, "GET", path, None, None).await;
        assert_error(&body, "invalid_query");
    }
}

#[tokio::test]
async fn event_pages_are_cacheable_and_revalidate_with_etag() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 10, 10).await;
    let resp = app.get(&format!("/api/events/{event}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let cc = resp.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cc.contains("max-age"), "{cc}");
    let again = app.get(&format!("/api/events/{event}")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_admin_change_shows_on_the_public_page_at_once() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 10, 10).await;
    let (_, before) = app.anon().get(&format!("/api/events/{event}")).await;
    assert_eq!(before["ticket_categories"][0]["quota"], 10);
    let (s, _) = app
        .by(&admin)
        .patch(&format!("/api/admin/ticket-categories/{category}"), json!({ "quota": 25 }))
        .await;
    assert_eq!(s, 200);
    let (_, after): (u16, Value) = app.anon().get(&format!("/api/events/{event}")).await;
    assert_eq!(after["ticket_categories"][0]["quota"], 25);
    assert_eq!(after["ticket_categories"][0]["remaining"], 25);
}

#[tokio::test]
async fn the_demo_event_is_loaded_into_an_empty_database() {
    let app = spawn_app_with(Options { demo_data: true, ..Options::default() }).await;
    let (_, events) = app.anon().get("/api/events").await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    let id = events[0]["id"].as_str().unwrap();
    let (_, detail) = app.anon().get(&format!("/api/events/{id}")).await;
    assert_eq!(detail["ticket_categories"].as_array().unwrap().len(), 3);
    assert!(detail["merchandise"].as_array().unwrap().len() >= 3);
    assert!(detail["schedules"].as_array().unwrap().len() >= 2);
    // Loading again into a database that has events changes nothing.
    assert!(gateway::demo::load_if_empty(&app.db).await.unwrap().is_none());
}
