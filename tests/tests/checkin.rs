//! E-tickets at the gate: one ticket checks in once however many scan it at once, and a gate for one event
//! refuses another's.

use std::{sync::Arc, time::Duration};

use e2e::{MIDTRANS_KEY, PayApp, assert_error, fast_processor, payments::*, spawn_app_with_midtrans};
use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

#[tokio::test]
async fn twenty_concurrent_scans_of_one_ticket_let_exactly_one_in() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (s, mid) = paid_order(&app, &midtrans).await;
    let (_, body) = app.by(&s.token).get(&format!("/api/orders/{}/tickets", s.order)).await;
    let list = body["tickets"].as_array().unwrap().clone();
    let ticket = list.iter().find(|t| t["kind"] == "ticket").unwrap()["code"].as_str().unwrap().to_owned();
    let pickup =
        list.iter().find(|t| t["kind"] == "merchandise_pickup").unwrap()["code"].as_str().unwrap().to_owned();

    let admin = app.admin_token().await;
    let staff = app.staff_token(&admin).await;
    // Buyers cannot scan.
    app.expect(403, "POST", "/api/checkin", Some(&s.token), Some(json!({"code": ticket}))).await;

    let barrier = Arc::new(Barrier::new(20));
    let app = Arc::new(app);
    let scans: Vec<_> = (0..20)
        .map(|_| {
            let (app, barrier, staff, code) = (app.clone(), barrier.clone(), staff.clone(), ticket.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                app.by(&staff).post("/api/checkin", json!({ "code": code })).await
            })
        })
        .collect();
    let mut ok = 0;
    for scan in scans {
        let (status, body) = scan.await.unwrap();
        match status {
            200 => {
                ok += 1;
                assert_eq!(body["ticket"]["holder_name"], "Budi Santoso");
                assert_eq!(body["ticket"]["item_name"], "Festival");
            }
            409 => {
                assert_error(&body, "already_checked_in");
                assert!(body["error"]["checked_in_by"].as_str().unwrap().starts_with("staff-"));
                assert!(body["error"]["checked_in_at"].is_string());
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1);
    let scans_audited: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action like 'ticket.scan.%'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(scans_audited, 20);

    // Unknown codes; the merchandise pickup code works the same way (and tolerates scanner spacing).
    app.expect(404, "POST", "/api/checkin", Some(&staff), Some(json!({"code": "NOPE"}))).await;
    let spaced = format!(" {} ", pickup.to_lowercase());
    let (status, body) = app.by(&staff).post("/api/checkin", json!({ "code": spaced })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ticket"]["kind"], "merchandise_pickup");
    app.expect(422, "POST", "/api/checkin", Some(&staff), Some(json!({"code": ""}))).await;

    // Refunded: the remaining ticket is void at the gate.
    let other = list
        .iter()
        .filter(|t| t["kind"] == "ticket")
        .map(|t| t["code"].as_str().unwrap())
        .find(|c| *c != ticket)
        .unwrap()
        .to_owned();
    let client = midtrans::Client::new(midtrans::ClientConfig {
        server_key: MIDTRANS_KEY.into(),
        api_base_url: midtrans.url(),
        snap_base_url: midtrans.snap_base_url(),
        timeout: Duration::from_secs(3),
        attempts: 1,
    })
    .unwrap();
    client.refund(&mid, "rf-1", 400_000, "cancelled").await.unwrap();
    wait_for_status(&app, s.order, "refunded").await;
    let body = app.expect(409, "POST", "/api/checkin", Some(&staff), Some(json!({ "code": other }))).await;
    assert_error(&body, "ticket_void");
    stop.cancel();
}

#[tokio::test]
async fn a_gate_for_one_event_refuses_another_events_ticket_and_leaves_it_unused() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (s, _) = paid_order(&app, &midtrans).await;
    let (_, body) = app.by(&s.token).get(&format!("/api/orders/{}/tickets", s.order)).await;
    let code = body["tickets"].as_array().unwrap().iter().find(|t| t["kind"] == "ticket").unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin_token().await;
    let (status, body) =
        app.by(&admin).post("/api/checkin", json!({ "code": code, "event_id": Uuid::new_v4() })).await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, "wrong_event");
    let (status, _) = app.by(&admin).post("/api/checkin", json!({ "code": code, "event_id": s.event })).await;
    assert_eq!(status, 200);
    stop.cancel();
}
