//! Abuse at the edge: clients that trickle headers or bodies, send oversized headers, spoof
//! `X-Forwarded-For` to dodge per-address limits, or reach for another buyer's order. Each is refused
//! and the gateway goes on serving everyone else.

use std::time::{Duration, Instant};

use e2e::{Options, PayApp, TestApp, fast_processor, payments::*, spawn_app_with, spawn_app_with_midtrans};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn app_with(configure: fn(&mut gateway::config::Config)) -> TestApp {
    spawn_app_with(Options { configure, ..Options::default() }).await
}

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_at_the_header_deadline() {
    let app = app_with(|c| c.header_read_timeout_ms = 1_000).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    // One more header byte every 200 ms: always something new, never the end of the headers.
    let trickle = async {
        for _ in 0..50 {
            if slow.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), trickle).await;
    let answer = read_until_closed(&mut slow, Duration::from_secs(3)).await;
    assert!(answer.is_some(), "the connection was still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(8));
    // Everyone else is served as usual.
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_503_when_the_request_deadline_passes() {
    let app = app_with(|c| c.request_timeout_ms = 1_500).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = vec![0u8; 4096];
    let n =
        tokio::time::timeout(Duration::from_secs(5), reader.read(&mut got)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&got[..n]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    trickle.abort();
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_gateway_goes_on() {
    let app = e2e::spawn_app().await;
    let resp = app.get("/api/events").header("x-padding", "p".repeat(1024 * 1024)).send().await;
    match resp {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }
    let many = (0..500).fold(app.get("/api/events"), |r, i| r.header(format!("x-h{i}"), "v"));
    let resp = many.send().await;
    assert!(resp.as_ref().map_or(true, |r| r.status() == 431), "{resp:?}");
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}

/// Five joins of `event`'s queue, the i-th with `X-Forwarded-For: forwarded(i)`: their statuses.
async fn joins(app: &TestApp, event: uuid::Uuid, forwarded: impl Fn(usize) -> String) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..5 {
        let resp = app
            .post(&format!("/api/events/{event}/queue"))
            .header("x-forwarded-for", forwarded(i))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_does_not_dodge_the_per_address_limit() {
    // Not behind a proxy: the header is ignored and the socket's address is counted.
    let direct = app_with(|c| c.join_per_ip_per_min = 3).await;
    let admin = direct.admin_token().await;
    let (event, _, _) = direct.published_event(&admin, 10, 10).await;
    let spoofed = joins(&direct, event, |i| format!("10.0.0.{i}")).await;
    assert_eq!(spoofed, [200, 200, 200, 429, 429]);

    // Behind a trusted proxy: the proxy's own hop (the last) counts, not what the client wrote before it.
    let proxied = app_with(|c| {
        c.join_per_ip_per_min = 3;
        c.trust_forwarded_for = true;
    })
    .await;
    let admin = proxied.admin_token().await;
    let (event, _, _) = proxied.published_event(&admin, 10, 10).await;
    let spoofed = joins(&proxied, event, |i| format!("10.0.0.{i}, 203.0.113.7")).await;
    assert_eq!(spoofed, [200, 200, 200, 429, 429]);
    // Another real client behind the same proxy has its own allowance.
    let other = proxied
        .post(&format!("/api/events/{event}/queue"))
        .header("x-forwarded-for", "203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn one_buyer_cannot_read_pay_cancel_or_fetch_the_tickets_of_anothers_order() {
    let PayApp { app, midtrans, .. } = spawn_app_with_midtrans().await;
    let stop = app.webhook_processor(fast_processor()).await;
    let (paid, _) = paid_order(&app, &midtrans).await;
    let (_, other_pending) = {
        let s = setup(&app, 10, 10).await;
        (s.token.clone(), s.order)
    };
    let (_, intruder) = app.quick_buyer().await;
    for order in [paid.order, other_pending] {
        app.expect(404, "GET", &format!("/api/orders/{order}"), Some(&intruder), None).await;
        app.expect(404, "GET", &format!("/api/orders/{order}/tickets"), Some(&intruder), None).await;
        let (status, _) = start_payment(&app, &intruder, order, "intruder-key", json!({})).await;
        assert_eq!(status, 404);
        app.expect(404, "POST", &format!("/api/orders/{order}/cancel"), Some(&intruder), None).await;
    }
    // Nothing changed for the owners, and the intruder's own list is empty.
    assert_eq!(order_status(&app, paid.order).await, "paid");
    assert_eq!(order_status(&app, other_pending).await, "pending_payment");
    let mine = app.expect(200, "GET", "/api/orders", Some(&intruder), None).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(0), "{mine}");
    // A buyer cannot check tickets in either.
    let tickets =
        app.expect(200, "GET", &format!("/api/orders/{}/tickets", paid.order), Some(&paid.token), None).await;
    let code = tickets["tickets"][0]["code"].as_str().unwrap_or_else(|| panic!("{tickets}")).to_owned();
    app.expect(403, "POST", "/api/checkin", Some(&intruder), Some(json!({ "code": code }))).await;
    stop.cancel();
}
