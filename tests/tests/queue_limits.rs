//! One host cannot take thousands of places or sockets: new visitors are limited per address group (an
//! IPv4 address, an IPv6 /64), status polling per address and per visitor, push connections per visitor,
//! per address and per gateway; and an order result reaches its visitor's sockets only.

use std::time::Duration;

use e2e::{Options, TestApp, assert_error, spawn_app_with};
use gateway::queue::hub::{Hub, PushLimits, Refused};
use serde_json::Value;
use uuid::Uuid;

/// A published event and a gateway that trusts `X-Forwarded-For`, so each test can play many addresses.
async fn open(configure: fn(&mut gateway::config::Config)) -> (TestApp, Uuid) {
    let app = spawn_app_with(Options { configure, ..Options::default() }).await;
    let admin = app.admin_token().await;
    let (event, _, _) = app.published_event(&admin, 100, 10).await;
    (app, event)
}

async fn join_from(app: &TestApp, event: Uuid, address: &str, token: Option<&str>) -> (u16, Value) {
    let mut url = format!("/api/events/{event}/queue");
    if let Some(t) = token {
        url = format!("{url}?visitor_token={t}");
    }
    let resp = app.post(&url).header("x-forwarded-for", address).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Opens an SSE stream (kept open while the response lives).
async fn stream_from(app: &TestApp, event: Uuid, address: &str, token: &str) -> reqwest::Response {
    app.get(&format!("/api/events/{event}/queue/sse?visitor_token={token}"))
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn new_visitors_are_limited_per_address_and_per_ipv6_network() {
    let (app, event) = open(|c| {
        c.trust_forwarded_for = true;
        c.join_per_ip_per_min = 5;
    })
    .await;
    // Five new places from five addresses of one /64; the sixth is refused.
    let mut first = None;
    for i in 1..=5 {
        let (s, body) = join_from(&app, event, &format!("2001:db8:1:1::{i}"), None).await;
        assert_eq!(s, 200, "{body}");
        first.get_or_insert(body["visitor_token"].as_str().unwrap().to_owned());
    }
    let (s, body) = join_from(&app, event, "2001:db8:1:1:ffff::9", None).await;
    assert_eq!(s, 429, "{body}");
    assert_error(&body, "rate_limited");
    // Another network, and an IPv4 address, are not affected; a rejoin keeps its place and is let in.
    assert_eq!(join_from(&app, event, "2001:db8:1:2::1", None).await.0, 200);
    assert_eq!(join_from(&app, event, "203.0.113.5", None).await.0, 200);
    let (s, again) = join_from(&app, event, "2001:db8:1:1::1", first.as_deref()).await;
    assert_eq!(s, 200, "{again}");
}

#[tokio::test]
async fn status_polling_is_limited_per_visitor_and_per_address() {
    let (app, event) = open(|c| {
        c.trust_forwarded_for = true;
        c.status_per_visitor_per_min = 4;
        c.status_per_ip_per_min = 7;
    })
    .await;
    let (_, a) = join_from(&app, event, "198.51.100.1", None).await;
    let (_, b) = join_from(&app, event, "198.51.100.2", None).await;
    let poll = |token: Value, address: &'static str| {
        let url = format!("/api/events/{event}/queue/status?visitor_token={}", token.as_str().unwrap());
        let req = app.get(&url).header("x-forwarded-for", address);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(poll(a["visitor_token"].clone(), "198.51.100.1").await);
    }
    assert_eq!(codes, vec![200, 200, 200, 200, 429], "four a minute per visitor");
    // Another visitor polls on; one address as a whole meets its own limit (7: 5 counted so far).
    assert_eq!(poll(b["visitor_token"].clone(), "198.51.100.1").await, 200);
    assert_eq!(poll(b["visitor_token"].clone(), "198.51.100.1").await, 200);
    assert_eq!(poll(b["visitor_token"].clone(), "198.51.100.1").await, 429);
    assert_eq!(poll(b["visitor_token"].clone(), "198.51.100.2").await, 200);
}

#[tokio::test]
async fn a_visitor_holds_a_few_push_connections_and_an_address_a_bounded_number() {
    let (app, event) = open(|c| {
        c.trust_forwarded_for = true;
        c.push_per_visitor = 2;
        c.push_per_address = 3;
    })
    .await;
    let (_, v) = join_from(&app, event, "192.0.2.1", None).await;
    let v = v["visitor_token"].as_str().unwrap().to_owned();
    let one = stream_from(&app, event, "192.0.2.1", &v).await;
    let two = stream_from(&app, event, "192.0.2.1", &v).await;
    assert_eq!((one.status().as_u16(), two.status().as_u16()), (200, 200));
    let third = stream_from(&app, event, "192.0.2.1", &v).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    // The WebSocket counts the same.
    let ws = tokio_tungstenite::connect_async(format!(
        "ws://{}/api/events/{event}/queue/ws?visitor_token={v}",
        app.addr
    ))
    .await;
    assert!(ws.is_err(), "a third socket for one visitor is refused");

    // A second visitor from the same address takes the address's last connection; a third visitor there
    // is refused, one elsewhere is not.
    let (_, w) = join_from(&app, event, "192.0.2.1", None).await;
    let w = w["visitor_token"].as_str().unwrap().to_owned();
    let w_stream = stream_from(&app, event, "192.0.2.1", &w).await;
    assert_eq!(w_stream.status(), 200);
    let (_, x) = join_from(&app, event, "192.0.2.1", None).await;
    let x = x["visitor_token"].as_str().unwrap().to_owned();
    assert_eq!(stream_from(&app, event, "192.0.2.1", &x).await.status(), 429);
    let elsewhere = stream_from(&app, event, "192.0.2.77", &x).await;
    assert_eq!(elsewhere.status(), 200);

    // Closing a connection gives its place back.
    drop(one);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = stream_from(&app, event, "192.0.2.1", &v).await;
        if again.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "a closed connection was never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((two, w_stream, elsewhere));
}

#[tokio::test]
async fn a_full_gateway_turns_new_push_connections_away_with_retry_after() {
    let (app, event) = open(|c| {
        c.trust_forwarded_for = true;
        c.max_push_connections = 3;
    })
    .await;
    let mut open_streams = Vec::new();
    for i in 0..3 {
        let address = format!("203.0.113.{}", i + 1);
        let (_, v) = join_from(&app, event, &address, None).await;
        let resp = stream_from(&app, event, &address, v["visitor_token"].as_str().unwrap()).await;
        assert_eq!(resp.status(), 200);
        open_streams.push(resp);
    }
    let (_, v) = join_from(&app, event, "203.0.113.50", None).await;
    let refused = stream_from(&app, event, "203.0.113.50", v["visitor_token"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_error(&body, "unavailable");
    assert_eq!(app.state.hub.connections(), 3);
}

#[tokio::test]
async fn an_order_result_reaches_only_its_own_visitors_sockets() {
    let signer = waiting_room::tokens::Signer::new(b"0123456789abcdef0123456789abcdef");
    let hub = Hub::new(signer, PushLimits { per_visitor: 3, per_address: 1000, total: 10_000 });
    let event = Uuid::new_v4();
    let (buyer, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut others = Vec::new();
    for i in 0..500 {
        others.push(hub.register(event, if i % 2 == 0 { other } else { Uuid::new_v4() }, format!("a{i}")));
    }
    assert_eq!(others.iter().filter(|r| r.is_err()).count(), 247, "the other visitor holds at most 3");
    assert!(others.iter().filter_map(|r| r.as_ref().err()).all(|e| *e == Refused::VisitorFull));
    let (_tab1, mut rx1) = hub.register(event, buyer, "b".into()).unwrap();
    let (_tab2, mut rx2) = hub.register(event, buyer, "b".into()).unwrap();
    let request_id = Uuid::new_v4();
    hub.deliver(pipeline::orders::OrderResult {
        event,
        visitor: Some(buyer),
        user: Uuid::new_v4(),
        request_id,
        status: pipeline::states::RequestStatus::Confirmed,
        order_id: Some(Uuid::new_v4()),
        reason: None,
    });
    for rx in [&mut rx1, &mut rx2] {
        let got = serde_json::to_value(rx.try_recv().expect("both tabs get the result")).unwrap();
        assert_eq!(got["type"], "order_result");
        assert_eq!(got["request_id"], request_id.to_string());
    }
    for (_, mut rx) in others.into_iter().flatten() {
        assert!(rx.try_recv().is_err(), "another visitor's socket got the result");
    }
}
