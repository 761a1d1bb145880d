//! Admin CRUD: permissions, validation, the audit trail, and the end-to-end "create and publish" path.

use e2e::{assert_error, spawn_with_admin};
use serde_json::{Value, json};
use uuid::Uuid;

async fn audit_count(app: &e2e::TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from audit_log").fetch_one(&app.db).await.unwrap()
}

#[tokio::test]
async fn an_admin_creates_and_publishes_an_event_that_guests_then_see() {
    let (app, admin) = spawn_with_admin().await;
    let (s, event) = app.by(&admin).post("/api/admin/events", json!({
            "name": "Malam Akustik", "venue": "Gedung Serbaguna", "starts_at": "2030-03-01T12:00:00Z",
            "ends_at": "2030-03-01T16:00:00Z", "sale_opens_at": "2030-01-01T03:00:00Z", "description": "Tiga band."
        }))
        .await;
    assert_eq!(s, 201, "{event}");
    assert_eq!(event["status"], "draft");
    let id = event["id"].as_str().unwrap();

    let (s, schedule) = app
        .by(&admin)
        .post(
            &format!("/api/admin/events/{id}/schedules"),
            json!({
                "starts_at": "2030-03-01T12:00:00Z", "ends_at": "2030-03-01T16:00:00Z", "label": "Malam 1"
            }),
        )
        .await;
    assert_eq!(s, 201, "{schedule}");
    for (name, price, quota) in [("Reguler", 50_000, 300), ("VIP", 200_000, 20)] {
        let (s, cat) = app.by(&admin).post(&format!("/api/admin/events/{id}/ticket-categories"), json!({
                "name": name, "price": price, "quota": quota, "max_per_order": 4, "schedule_id": schedule["id"]
            }))
            .await;
        assert_eq!(s, 201, "{cat}");
        assert_eq!(cat["sold"], 0);
        assert_eq!(cat["held"], 0);
    }
    let (s, merch) = app
        .by(&admin)
        .post(
            "/api/admin/merchandise",
            json!({
                "event_id": id, "name": "Kaos", "price": 90_000, "stock": 100
            }),
        )
        .await;
    assert_eq!(s, 201, "{merch}");

    app.expect(404, "GET", &format!("/api/events/{id}"), None, None).await;
    let (s, published) = app.by(&admin).post_empty(&format!("/api/admin/events/{id}/publish")).await;
    assert_eq!(s, 200);
    assert_eq!(published["status"], "published");
    assert!(!published["published_at"].is_null());

    let public = app.expect(200, "GET", &format!("/api/events/{id}"), None, None).await;
    assert_eq!(public["ticket_categories"].as_array().unwrap().len(), 2);
    assert_eq!(public["merchandise"][0]["name"], "Kaos");
    assert_eq!(public["schedules"][0]["label"], "Malam 1");

    // Every change is in the audit log, attributed to the admin.
    let actions: Vec<String> =
        sqlx::query_scalar("select action from audit_log order by id").fetch_all(&app.db).await.unwrap();
    assert_eq!(
        actions,
        [
            "event.create",
            "schedule.create",
            "ticket_category.create",
            "ticket_category.create",
            "merchandise.create",
            "event.publish"
        ]
    );
    let (s, log) = app.by(&admin).get(&format!("/api/admin/audit-log?entity=event&entity_id={id}")).await;
    assert_eq!(s, 200);
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["action"], "event.publish");
    assert_eq!(log[0]["actor_email"], e2e::ADMIN_EMAIL);
}

#[tokio::test]
async fn a_buyer_cannot_reach_any_admin_endpoint_and_a_guest_must_sign_in() {
    let (app, admin) = spawn_with_admin().await;
    let buyer = app.buyer_token().await;
    let (event, category, merch) = app.published_event(&admin, 10, 10).await;
    let some = Uuid::new_v4();
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/admin/events".into(), None),
        (
            "POST",
            "/api/admin/events".into(),
            Some(json!({ "name": "x", "venue": "y", "starts_at": "2030-01-01T00:00:00Z" })),
        ),
        ("GET", format!("/api/admin/events/{event}"), None),
        ("PATCH", format!("/api/admin/events/{event}"), Some(json!({ "name": "hacked" }))),
        ("DELETE", format!("/api/admin/events/{event}"), None),
        ("POST", format!("/api/admin/events/{event}/publish"), None),
        ("POST", format!("/api/admin/events/{event}/unpublish"), None),
        (
            "POST",
            format!("/api/admin/events/{event}/schedules"),
            Some(json!({ "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z" })),
        ),
        ("PATCH", format!("/api/admin/schedules/{some}"), Some(json!({ "label": "x" }))),
        ("DELETE", format!("/api/admin/schedules/{some}"), None),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            Some(json!({ "name": "x", "price": 1, "quota": 1, "max_per_order": 1 })),
        ),
        ("PATCH", format!("/api/admin/ticket-categories/{category}"), Some(json!({ "quota": 1000 }))),
        ("DELETE", format!("/api/admin/ticket-categories/{category}"), None),
        ("GET", "/api/admin/merchandise".into(), None),
        ("POST", "/api/admin/merchandise".into(), Some(json!({ "name": "x", "price": 1, "stock": 1 }))),
        ("GET", format!("/api/admin/merchandise/{merch}"), None),
        ("PATCH", format!("/api/admin/merchandise/{merch}"), Some(json!({ "stock": 1000 }))),
        ("DELETE", format!("/api/admin/merchandise/{merch}"), None),
        ("GET", format!("/api/admin/events/{event}/waiting-room"), None),
        ("PUT", format!("/api/admin/events/{event}/waiting-room"), Some(json!({ "paused": true }))),
        ("GET", "/api/admin/users".into(), None),
        ("PUT", format!("/api/admin/users/{some}/role"), Some(json!({ "role": "admin" }))),
        ("GET", "/api/admin/audit-log".into(), None),
    ];
    let audit_before = audit_count(&app).await;
    for (method, path, body) in &calls {
        let resp = app.expect(403, method, path, Some(&buyer), body.clone()).await;
        assert_error(&resp, "forbidden");
        app.expect(401, method, path, None, body.clone()).await;
    }
    assert_eq!(audit_count(&app).await, audit_before, "refused calls change nothing");
    let (_, detail) = app.anon().get(&format!("/api/events/{event}")).await;
    assert_eq!(detail["name"], "Konser Test");
    assert_eq!(detail["ticket_categories"][0]["quota"], 10);

    // Staff may scan tickets but may not manage the catalog either.
    let staff = app.staff_token(&admin).await;
    app.expect(403, "GET", "/api/admin/events", Some(&staff), None).await;
}

#[tokio::test]
async fn invalid_admin_input_is_422_and_changes_nothing() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, merch) = app.published_event(&admin, 10, 10).await;
    let audit_before = audit_count(&app).await;
    let cases: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            "/api/admin/events".into(),
            json!({ "name": "", "venue": "y", "starts_at": "2030-01-01T00:00:00Z" }),
        ),
        (
            "POST",
            "/api/admin/events".into(),
            json!({ "name": "x".repeat(201), "venue": "y", "starts_at": "2030-01-01T00:00:00Z" }),
        ),
        (
            "POST",
            "/api/admin/events".into(),
            json!({ "name": "x", "venue": "y", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z" }),
        ),
        (
            "POST",
            "/api/admin/events".into(),
            json!({ "name": "x", "venue": "y", "starts_at": "2030-01-02T00:00:00Z", "sale_opens_at": "2030-01-01T00:00:00Z", "sale_closes_at": "2029-12-01T00:00:00Z" }),
        ),
        (
            "POST",
            "/api/admin/events".into(),
            json!({ "name": "x", "venue": "y", "starts_at": "2030-01-02T00:00:00Z", "max_tickets_per_buyer": 0 }),
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/schedules"),
            json!({ "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z" }),
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": -1, "quota": 1, "max_per_order": 1 }),
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1, "quota": -1, "max_per_order": 1 }),
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1, "quota": 1, "max_per_order": 0 }),
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1_000_000_001i64, "quota": 1, "max_per_order": 1 }),
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1, "quota": 1, "max_per_order": 1, "sale_starts_at": "2030-01-02T00:00:00Z", "sale_ends_at": "2030-01-01T00:00:00Z" }),
        ),
        ("PATCH", format!("/api/admin/ticket-categories/{category}"), json!({ "price": -5 })),
        ("POST", "/api/admin/merchandise".into(), json!({ "name": "x", "price": 1, "stock": -3 })),
        ("PATCH", format!("/api/admin/merchandise/{merch}"), json!({ "name": "  " })),
        ("PUT", format!("/api/admin/events/{event}/waiting-room"), json!({ "admission_rate_per_sec": 0 })),
        ("PUT", format!("/api/admin/events/{event}/waiting-room"), json!({ "token_ttl_secs": 1 })),
    ];
    for (method, path, body) in cases {
        let resp = app.expect(422, method, &path, Some(&admin), Some(body.clone())).await;
        assert_error(&resp, "validation_failed");
    }
    // Valid on their own, but at odds with what is stored: an end before the stored start, a schedule
    // that is not this event's.
    let conflicts: Vec<(&str, String, Value, &str)> = vec![
        (
            "PATCH",
            format!("/api/admin/events/{event}"),
            json!({ "ends_at": "2000-01-01T00:00:00Z" }),
            "window_conflict",
        ),
        (
            "POST",
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1, "quota": 1, "max_per_order": 1, "schedule_id": Uuid::new_v4() }),
            "unknown_schedule",
        ),
    ];
    for (method, path, body, code) in conflicts {
        let resp = app.expect(409, method, &path, Some(&admin), Some(body)).await;
        assert_error(&resp, code);
    }
    // Wrong types and unknown fields are 400.
    for (path, body) in [
        ("/api/admin/events".to_owned(), json!({ "name": "x", "venue": "y", "starts_at": "tomorrow" })),
        (
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": "free", "quota": 1, "max_per_order": 1 }),
        ),
        (
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1, "quota": 1e12, "max_per_order": 1 }),
        ),
        (
            format!("/api/admin/events/{event}/ticket-categories"),
            json!({ "name": "x", "price": 1, "quota": 1, "max_per_order": 1, "sold": 0 }),
        ),
    ] {
        let resp = app.expect(400, "POST", &path, Some(&admin), Some(body)).await;
        assert_error(&resp, "invalid_body");
    }
    assert_eq!(audit_count(&app).await, audit_before);
    let events: i64 = sqlx::query_scalar("select count(*) from events").fetch_one(&app.db).await.unwrap();
    assert_eq!(events, 1);
    let cats: i64 =
        sqlx::query_scalar("select count(*) from ticket_categories").fetch_one(&app.db).await.unwrap();
    assert_eq!(cats, 1);
}

#[tokio::test]
async fn quota_and_stock_cannot_drop_below_what_is_sold_or_held() {
    let (app, admin) = spawn_with_admin().await;
    let (_, category, merch) = app.published_event(&admin, 100, 50).await;
    sqlx::query("update ticket_categories set sold = 40, held = 20 where id = $1")
        .bind(category)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("update merchandise set sold = 10, held = 5 where id = $1")
        .bind(merch)
        .execute(&app.db)
        .await
        .unwrap();

    let (s, body) = app
        .by(&admin)
        .patch(&format!("/api/admin/ticket-categories/{category}"), json!({ "quota": 59 }))
        .await;
    assert_eq!(s, 422);
    assert!(assert_error(&body, "validation_failed").contains("60"));
    let (s, ok) = app
        .by(&admin)
        .patch(&format!("/api/admin/ticket-categories/{category}"), json!({ "quota": 60 }))
        .await;
    assert_eq!(s, 200);
    assert_eq!(ok["remaining"], 0);
    let (s, _) =
        app.by(&admin).patch(&format!("/api/admin/merchandise/{merch}"), json!({ "stock": 14 })).await;
    assert_eq!(s, 422);
    let (s, m) = app
        .by(&admin)
        .patch(&format!("/api/admin/merchandise/{merch}"), json!({ "stock": 15, "price": 95000 }))
        .await;
    assert_eq!(s, 200);
    assert_eq!(m["price"], 95000);
}

#[tokio::test]
async fn unknown_ids_are_404_for_admins() {
    let (app, admin) = spawn_with_admin().await;
    let none = Uuid::new_v4();
    for (method, path, body) in [
        ("GET", format!("/api/admin/events/{none}"), None),
        ("PATCH", format!("/api/admin/events/{none}"), Some(json!({ "name": "x" }))),
        ("DELETE", format!("/api/admin/events/{none}"), None),
        ("POST", format!("/api/admin/events/{none}/publish"), None),
        (
            "POST",
            format!("/api/admin/events/{none}/schedules"),
            Some(json!({ "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z" })),
        ),
        (
            "POST",
            format!("/api/admin/events/{none}/ticket-categories"),
            Some(json!({ "name": "x", "price": 1, "quota": 1, "max_per_order": 1 })),
        ),
        ("PATCH", format!("/api/admin/ticket-categories/{none}"), Some(json!({ "quota": 1 }))),
        ("DELETE", format!("/api/admin/ticket-categories/{none}"), None),
        (
            "POST",
            "/api/admin/merchandise".to_owned(),
            Some(json!({ "event_id": none, "name": "x", "price": 1, "stock": 1 })),
        ),
        ("PATCH", format!("/api/admin/merchandise/{none}"), Some(json!({ "stock": 1 }))),
        ("GET", format!("/api/admin/events/{none}/waiting-room"), None),
        ("PUT", format!("/api/admin/events/{none}/waiting-room"), Some(json!({ "paused": true }))),
        ("PUT", format!("/api/admin/users/{none}/role"), Some(json!({ "role": "staff" }))),
        ("PATCH", format!("/api/admin/schedules/{none}"), Some(json!({ "label": "x" }))),
    ] {
        let resp = app.expect(404, method, &path, Some(&admin), body).await;
        assert_error(&resp, "not_found");
    }
}

#[tokio::test]
async fn events_with_orders_cannot_be_deleted_or_unpublished() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 10, 10).await;
    let (_, buyer) = app.register("pembeli@kampus.ac.id").await;
    sqlx::query(
        "insert into orders (id, user_id, event_id, idempotency_key, total, expires_at) values ($1, $2, $3, 'k', 0, now())",
    )
    .bind(Uuid::now_v7())
    .bind(buyer)
    .bind(event)
    .execute(&app.db)
    .await
    .unwrap();
    let body = app.expect(409, "DELETE", &format!("/api/admin/events/{event}"), Some(&admin), None).await;
    assert_error(&body, "event_has_orders");
    app.expect(409, "POST", &format!("/api/admin/events/{event}/unpublish"), Some(&admin), None).await;
    app.expect(200, "GET", &format!("/api/events/{event}"), None, None).await;
}

#[tokio::test]
async fn an_event_with_checkout_requests_but_no_orders_is_not_deleted() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, _) = app.published_event(&admin, 10, 10).await;
    app.expect(200, "POST", &format!("/api/admin/events/{event}/unpublish"), Some(&admin), None).await;
    // A buyer's request is still queued (the workers have not decided it).
    let (buyer, _) = app.quick_buyer().await;
    let items = vec![pipeline::orders::CartLine {
        ticket_category_id: Some(category),
        merchandise_id: None,
        quantity: 1,
    }];
    let request = app.record_request(buyer, event, items).await;
    let body = app.expect(409, "DELETE", &format!("/api/admin/events/{event}"), Some(&admin), None).await;
    assert_error(&body, "event_has_orders");
    let kept: i64 = app.scalar("select count(*) from order_requests where id = $1", request.request_id).await;
    assert_eq!(kept, 1);
}

#[tokio::test]
async fn a_draft_event_is_deleted_with_everything_on_sale_for_it() {
    let (app, admin) = spawn_with_admin().await;
    let (event, category, merch) = app.published_event(&admin, 10, 10).await;
    app.expect(200, "POST", &format!("/api/admin/events/{event}/unpublish"), Some(&admin), None).await;
    app.expect(204, "DELETE", &format!("/api/admin/events/{event}"), Some(&admin), None).await;
    app.expect(404, "GET", &format!("/api/admin/merchandise/{merch}"), Some(&admin), None).await;
    let left: i64 = app.scalar("select count(*) from ticket_categories where id = $1", category).await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn admins_manage_roles_but_cannot_demote_themselves() {
    let (app, admin) = spawn_with_admin().await;
    let (_, me) = app.by(&admin).get("/api/me").await;
    let my_id = me["id"].as_str().unwrap();
    let (s, body) =
        app.by(&admin).put(&format!("/api/admin/users/{my_id}/role"), json!({ "role": "buyer" })).await;
    assert_eq!(s, 409);
    assert_error(&body, "self_demotion");
    let (_, user) = app.register("calon.staff@kampus.ac.id").await;
    let (s, body) =
        app.by(&admin).put(&format!("/api/admin/users/{user}/role"), json!({ "role": "superuser" })).await;
    assert_eq!(s, 400, "{body}");
    let (s, body) =
        app.by(&admin).put(&format!("/api/admin/users/{user}/role"), json!({ "role": "staff" })).await;
    assert_eq!(s, 200);
    assert_eq!(body["role"], "staff");
    let users = app.expect(200, "GET", "/api/admin/users", Some(&admin), None).await;
    assert_eq!(users.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn waiting_room_settings_are_changed_partially_and_audited() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 10, 10).await;
    let (s, before) = app.by(&admin).get(&format!("/api/admin/events/{event}/waiting-room")).await;
    assert_eq!(s, 200);
    let (s, after) = app
        .by(&admin)
        .put(
            &format!("/api/admin/events/{event}/waiting-room"),
            json!({
                "admission_rate_per_sec": 250, "paused": true
            }),
        )
        .await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["admission_rate_per_sec"], 250);
    assert_eq!(after["paused"], true);
    assert_eq!(after["max_active"], before["max_active"]);
    assert_eq!(after["token_ttl_secs"], before["token_ttl_secs"]);
    let action: String = sqlx::query_scalar("select action from audit_log order by id desc limit 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(action, "waiting_room.update");
}
