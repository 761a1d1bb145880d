//! The waiting room against real Redis and PostgreSQL: order, the opening draw, rejoin, admission limits
//! with two controllers, pause, presence, rate changes, tokens, and push over WebSocket and SSE from two
//! gateways. Ticks are driven by hand with an explicit clock, so nothing here sleeps to wait for time.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use e2e::{TestApp, assert_error, spawn_with_admin};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;
use waiting_room::{
    controller::Controller,
    progress::Progress,
    queue::{Standing, draw_key, participant, seed_hash},
};

fn controller(app: &TestApp) -> Controller {
    Controller::new(app.db.clone(), app.state.queue.clone())
}

async fn settings(app: &TestApp, admin: &str, event: Uuid, body: Value) {
    let (s, resp) = app.by(admin).put(&format!("/api/admin/events/{event}/waiting-room"), body).await;
    assert_eq!(s, 200, "{resp}");
}

/// Ticks once at `at` and returns the visitors admitted for `event`, in order.
async fn tick(c: &Controller, event: Uuid, at: DateTime<Utc>) -> Vec<Uuid> {
    let published = c.tick(at).await.unwrap();
    let p: &Progress = published.iter().find(|p| p.event == event).expect("event ticked");
    p.admitted.iter().map(|a| a.visitor).collect()
}

/// An open event whose draw is done, so joins are first come, first served.
async fn open_event(app: &TestApp, admin: &str, rate: i32) -> (Uuid, Controller, DateTime<Utc>) {
    let (event, _, _) = app.published_event(admin, 1000, 100).await;
    settings(app, admin, event, json!({ "admission_rate_per_sec": rate, "max_active": 10000 })).await;
    let c = controller(app);
    let t0 = Utc::now();
    tick(&c, event, t0).await; // performs the (empty) opening draw and starts the admission clock
    (event, c, t0)
}

/// Moves the event's sale opening to `after` from now; returns it.
async fn opening_in(app: &TestApp, admin: &str, event: Uuid, after: Duration) -> DateTime<Utc> {
    let opens = Utc::now() + after;
    let (s, body) =
        app.by(admin).patch(&format!("/api/admin/events/{event}"), json!({ "sale_opens_at": opens })).await;
    assert_eq!(s, 200, "{body}");
    opens
}

async fn join_many(app: &TestApp, event: Uuid, n: usize) -> Vec<Uuid> {
    let mut out = Vec::new();
    for _ in 0..n {
        let v = Uuid::new_v4();
        app.state.queue.join(event, v, Utc::now().timestamp_millis()).await.unwrap();
        out.push(v);
    }
    out
}

#[tokio::test]
async fn visitors_are_admitted_first_come_first_served_at_the_configured_rate() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 10).await;
    let visitors = join_many(&app, event, 30).await;
    let first = tick(&c, event, t0 + Duration::seconds(1)).await;
    let second = tick(&c, event, t0 + Duration::seconds(2)).await;
    assert_eq!(first, visitors[..10]);
    assert_eq!(second, visitors[10..20]);
    match app.state.queue.standing(event, visitors[25], Utc::now().timestamp_millis()).await.unwrap() {
        Standing::Waiting { ahead, .. } => assert_eq!(ahead, 5),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_pre_queue_draw_is_a_permutation_fixed_by_the_published_seed() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 1000, 100).await;
    let opens = opening_in(&app, &admin, event, Duration::hours(1)).await;
    let mut visitors = Vec::new();
    for _ in 0..40 {
        let body = app.expect(200, "POST", &format!("/api/events/{event}/queue"), None, None).await;
        assert_eq!(body["status"], "pre_queue");
        assert!(body["position"].is_null());
        let token = body["visitor_token"].as_str().unwrap();
        visitors.push(app.state.signer.verify_visitor(token, event).unwrap());
    }
    let c = controller(&app);
    let before = c.tick(Utc::now()).await.unwrap();
    let published_hash = before[0].seed_hash.clone().expect("seed hash published before the sale");
    assert!(before[0].seed.is_none(), "the seed stays secret until the draw");
    let (_, proof) = app.anon().get(&format!("/api/events/{event}/queue/draw")).await;
    assert_eq!(proof["seed_hash"], published_hash.as_str());
    assert!(proof["seed"].is_null(), "the seed stays secret until the draw");
    assert_eq!(before[0].prequeue, 40);

    // Paused, so this tick only draws (the simulated hour would otherwise make everyone look away).
    settings(&app, &admin, event, json!({ "paused": true })).await;
    let after = c.tick(opens + Duration::seconds(1)).await.unwrap();
    let seed = after[0].seed.clone().expect("seed revealed after the draw");
    assert_eq!(seed_hash(&seed), published_hash);
    let (_, proof) = app.anon().get(&format!("/api/events/{event}/queue/draw")).await;
    assert_eq!(proof["seed_hash"], published_hash.as_str());
    assert_eq!(proof["seed"], seed.as_str());
    assert_eq!(proof["drawn"], true);

    let seqs = app.state.queue.seqs(event, &visitors).await.unwrap();
    let seqs: Vec<i64> = seqs.into_iter().map(|s| s.expect("everyone placed")).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=40).collect::<Vec<i64>>(), "a permutation of 1..=40");
    let mut by_seed = visitors.clone();
    by_seed.sort_by_key(|v| draw_key(&seed, &participant(&v.to_string())));
    let mut by_seq: Vec<(i64, Uuid)> = seqs.iter().copied().zip(visitors.iter().copied()).collect();
    by_seq.sort();
    assert_eq!(
        by_seq.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        by_seed,
        "order recomputable from the seed"
    );
    assert_ne!(by_seed, visitors, "not arrival order");

    // The published participants are the visitors in queue order, hashed, and recompute from the seed
    // by the documented procedure (hex(sha256(seed ":" hex(sha256("participant:" visitor))))).
    let (s, page) = app.anon().get(&format!("/api/events/{event}/queue/draw/participants?limit=15")).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!((page["total"].as_i64(), page["sorted"].as_i64()), (Some(40), Some(40)));
    let sha = |t: String| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(t.as_bytes()))
    };
    let expected: Vec<String> = by_seed.iter().map(|v| sha(format!("participant:{v}"))).collect();
    let first: Vec<String> =
        page["participants"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    assert_eq!(first, expected[..15]);
    let mut resorted = expected.clone();
    resorted.sort_by_key(|p| sha(format!("{seed}:{p}")));
    assert_eq!(resorted, expected);
    // Anyone can run the check: the script pages through everything and finds a visitor's own place.
    let me = app.state.signer.visitor(event, by_seed[3], Utc::now().timestamp());
    let args = [app.url(""), event.to_string(), "--visitor-token".into(), me];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/verify-draw"))
            .args(args)
            .output()
            .expect("python3 runs scripts/verify-draw")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("the draw checks out") && stdout.contains("your place in the draw: 4"),
        "{stdout}"
    );

    // Later arrivals queue behind the drawn visitors, first come first served.
    let late = app.state.queue.join(event, Uuid::new_v4(), Utc::now().timestamp_millis()).await.unwrap();
    assert!(matches!(late, Standing::Waiting { seq: 41, ahead: 40 }), "{late:?}");
}

#[tokio::test]
async fn the_draw_participants_are_not_published_before_the_draw() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 10, 10).await;
    let (s, body) = app.anon().get(&format!("/api/events/{event}/queue/draw/participants")).await;
    assert_eq!(s, 409, "{body}");
    assert_error(&body, "draw_pending");
    let (s, _) = app.anon().get(&format!("/api/events/{event}/queue/draw/participants?limit=0")).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn joining_again_keeps_the_place_from_any_tab() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = open_event(&app, &admin, 10).await;
    let path = format!("/api/events/{event}/queue");
    let first = app.post(&path).send().await.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains(&format!("Path={path}")), "{cookie}");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["position"], 1);
    let token = body["visitor_token"].as_str().unwrap().to_owned();
    join_many(&app, event, 3).await;

    // Same visitor through the cookie (a reload) and through the query parameter (another tab).
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let again: Value =
        app.post(&path).header("cookie", &cookie_pair).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["position"], 1);
    let tab: Value =
        app.post(&format!("{path}?visitor_token={token}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tab["position"], 1);
    let status: Value =
        app.get(&format!("{path}/status?visitor_token={token}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["status"], "waiting");
    assert_eq!(status["position"], 1);
    // A newcomer is behind everyone.
    let (_, newcomer) = app.anon().post_empty(&path).await;
    assert_eq!(newcomer["position"], 5);
}

#[tokio::test]
async fn two_controllers_never_admit_faster_than_the_rate_or_beyond_max_active() {
    let (app, admin) = spawn_with_admin().await;
    let (event, a, t0) = open_event(&app, &admin, 20).await;
    let b = controller(&app);
    join_many(&app, event, 300).await;
    let mut admitted = Vec::new();
    for s in 1..=5 {
        let at = t0 + Duration::seconds(s);
        let (x, y) = tokio::join!(tick(&a, event, at), tick(&b, event, at));
        admitted.extend(x);
        admitted.extend(y);
    }
    assert_eq!(admitted.len(), 100, "5 s at 20/s, shared by both controllers");
    assert_eq!(admitted.iter().collect::<HashSet<_>>().len(), 100, "nobody admitted twice");

    settings(&app, &admin, event, json!({ "admission_rate_per_sec": 1000, "max_active": 130 })).await;
    let at = t0 + Duration::seconds(7);
    let (x, y) = tokio::join!(tick(&a, event, at), tick(&b, event, at));
    assert_eq!(x.len() + y.len(), 30, "only up to max_active admitted buyers at once");
    let stats = app.state.queue.stats(event, at.timestamp_millis()).await.unwrap();
    assert_eq!(stats.active, 130);
}

#[tokio::test]
async fn pause_stops_admission_and_resume_continues_in_order_without_a_burst() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 5).await;
    let visitors = join_many(&app, event, 20).await;
    assert_eq!(tick(&c, event, t0 + Duration::seconds(1)).await, visitors[..5]);
    settings(&app, &admin, event, json!({ "paused": true })).await;
    assert!(tick(&c, event, t0 + Duration::seconds(2)).await.is_empty());
    assert!(tick(&c, event, t0 + Duration::seconds(3)).await.is_empty());
    settings(&app, &admin, event, json!({ "paused": false })).await;
    // One second at the rate, in queue order: not the three seconds' worth saved up while paused.
    assert_eq!(tick(&c, event, t0 + Duration::seconds(4)).await, visitors[5..10]);
    assert_eq!(tick(&c, event, t0 + Duration::seconds(5)).await, visitors[10..15]);
}

#[tokio::test]
async fn a_visitor_away_longer_than_the_grace_period_is_skipped_and_told() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 10).await;
    settings(&app, &admin, event, json!({ "presence_grace_secs": 5 })).await;
    let v = join_many(&app, event, 3).await;
    // A and C keep a socket or poll going; B closed its tab.
    let later = t0 + Duration::seconds(9);
    app.state.queue.touch(event, &[v[0], v[2]], later.timestamp_millis()).await.unwrap();
    let admitted = tick(&c, event, t0 + Duration::seconds(10)).await;
    assert_eq!(admitted, vec![v[0], v[2]]);
    let stats = app.state.queue.stats(event, later.timestamp_millis()).await.unwrap();
    assert_eq!(stats.left_total, 1);
    let standing = app.state.queue.standing(event, v[1], later.timestamp_millis()).await.unwrap();
    assert!(matches!(standing, Standing::Left { .. }), "{standing:?}");
    // A short blip within the grace period does not cost the place.
    let w = join_many(&app, event, 1).await[0];
    app.state.queue.touch(event, &[w], (t0 + Duration::seconds(12)).timestamp_millis()).await.unwrap();
    assert_eq!(tick(&c, event, t0 + Duration::seconds(15)).await, vec![w]);
}

#[tokio::test]
async fn a_rate_change_applies_at_the_next_tick() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 2).await;
    join_many(&app, event, 50).await;
    assert_eq!(tick(&c, event, t0 + Duration::seconds(1)).await.len(), 2);
    settings(&app, &admin, event, json!({ "admission_rate_per_sec": 12 })).await;
    assert_eq!(tick(&c, event, t0 + Duration::seconds(2)).await.len(), 12);
}

#[tokio::test]
async fn an_admission_token_is_bound_single_use_and_unforgeable() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 10).await;
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
    let visitor_token = joined["visitor_token"].as_str().unwrap();
    let visitor = app.state.signer.verify_visitor(visitor_token, event).unwrap();
    tick(&c, event, t0 + Duration::seconds(1)).await;
    let (s, status) =
        app.anon().get(&format!("/api/events/{event}/queue/status?visitor_token={visitor_token}")).await;
    assert_eq!(s, 200);
    assert_eq!(status["status"], "admitted");
    let token = status["messages"][0]["admission_token"].as_str().unwrap();

    let claims = app.state.signer.verify_admission(token, event, visitor).unwrap();
    assert!(app.state.signer.verify_admission(token, event, Uuid::new_v4()).is_err(), "bound to the visitor");
    assert!(app.state.signer.verify_admission(token, Uuid::new_v4(), visitor).is_err(), "bound to the event");
    let forged = waiting_room::tokens::Signer::new(b"not-the-deployment-secret-at-all").admission(
        event,
        visitor,
        claims.seq,
        Utc::now().timestamp(),
        Utc::now().timestamp_millis() + 60_000,
    );
    assert!(app.state.signer.verify_admission(&forged, event, visitor).is_err(), "forged");
    let expired = app.state.signer.admission(
        event,
        visitor,
        claims.seq,
        Utc::now().timestamp() - 100,
        Utc::now().timestamp_millis() - 5_000,
    );
    assert!(app.state.signer.verify_admission(&expired, event, visitor).is_err(), "expired");
}

#[tokio::test]
async fn queue_calls_refuse_missing_forged_and_foreign_credentials() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = open_event(&app, &admin, 10).await;
    let (other, _, _) = app.published_event(&admin, 10, 10).await;
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{other}/queue")).await;
    let foreign = joined["visitor_token"].as_str().unwrap();
    for query in ["".to_owned(), "?visitor_token=garbage".to_owned(), format!("?visitor_token={foreign}")] {
        let (s, body) = app.anon().get(&format!("/api/events/{event}/queue/status{query}")).await;
        assert_eq!(s, 401, "{query}");
        assert_error(&body, "unauthorized");
        let resp = app.get(&format!("/api/events/{event}/queue/sse{query}")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    app.expect(404, "POST", &format!("/api/events/{}/queue", Uuid::new_v4()), None, None).await;
    let (s, draft) = app
        .by(&admin)
        .post("/api/admin/events", json!({ "name": "d", "venue": "v", "starts_at": "2030-01-01T00:00:00Z" }))
        .await;
    assert_eq!(s, 201);
    let (s, _) = app.anon().post_empty(&format!("/api/events/{}/queue", draft["id"].as_str().unwrap())).await;
    assert_eq!(s, 404, "drafts have no queue");
    let (s, _) = app
        .by(&admin)
        .patch(
            &format!("/api/admin/events/{other}"),
            json!({ "sale_opens_at": "2020-01-01T00:00:00Z", "sale_closes_at": "2021-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(s, 200);
    let body = app.expect(409, "POST", &format!("/api/events/{other}/queue"), None, None).await;
    assert_error(&body, "sale_closed");
}

/// Reads JSON text frames until one of `kind` arrives.
async fn next_of_kind<S>(ws: &mut S, kind: &str) -> Value
where
    S: futures::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn visitors_on_either_of_two_gateways_receive_their_admission_over_websocket() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 10).await;
    let mut config = e2e::test_config(&app.db_name, &app.redis_prefix, &e2e::Options::default());
    config.migrate_on_start = false;
    config.jwt_secret = app.state.config.jwt_secret.clone();
    let second = gateway::Application::build(config).await.unwrap();
    let second_addr = second.local_addr();
    tokio::spawn(second.run_until(std::future::pending()));

    let mut sockets = Vec::new();
    for addr in [app.addr, second_addr] {
        let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
        let token = joined["visitor_token"].as_str().unwrap().to_owned();
        let url = format!("ws://{addr}/api/events/{event}/queue/ws?visitor_token={token}");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let first = next_of_kind(&mut ws, "position").await;
        assert!(first["position"].as_i64().unwrap() >= 1);
        sockets.push((ws, app.state.signer.verify_visitor(&token, event).unwrap()));
    }
    tick(&c, event, t0 + Duration::seconds(1)).await;
    for (ws, visitor) in &mut sockets {
        let admitted = next_of_kind(ws, "admitted").await;
        let token = admitted["admission_token"].as_str().unwrap();
        app.state.signer.verify_admission(token, event, *visitor).expect("a valid token for this visitor");
        ws.send(tokio_tungstenite::tungstenite::Message::Close(None)).await.ok();
    }
}

#[tokio::test]
async fn a_waiting_visitor_sees_its_position_and_stock_move_over_websocket() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 2).await;
    join_many(&app, event, 5).await;
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
    assert_eq!(joined["position"], 6);
    let token = joined["visitor_token"].as_str().unwrap();
    let url = format!("ws://{}/api/events/{event}/queue/ws?visitor_token={token}", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_of_kind(&mut ws, "position").await["position"], 6);
    let stock = next_of_kind(&mut ws, "stock").await;
    assert_eq!(stock["tickets_remaining"], 1000);
    assert_eq!(stock["sold_out"], false);
    tick(&c, event, t0 + Duration::seconds(1)).await;
    let moved = next_of_kind(&mut ws, "position").await;
    assert_eq!(moved["position"], 4);
    assert_eq!(moved["people_ahead"], 3);
    assert!(moved["eta_secs"]["max"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn a_visitor_waits_and_is_admitted_over_server_sent_events() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 10).await;
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
    let token = joined["visitor_token"].as_str().unwrap();
    let resp = app
        .get(&format!("/api/events/{event}/queue/sse?visitor_token={token}"))
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let mut ticked = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("event: admitted") {
        let chunk =
            tokio::time::timeout_at(deadline, body.next()).await.expect("in time").expect("open").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !ticked && text.contains("event: position") {
            ticked = true;
            tick(&c, event, t0 + Duration::seconds(1)).await;
        }
    }
    let data = text
        .split("\n\n")
        .find(|e| e.contains("event: admitted"))
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .unwrap();
    let admitted: Value = serde_json::from_str(data).unwrap();
    assert!(admitted["admission_token"].as_str().unwrap().len() > 40);
}

#[tokio::test]
async fn the_sale_opening_is_moved_from_the_waiting_room_settings() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 10, 10).await;
    let opens = "2031-05-01T03:00:00Z";
    let (s, body) = app
        .by(&admin)
        .put(&format!("/api/admin/events/{event}/waiting-room"), json!({ "sale_opens_at": opens }))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["sale_opens_at"], opens);
    let (_, public) = app.anon().get(&format!("/api/events/{event}")).await;
    assert_eq!(public["sale_opens_at"], opens);
    // Arrivals now wait for the draw.
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
    assert_eq!(joined["status"], "pre_queue");
    // An opening after the close is refused and changes nothing.
    let (s, _) = app
        .by(&admin)
        .patch(&format!("/api/admin/events/{event}"), json!({ "sale_closes_at": "2031-06-01T00:00:00Z" }))
        .await;
    assert_eq!(s, 200);
    let (s, body) = app
        .by(&admin)
        .put(
            &format!("/api/admin/events/{event}/waiting-room"),
            json!({ "sale_opens_at": "2031-07-01T00:00:00Z", "paused": true }),
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"]["code"], "window_conflict");
    let (_, now) = app.by(&admin).get(&format!("/api/admin/events/{event}/waiting-room")).await;
    assert_eq!(now["sale_opens_at"], opens);
    assert_eq!(now["paused"], false, "the refused change was rolled back whole");
}

#[tokio::test]
async fn when_tickets_sell_out_every_waiting_visitor_is_told_and_admission_stops() {
    let (app, admin) = spawn_with_admin().await;
    let (event, c, t0) = open_event(&app, &admin, 5).await;
    join_many(&app, event, 3).await;
    let (_, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
    let token = joined["visitor_token"].as_str().unwrap();
    let url = format!("ws://{}/api/events/{event}/queue/ws?visitor_token={token}", app.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    next_of_kind(&mut ws, "position").await;
    next_of_kind(&mut ws, "stock").await;
    sqlx::query("update ticket_categories set sold = quota where event_id = $1")
        .bind(event)
        .execute(&app.db)
        .await
        .unwrap();
    assert!(
        tick(&c, event, t0 + Duration::seconds(1)).await.is_empty(),
        "nobody admitted into a sold-out sale"
    );
    let position = next_of_kind(&mut ws, "position").await;
    assert_eq!(position["likely_sold_out"], true);
    let stock = next_of_kind(&mut ws, "stock").await;
    assert_eq!(stock["sold_out"], true);
    assert_eq!(stock["tickets_remaining"], 0);
}

#[tokio::test]
async fn joins_are_rate_limited_per_address() {
    let app = e2e::spawn_app_with(e2e::Options {
        configure: |c| c.join_per_ip_per_min = 3,
        ..e2e::Options::default()
    })
    .await;
    let admin = app.admin_token().await;
    let (event, _, _) = open_event(&app, &admin, 5).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let resp = app.post(&format!("/api/events/{event}/queue")).send().await.unwrap();
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
        codes.push(resp.status().as_u16());
    }
    assert_eq!(codes, vec![200, 200, 200, 429, 429]);
}

/// Joins `n` new visitors over HTTP; their (status, position) answers in order.
async fn join_http(app: &TestApp, event: Uuid, n: usize) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let body = app.expect(200, "POST", &format!("/api/events/{event}/queue"), None, None).await;
        out.push((body["status"].as_str().unwrap().to_owned(), body["position"].as_i64()));
    }
    out
}

#[tokio::test]
async fn after_the_opening_a_join_gets_its_place_at_once_even_paused_and_before_any_tick() {
    let (app, admin) = spawn_with_admin().await;
    // On sale since long ago; paused right after publishing; no controller has ever ticked for it.
    let (event, _, _) = app.published_event(&admin, 100, 10).await;
    settings(&app, &admin, event, json!({ "paused": true })).await;
    let answers = join_http(&app, event, 30).await;
    let expected: Vec<(String, Option<i64>)> = (1..=30).map(|p| ("waiting".to_owned(), Some(p))).collect();
    assert_eq!(answers, expected, "first come, first served, positions at join time");
}

#[tokio::test]
async fn joins_in_the_second_after_the_opening_queue_behind_the_drawn_early_arrivals() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 100, 10).await;
    let opens = opening_in(&app, &admin, event, Duration::milliseconds(1_500)).await;
    settings(&app, &admin, event, json!({ "paused": true })).await;
    // Five arrive before the opening: the pre-queue, no place yet.
    let early = join_http(&app, event, 5).await;
    assert!(early.iter().all(|(s, p)| s == "pre_queue" && p.is_none()), "{early:?}");
    let wait = (opens - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    // In the second after the opening, paused, no tick: the draw places the five first, then each new
    // arrival gets the next place.
    let late = join_http(&app, event, 30).await;
    let expected: Vec<(String, Option<i64>)> = (6..=35).map(|p| ("waiting".to_owned(), Some(p))).collect();
    assert_eq!(late, expected);
    let (_, proof) = app.anon().get(&format!("/api/events/{event}/queue/draw/participants")).await;
    assert_eq!((proof["sorted"].as_i64(), proof["total"].as_i64()), (Some(5), Some(5)), "{proof}");
}

#[tokio::test]
async fn the_admission_preview_forecasts_from_the_live_queue_and_stock_and_changes_nothing() {
    let (app, admin) = spawn_with_admin().await;
    let (event, _, _) = app.published_event(&admin, 30, 10).await;
    let settings = format!("/api/admin/events/{event}/waiting-room");
    let (s, body) =
        app.by(&admin).put(&settings, json!({ "paused": true, "admission_rate_per_sec": 5 })).await;
    assert_eq!(s, 200, "{body}");
    for _ in 0..50 {
        let (s, joined) = app.anon().post_empty(&format!("/api/events/{event}/queue")).await;
        assert_eq!(s, 200, "{joined}");
    }

    // Paused at 5/s, as it is: the 50 clear in 10 s once resumed.
    let (s, now) = app.by(&admin).get(&format!("{settings}/preview")).await;
    assert_eq!(s, 200, "{now}");
    assert_eq!((now["waiting"].as_i64(), now["clears_in_secs"].as_i64()), (Some(50), Some(10)));
    assert!(
        now["summary"].as_str().unwrap().starts_with("admission is paused; once resumed, at 5/s"),
        "{now}"
    );

    // Unpaused at 10/s: 50 people in 5 s; 30 tickets at one per order and order per admission so far
    // go near position 30, 3 s in.
    app.by(&admin).put(&settings, json!({ "paused": false, "admission_rate_per_sec": 1 })).await;
    app.by(&admin).put(&settings, json!({ "paused": true })).await;
    let (s, p) =
        app.by(&admin).get(&format!("{settings}/preview?admission_rate_per_sec=10&max_active=100")).await;
    assert_eq!(s, 200, "{p}");
    let waiting = p["waiting"].as_i64().unwrap();
    assert!((45..=50).contains(&waiting), "{p}");
    assert_eq!(p["admission_rate_per_sec"], 10);
    assert_eq!(p["tickets_remaining"], 30);
    assert_eq!(p["sold_out_near_position"], 30);
    assert!(
        p["summary"].as_str().unwrap().contains("the 30 tickets are likely gone near position 30"),
        "{p}"
    );

    // Nothing was applied; bad values and other roles are refused.
    let (_, applied) = app.by(&admin).get(&settings).await;
    assert_eq!(applied["admission_rate_per_sec"], 1);
    let (s, _) = app.by(&admin).get(&format!("{settings}/preview?admission_rate_per_sec=0")).await;
    assert_eq!(s, 422);
    let (s, _) = app.by(&admin).get(&format!("{settings}/preview?admission_rate_per_sec=ten")).await;
    assert_eq!(s, 400);
    let (buyer, _) = app.register("preview@kampus.ac.id").await;
    let (s, _) = app.by(&buyer).get(&format!("{settings}/preview")).await;
    assert_eq!(s, 403);
}
