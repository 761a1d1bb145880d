//! End-to-end checks of the fake over real HTTP: a fake on port 0, a small axum receiver on port 0
//! recording notifications, and reqwest as the merchant backend / the payer's browser.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fake_midtrans::{Config, Delivery, FakeMidtrans, signature_key};
use serde_json::{Value, json};

const KEY: &str = "SB-Mid-server-TESTKEY123";

// ---------------------------------------------------------------- helpers

#[derive(Clone, Default)]
struct Receiver {
    inner: Arc<Mutex<Received>>,
}

#[derive(Default)]
struct Received {
    /// Statuses to answer with, in order; 200 once empty.
    script: VecDeque<u16>,
    /// (User-Agent, Content-Type, body) of each POST.
    got: Vec<(String, String, Value)>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.inner.lock().unwrap().script = script.iter().copied().collect();
        let app = Router::new().route("/notify", post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.inner.lock().unwrap().got.iter().map(|(_, _, b)| b.clone()).collect()
    }

    fn statuses(&self) -> Vec<String> {
        self.bodies().iter().map(|b| b["transaction_status"].as_str().unwrap().to_owned()).collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        wait_until(|| self.bodies().len() >= n).await;
        self.bodies()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let mut inner = r.inner.lock().unwrap();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    inner.got.push((header("user-agent"), header("content-type"), serde_json::from_str(&body).unwrap()));
    StatusCode::from_u16(inner.script.pop_front().unwrap_or(200)).unwrap()
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..250 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within 5 s");
}

async fn fake() -> FakeMidtrans {
    FakeMidtrans::start(([127, 0, 0, 1], 0).into(), Config::new(KEY).fast_retries()).await.unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn auth() -> String {
    format!("Basic {}", STANDARD.encode(format!("{KEY}:")))
}

async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let response = client().post(url).header("Authorization", auth()).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn get_json(url: &str) -> (u16, Value) {
    let response = client().get(url).header("Authorization", auth()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn snap_body(order_id: &str, gross: i64) -> Value {
    json!({"transaction_details": {"order_id": order_id, "gross_amount": gross}})
}

fn charge_body(order_id: &str, gross: i64) -> Value {
    json!({"payment_type": "qris", "transaction_details": {"order_id": order_id, "gross_amount": gross}})
}

async fn snap(fake: &FakeMidtrans, body: &Value) -> (u16, Value) {
    post_json(&format!("{}/transactions", fake.snap_base_url()), body).await
}

async fn charge(fake: &FakeMidtrans, order_id: &str, gross: i64) -> Value {
    let (status, body) = post_json(&format!("{}/v2/charge", fake.url()), &charge_body(order_id, gross)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status_code"], "201", "{body}");
    body
}

async fn status_of(fake: &FakeMidtrans, id: &str) -> (u16, Value) {
    get_json(&format!("{}/v2/{id}/status", fake.url())).await
}

fn assert_signed(body: &Value) {
    let expected = signature_key(
        body["order_id"].as_str().unwrap(),
        body["status_code"].as_str().unwrap(),
        body["gross_amount"].as_str().unwrap(),
        KEY,
    );
    assert_eq!(body["signature_key"], expected.as_str(), "bad signature in {body}");
}

// ---------------------------------------------------------------- Snap

#[tokio::test]
async fn snap_create_validates_like_midtrans() {
    let fake = fake().await;
    let url = format!("{}/transactions", fake.snap_base_url());

    for auth_header in [None, Some(format!("Basic {}", STANDARD.encode("SB-Mid-server-WRONG:")))] {
        let mut request = client().post(&url).json(&snap_body("AUTH-1", 1000));
        if let Some(h) = auth_header {
            request = request.header("Authorization", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error_messages": ["Access denied due to unauthorized transaction, please check client or server key"]})
        );
    }
    let (status, body) = get_json(&format!("{}/v2/nothing/status", fake.url())).await;
    assert_eq!(status, 404, "{body}");
    let response = client().get(format!("{}/v2/nothing/status", fake.url())).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], "401");

    let mismatch = json!({
        "transaction_details": {"order_id": "SNAP-1", "gross_amount": 150000},
        "item_details": [{"id": "T1", "price": 75000, "quantity": 1, "name": "Ticket"}],
    });
    let (status, body) = snap(&fake, &mismatch).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_messages"][0],
        "transaction_details.gross_amount is not equal to the sum of item_details"
    );

    for bad in [
        json!({"transaction_details": {"order_id": "SNAP-1", "gross_amount": 10000.5}}),
        json!({"transaction_details": {"order_id": "X".repeat(51), "gross_amount": 10000}}),
        json!({"transaction_details": {"order_id": "SNAP#1", "gross_amount": 10000}}),
        json!({"transaction_details": {"order_id": "SNAP-1", "gross_amount": 0}}),
        json!({"transaction_details": {"order_id": "SNAP-1"}}),
        json!({"transaction_details": {"order_id": "SNAP-1", "gross_amount": 100},
               "item_details": [{"price": 100, "quantity": 0, "name": "Zero"}]}),
        json!({"transaction_details": {"order_id": "SNAP-1", "gross_amount": 100},
               "item_details": [{"price": 100, "quantity": 1, "name": "N".repeat(51)}]}),
        json!({"transaction_details": {"order_id": "SNAP-1", "gross_amount": 100},
               "expiry": {"unit": "fortnight", "duration": 1}}),
    ] {
        let (status, body) = snap(&fake, &bad).await;
        assert_eq!(status, 400, "{bad} gave {body}");
        assert!(body["error_messages"].as_array().is_some_and(|m| !m.is_empty()), "{body}");
    }
    assert!(fake.transactions().is_empty());

    let good = json!({
        "transaction_details": {"order_id": "SNAP-1", "gross_amount": 150000},
        "item_details": [{"id": "T1", "price": 75000, "quantity": 2, "name": "Ticket"}],
        "customer_details": {"first_name": "Budi", "email": "budi@example.com"},
        "expiry": {"unit": "minutes", "duration": 30},
        "callbacks": {"finish": "http://shop.test/finish"},
        "custom_field1": "seat-A1",
    });
    let (status, body) = snap(&fake, &good).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(token).is_ok());
    assert_eq!(body["redirect_url"], format!("{}/snap/v3/redirection/{token}", fake.url()));

    let tx = fake.transaction("SNAP-1").unwrap();
    assert_eq!(tx.status, None);
    assert_eq!(tx.gross_amount, 150000);
    assert_eq!(tx.snap_token.as_deref(), Some(token));
    assert_eq!(tx.finish_url.as_deref(), Some("http://shop.test/finish"));
    assert_eq!(tx.customer["first_name"], "Budi");
    assert_eq!(tx.items[0]["name"], "Ticket");
    let minutes = (tx.expires_at - tx.created_at).num_minutes();
    assert_eq!(minutes, 30);

    let (status, body) = snap(&fake, &snap_body("SNAP-1", 5000)).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"error_messages": ["transaction_details.order_id has already been taken"]}));

    // No method chosen yet: Core API does not know it.
    let (status, body) = status_of(&fake, "SNAP-1").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"status_code": "404", "status_message": "Transaction doesn't exist."}));

    // Default expiry is 24 h.
    let (status, _) = snap(&fake, &snap_body("SNAP-2", 5000)).await;
    assert_eq!(status, 201);
    let tx = fake.transaction("SNAP-2").unwrap();
    assert_eq!((tx.expires_at - tx.created_at).num_hours(), 24);
    assert_eq!(fake.api_calls("/snap/v1/transactions"), 14);
    assert_eq!(fake.api_calls("/v2/"), 3);
}

#[tokio::test]
async fn idempotency_key_replays_successful_answers() {
    let fake = fake().await;
    let url = format!("{}/transactions", fake.snap_base_url());
    let send = |key: &'static str, body: Value| {
        let url = url.clone();
        async move {
            let response = client()
                .post(&url)
                .header("Authorization", auth())
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        }
    };
    let (status, first) = send("key-1", snap_body("IDEM-1", 1000)).await;
    assert_eq!(status, 201);
    let (status, again) = send("key-1", snap_body("IDEM-OTHER", 99)).await;
    assert_eq!(status, 201);
    assert_eq!(first, again, "replay must be byte-for-byte");
    assert_eq!(fake.idempotent_replays(), 1);
    assert!(fake.transaction("IDEM-OTHER").is_none());

    // Failures are not stored: after an injected 500 the same key runs the request.
    fake.fail_next("/snap/v1/transactions", 1, 500);
    let (status, body) = send("key-2", snap_body("IDEM-2", 1000)).await;
    assert_eq!(status, 500);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["error_messages"].is_array(), "{body}");
    let (status, _) = send("key-2", snap_body("IDEM-2", 1000)).await;
    assert_eq!(status, 201);
    assert!(fake.transaction("IDEM-2").is_some());
    // Validation errors are not stored either.
    let (status, _) = send("key-3", snap_body("IDEM-3", 0)).await;
    assert_eq!(status, 400);
    let (status, _) = send("key-3", snap_body("IDEM-3", 10)).await;
    assert_eq!(status, 201);
    assert_eq!(fake.idempotent_replays(), 1);

    // Core API: a charge replayed does not charge twice.
    let charge_with_key = || {
        client()
            .post(format!("{}/v2/charge", fake.url()))
            .header("Authorization", auth())
            .header("Idempotency-Key", "charge-key")
            .json(&charge_body("IDEM-QR", 5000))
            .send()
    };
    let a = charge_with_key().await.unwrap().text().await.unwrap();
    let b = charge_with_key().await.unwrap().text().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(fake.idempotent_replays(), 2);
    assert_eq!(fake.api_calls("/v2/charge"), 2);
}

#[tokio::test]
async fn payment_page_pay_settles_notifies_and_redirects() {
    let fake = fake().await;
    let (receiver, notify_url) = Receiver::start(&[]).await;
    fake.set_notification_url(&notify_url);
    let body = json!({
        "transaction_details": {"order_id": "PAGE-1", "gross_amount": 150000},
        "item_details": [{"id": "VIP", "price": 100000, "quantity": 1, "name": "VIP seat"},
                         {"id": "REG", "price": 25000, "quantity": 2, "name": "Regular seat"}],
        "callbacks": {"finish": "http://shop.test/finish?lang=id"},
    });
    let (_, created) = snap(&fake, &body).await;
    let redirect_url = created["redirect_url"].as_str().unwrap();

    let page = client().get(redirect_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for needle in [
        "Fake Midtrans (test payments)",
        "PAGE-1",
        "Rp 150.000",
        "VIP seat",
        "Regular seat",
        "Rp 25.000",
        " WIB",
        "<button id=\"pay\">Pay now</button>",
        "<button id=\"deny\">Decline payment</button>",
        "<button id=\"expire\">Let it expire</button>",
    ] {
        assert!(html.contains(needle), "page lacks {needle:?}:\n{html}");
    }
    let token = created["token"].as_str().unwrap();
    assert!(html.contains(&format!("action=\"/snap/v3/redirection/{token}/pay\"")));
    assert!(!html.contains("<script"));

    let response = client().post(format!("{redirect_url}/pay")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "http://shop.test/finish?lang=id&order_id=PAGE-1&status_code=200&transaction_status=settlement"
    );

    let bodies = receiver.wait_for(2).await;
    assert_eq!(receiver.statuses(), ["pending", "settlement"]);
    for (ua, ct, _) in &receiver.inner.lock().unwrap().got {
        assert_eq!(ua, "Veritrans");
        assert_eq!(ct, "application/json");
    }
    let settlement = &bodies[1];
    assert_signed(settlement);
    assert_signed(&bodies[0]);
    assert_eq!(bodies[0]["status_code"], "201");
    assert_eq!(settlement["status_code"], "200");
    assert_eq!(settlement["gross_amount"], "150000.00");
    assert_eq!(settlement["payment_type"], "qris");
    assert_eq!(settlement["status_message"], "midtrans payment notification");
    assert_eq!(settlement["fraud_status"], "accept");
    assert_eq!(settlement["currency"], "IDR");
    assert_eq!(settlement["transaction_type"], "on-us");
    assert_eq!(settlement["acquirer"], "gopay");
    assert_eq!(settlement["issuer"], "gopay");
    assert_eq!(settlement["merchant_id"], "G-FAKE-001");
    assert!(settlement["settlement_time"].is_string());

    let (status, body) = status_of(&fake, "PAGE-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["transaction_status"], "settlement");
    assert_signed(&body);
    let (status, by_id) = status_of(&fake, settlement["transaction_id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(by_id["order_id"], "PAGE-1");

    // Final now: the page shows the status, no buttons; a second click changes nothing.
    let html = client().get(redirect_url).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("id=\"pay\""), "{html}");
    assert!(html.contains("settlement"));
    let response = client().post(format!("{redirect_url}/deny")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(fake.transaction("PAGE-1").unwrap().status.as_deref(), Some("settlement"));

    let response = client().get(format!("{}/snap/v3/redirection/nope", fake.url())).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn payment_page_deny_and_expire_without_finish_url() {
    let fake = fake().await;
    let (receiver, notify_url) = Receiver::start(&[]).await;
    fake.set_notification_url(notify_url);
    for (order, action, status) in [("DENY-1", "deny", "deny"), ("EXP-1", "expire", "expire")] {
        let (_, created) = snap(&fake, &snap_body(order, 20000)).await;
        let url = format!("{}/{action}", created["redirect_url"].as_str().unwrap());
        let response = client().post(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(html.contains(&format!("transaction_status {status}")), "{html}");
        let tx = fake.transaction(order).unwrap();
        assert_eq!(tx.status.as_deref(), Some(status));
        assert_eq!(tx.history, ["pending", status]);
    }
    receiver.wait_for(4).await;
    let bodies = receiver.bodies();
    let deny = bodies.iter().find(|b| b["transaction_status"] == "deny").unwrap();
    assert_eq!(deny["status_code"], "202");
    assert_signed(deny);
    let (status, body) = status_of(&fake, "EXP-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["status_code"], "407");
    assert_signed(&body);
}

// ---------------------------------------------------------------- Core API

#[tokio::test]
async fn qris_charge_answers_like_the_pos_sample() {
    let fake = fake().await;
    let (receiver, notify_url) = Receiver::start(&[]).await;
    fake.set_notification_url(notify_url);
    let body = charge(&fake, "QR-1", 275000).await;
    assert_eq!(body["status_message"], "QRIS transaction is created");
    assert_eq!(body["order_id"], "QR-1");
    assert_eq!(body["merchant_id"], "G-FAKE-001");
    assert_eq!(body["gross_amount"], "275000.00");
    assert_eq!(body["currency"], "IDR");
    assert_eq!(body["payment_type"], "qris");
    assert_eq!(body["transaction_status"], "pending");
    assert_eq!(body["fraud_status"], "accept");
    assert_eq!(body["acquirer"], "gopay");
    let transaction_id = body["transaction_id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(transaction_id).unwrap().get_version_num(), 4);
    let time_format = "%Y-%m-%d %H:%M:%S";
    let created =
        chrono::NaiveDateTime::parse_from_str(body["transaction_time"].as_str().unwrap(), time_format)
            .expect("transaction_time format");
    let expiry = chrono::NaiveDateTime::parse_from_str(body["expiry_time"].as_str().unwrap(), time_format)
        .expect("expiry_time format");
    assert_eq!((expiry - created).num_minutes(), 15);
    let utc_plus_7 = chrono::Utc::now().naive_utc() + chrono::Duration::hours(7);
    assert!((utc_plus_7 - created).num_seconds().abs() < 60, "transaction_time must be UTC+7");
    let actions = body["actions"].as_array().unwrap();
    assert_eq!(actions[0]["name"], "generate-qr-code");
    assert_eq!(actions[0]["method"], "GET");
    assert_eq!(actions[0]["url"], format!("{}/v2/qris/{transaction_id}/qr-code", fake.url()));
    assert_eq!(actions[1]["name"], "generate-qr-code-v2");
    let qr = body["qr_string"].as_str().unwrap();
    assert!(qr.starts_with("000201010212") && qr.contains("QR-1"), "{qr}");
    let tail = &qr[qr.len() - 8..];
    assert!(tail.starts_with("6304") && tail[4..].chars().all(|c| c.is_ascii_hexdigit()), "{qr}");

    let pending = &receiver.wait_for(1).await[0];
    assert_eq!(pending["transaction_status"], "pending");
    assert_eq!(pending["status_code"], "201");
    assert_signed(pending);

    // custom_expiry, duplicates, other payment types, validation.
    let mut with_expiry = charge_body("QR-2", 1000);
    with_expiry["custom_expiry"] = json!({"expiry_duration": 2, "unit": "hour"});
    let (_, body) = post_json(&format!("{}/v2/charge", fake.url()), &with_expiry).await;
    let tx = fake.transaction("QR-2").unwrap();
    assert_eq!((tx.expires_at - tx.transaction_time).num_minutes(), 120, "{body}");

    let (status, body) = post_json(&format!("{}/v2/charge", fake.url()), &charge_body("QR-1", 275000)).await;
    assert_eq!(status, 200);
    assert_eq!(body["status_code"], "406");
    assert!(body["status_message"].as_str().unwrap().starts_with("The request could not be completed"));

    let mut gopay = charge_body("QR-3", 1000);
    gopay["payment_type"] = json!("gopay");
    let (_, body) = post_json(&format!("{}/v2/charge", fake.url()), &gopay).await;
    assert_eq!(body["status_code"], "402");
    assert_eq!(body["status_message"], "Payment channel is not activated");

    let mut mismatch = charge_body("QR-4", 1000);
    mismatch["item_details"] = json!([{"price": 999, "quantity": 1, "name": "x"}]);
    let (status, body) = post_json(&format!("{}/v2/charge", fake.url()), &mismatch).await;
    assert_eq!(status, 400);
    assert_eq!(body["status_code"], "400");
    let mut decimal = charge_body("QR-6", 1);
    decimal["transaction_details"]["gross_amount"] = json!(10000.5);
    let (status, body) = post_json(&format!("{}/v2/charge", fake.url()), &decimal).await;
    assert_eq!((status, body["status_code"].as_str()), (400, Some("400")));

    // A cancelled order id may be charged again.
    post_json(&format!("{}/v2/QR-2/cancel", fake.url()), &json!({})).await;
    charge(&fake, "QR-2", 3000).await;
    assert_eq!(fake.transaction("QR-2").unwrap().gross_amount, 3000);
}

#[tokio::test]
async fn status_codes_for_each_state() {
    let fake = fake().await;
    let expect = async |id: &str, status: &str, fraud: &str, code: &str| {
        let (http, body) = status_of(&fake, id).await;
        assert_eq!(http, 200, "{body}");
        assert_eq!(body["transaction_status"], status, "{body}");
        assert_eq!(body["fraud_status"], fraud, "{body}");
        assert_eq!(body["status_code"], code, "{body}");
        assert_signed(&body);
    };
    charge(&fake, "ST-1", 10000).await;
    expect("ST-1", "pending", "accept", "201").await;
    fake.pay("ST-1").await.unwrap();
    expect("ST-1", "settlement", "accept", "200").await;
    fake.reverse("ST-1").await.unwrap();
    expect("ST-1", "deny", "accept", "202").await;
    assert!(fake.pay("ST-1").await.is_err());

    snap(&fake, &snap_body("ST-CARD", 10000)).await;
    fake.challenge("ST-CARD").await.unwrap();
    expect("ST-CARD", "capture", "challenge", "201").await;
    assert!(fake.pay("ST-CARD").await.is_err(), "a challenged capture cannot settle");
    fake.accept_challenge("ST-CARD").await.unwrap();
    expect("ST-CARD", "capture", "accept", "200").await;
    let (_, body) = status_of(&fake, "ST-CARD").await;
    assert_eq!(body["payment_type"], "credit_card");
    fake.pay("ST-CARD").await.unwrap();
    expect("ST-CARD", "settlement", "accept", "200").await;

    snap(&fake, &snap_body("ST-CH-DENY", 10000)).await;
    fake.challenge("ST-CH-DENY").await.unwrap();
    fake.deny("ST-CH-DENY").await.unwrap();
    expect("ST-CH-DENY", "deny", "deny", "202").await;

    charge(&fake, "ST-2", 10000).await;
    fake.expire("ST-2").await.unwrap();
    expect("ST-2", "expire", "accept", "407").await;
    charge(&fake, "ST-3", 10000).await;
    fake.deny("ST-3").await.unwrap();
    expect("ST-3", "deny", "accept", "202").await;
    assert!(fake.expire("ST-3").await.is_err());
    assert!(fake.pay("NOPE").await.is_err());

    // notification(): signed, nothing sent, nothing changed.
    let n = fake.notification("ST-3", "settlement", None).unwrap();
    assert_eq!(n["status_code"], "200");
    assert_signed(&n);
    let n = fake.notification("ST-3", "capture", Some("challenge")).unwrap();
    assert_eq!(n["status_code"], "201");
    assert_signed(&n);
    assert_eq!(fake.transaction("ST-3").unwrap().status.as_deref(), Some("deny"));
    assert!(fake.notification("NOPE", "settlement", None).is_none());
    // No URL configured: every notification stays in the log as not sent.
    let log = fake.deliveries();
    assert!(!log.is_empty());
    assert!(
        log.iter()
            .all(|d| d.url.is_none() && d.attempt == 0 && d.error.as_deref().unwrap().contains("not sent"))
    );
}

#[tokio::test]
async fn cancel_expire_and_refund_rules() {
    let fake = fake().await;
    let (receiver, notify_url) = Receiver::start(&[]).await;
    fake.set_notification_url(notify_url);
    let api = |path: &str| format!("{}/v2/{path}", fake.url());

    let (status, body) = post_json(&api("NOPE/cancel"), &json!({})).await;
    assert_eq!((status, body["status_code"].as_str()), (404, Some("404")));

    charge(&fake, "CX-1", 50000).await;
    let (status, body) = post_json(&api("CX-1/cancel"), &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["status_code"], "200");
    assert_eq!(body["transaction_status"], "cancel");
    let (_, body) = post_json(&api("CX-1/cancel"), &json!({})).await;
    assert_eq!(body["status_code"], "412");
    assert_eq!(body["status_message"], "Transaction status cannot be updated");
    let (_, body) = post_json(&api("CX-1/expire"), &json!({})).await;
    assert_eq!(body["status_code"], "412");

    charge(&fake, "EX-1", 50000).await;
    let (_, body) = post_json(&api("EX-1/expire"), &json!({})).await;
    assert_eq!(body["status_code"], "407");
    assert_eq!(body["transaction_status"], "expire");

    // Refunds.
    charge(&fake, "RF-1", 150000).await;
    let (_, body) = post_json(&api("RF-1/refund"), &json!({"refund_key": "rk-0", "amount": 1000})).await;
    assert_eq!(body["status_code"], "412", "pending cannot be refunded");
    fake.pay("RF-1").await.unwrap();
    let (_, body) = post_json(&api("RF-1/expire"), &json!({})).await;
    assert_eq!(body["status_code"], "412", "only pending can expire");
    let (_, body) = post_json(&api("RF-1/cancel"), &json!({})).await;
    assert_eq!(body["status_code"], "412", "settlement cannot be cancelled");

    let partial = json!({"refund_key": "rk-1", "amount": 50000, "reason": "seat change"});
    let (status, first) = post_json(&api("RF-1/refund"), &partial).await;
    assert_eq!(status, 200);
    assert_eq!(first["status_code"], "200");
    assert_eq!(first["status_message"], "Success, refund request is approved");
    assert_eq!(first["transaction_status"], "partial_refund");
    assert_eq!(first["refund_amount"], "50000.00");
    assert_eq!(first["refund_key"], "rk-1");
    assert_eq!(first["gross_amount"], "150000.00");
    let (_, again) = post_json(&api("RF-1/refund"), &partial).await;
    assert_eq!(again, first);
    let tx = fake.transaction("RF-1").unwrap();
    assert_eq!((tx.refunded, tx.refund_keys.clone()), (50000, vec!["rk-1".to_owned()]));

    let (_, body) = post_json(&api("RF-1/refund"), &json!({"refund_key": "rk-2", "amount": 100001})).await;
    assert_eq!(body["status_code"], "414");
    let (_, body) = post_json(&api("RF-1/refund"), &json!({"refund_key": "rk-3"})).await;
    assert_eq!(body["transaction_status"], "refund");
    assert_eq!(body["refund_amount"], "150000.00");
    let (_, body) = post_json(&api("RF-1/refund"), &json!({"refund_key": "rk-4", "amount": 1})).await;
    assert_eq!(body["status_code"], "412");

    // cancel + expire: one notification each; pending + settlement; two per refund.
    let bodies = receiver.wait_for(10).await;
    let statuses = receiver.statuses();
    let of = |order: &str| -> Vec<&Value> { bodies.iter().filter(|b| b["order_id"] == order).collect() };
    let cancel = of("CX-1").into_iter().find(|b| b["transaction_status"] == "cancel").unwrap();
    assert_eq!(cancel["status_code"], "202");
    assert_signed(cancel);
    let expire = of("EX-1").into_iter().find(|b| b["transaction_status"] == "expire").unwrap();
    assert_eq!(expire["status_code"], "202");
    let refunds: Vec<&Value> = of("RF-1").into_iter().filter(|b| b["refunds"].is_array()).collect();
    assert_eq!(refunds.len(), 4, "{statuses:?}");
    assert_eq!(refunds[0]["transaction_status"], "partial_refund");
    assert_eq!(refunds[0]["refund_amount"], "50000.00");
    assert!(refunds[0]["refunds"][0].get("bank_confirmed_at").is_none());
    assert!(refunds[1]["refunds"][0]["bank_confirmed_at"].is_string());
    assert_eq!(refunds[1]["refunds"][0]["refund_key"], "rk-1");
    assert_eq!(refunds[1]["refunds"][0]["reason"], "seat change");
    assert_eq!(refunds[3]["transaction_status"], "refund");
    assert_eq!(refunds[3]["refund_amount"], "150000.00");
    assert!(refunds[2]["refunds"][1].get("bank_confirmed_at").is_none());
    assert!(refunds[3]["refunds"][1]["bank_confirmed_at"].is_string());
    for r in refunds {
        assert_eq!(r["status_code"], "200");
        assert_signed(r);
    }
    let (_, status) = status_of(&fake, "RF-1").await;
    assert_eq!(status["refund_amount"], "150000.00");
    assert_eq!(status["refunds"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------- delivery

#[tokio::test]
async fn retries_follow_midtrans_counts() {
    let fake = fake().await;
    let (always_503, url_503) = Receiver::start(&[503; 10]).await;
    let (twice_503, url_twice) = Receiver::start(&[503, 503]).await;
    let (once_500, url_500) = Receiver::start(&[500; 10]).await;
    let (redirect, url_302) = Receiver::start(&[302; 10]).await;

    for (order, url) in
        [("R-503", &url_503), ("R-TWICE", &url_twice), ("R-500", &url_500), ("R-302", &url_302)]
    {
        let response = client()
            .post(format!("{}/v2/charge", fake.url()))
            .header("Authorization", auth())
            .header("X-Override-Notification", url.as_str())
            .json(&charge_body(order, 1000))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    always_503.wait_for(5).await;
    twice_503.wait_for(3).await;
    once_500.wait_for(2).await;
    redirect.wait_for(1).await;
    // Longest remaining schedule would be 800 ms; wait past it and check nothing more came.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(always_503.bodies().len(), 5, "503: 1 attempt + 4 retries");
    assert_eq!(twice_503.bodies().len(), 3);
    assert_eq!(once_500.bodies().len(), 2, "500: 1 retry");
    assert_eq!(redirect.bodies().len(), 1, "302: no retry");

    let log: Vec<_> = fake.deliveries().into_iter().filter(|d| d.order_id == "R-503").collect();
    assert_eq!(log.iter().map(|d| d.attempt).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(log.iter().all(|d| d.http_status == Some(503) && d.url.as_deref() == Some(url_503.as_str())));
    let twice: Vec<_> = fake.deliveries().into_iter().filter(|d| d.order_id == "R-TWICE").collect();
    assert!(twice.last().unwrap().acknowledged());
}

#[tokio::test]
async fn connection_errors_are_retried_five_times() {
    let fake = fake().await;
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/notify", listener.local_addr().unwrap());
    drop(listener);
    fake.set_notification_url(dead);
    charge(&fake, "DEAD-1", 1000).await;
    wait_until(|| fake.deliveries().len() >= 6).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = fake.deliveries();
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|d| d.http_status.is_none() && d.error.is_some()));
}

#[tokio::test]
async fn duplicates_hold_and_reverse_release() {
    let fake = fake().await;
    let (receiver, notify_url) = Receiver::start(&[]).await;
    fake.set_notification_url(&notify_url);

    fake.set_delivery(Delivery { duplicates: 2, ..Delivery::default() });
    charge(&fake, "DUP-1", 1000).await;
    receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.statuses(), ["pending", "pending", "pending"]);
    let copies: Vec<u32> = fake.deliveries().iter().map(|d| d.copy).collect();
    assert_eq!(copies, [0, 1, 2]);

    fake.set_delivery(Delivery { hold: true, ..Delivery::default() });
    snap(&fake, &snap_body("HOLD-1", 1000)).await;
    fake.pay("HOLD-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.bodies().len(), 3, "held notifications are not sent");
    fake.set_delivery(Delivery::default());
    fake.release_held().await;
    let bodies = receiver.wait_for(5).await;
    let held: Vec<&str> = bodies[3..].iter().map(|b| b["transaction_status"].as_str().unwrap()).collect();
    assert_eq!(held, ["settlement", "pending"], "released newest first");

    // A delayed notification arrives later, in order.
    fake.set_delivery(Delivery { delay: Duration::from_millis(300), ..Delivery::default() });
    fake.pay("DUP-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.bodies().len(), 5);
    receiver.wait_for(6).await;
    assert_eq!(receiver.statuses()[5], "settlement");

    // send(): an arbitrary body through the same path.
    fake.set_delivery(Delivery::default());
    let mut forged = fake.notification("DUP-1", "settlement", None).unwrap();
    forged["signature_key"] = json!("00");
    fake.send(forged.clone()).await;
    let bodies = receiver.wait_for(7).await;
    assert_eq!(bodies[6], forged);
}

#[tokio::test]
async fn override_and_append_notification_headers() {
    let fake = fake().await;
    let (configured, configured_url) = Receiver::start(&[]).await;
    let (a, a_url) = Receiver::start(&[]).await;
    let (b, b_url) = Receiver::start(&[]).await;
    fake.set_notification_url(&configured_url);
    let send = |order: &'static str, header: &'static str, value: String| {
        let url = fake.url();
        async move {
            client()
                .post(format!("{url}/v2/charge"))
                .header("Authorization", auth())
                .header(header, value)
                .json(&charge_body(order, 1000))
                .send()
                .await
                .unwrap()
        }
    };
    send("OV-1", "X-Override-Notification", format!("{a_url}, {b_url}")).await;
    send("AP-1", "X-Append-Notification", a_url.clone()).await;
    a.wait_for(2).await;
    b.wait_for(1).await;
    configured.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let orders = |r: &Receiver| {
        r.bodies().iter().map(|b| b["order_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(orders(&configured), ["AP-1"]);
    let mut got_a = orders(&a);
    got_a.sort();
    assert_eq!(got_a, ["AP-1", "OV-1"]);
    assert_eq!(orders(&b), ["OV-1"]);
    assert_eq!(fake.transaction("OV-1").unwrap().notification_urls, [a_url, b_url]);
}

// ---------------------------------------------------------------- control + binary

#[tokio::test]
async fn control_endpoints() {
    let fake = fake().await;
    let (receiver, notify_url) = Receiver::start(&[]).await;
    let http = client();
    let base = fake.url();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let config: Value = http
        .put(format!("{base}/_fake/config"))
        .json(&json!({"notification_url": notify_url, "duplicates": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["duplicates"], 1);
    snap(&fake, &snap_body("CTL-1", 1000)).await;
    let response = http.post(format!("{base}/_fake/transactions/CTL-1/pay")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let tx: Value = response.json().await.unwrap();
    assert_eq!(tx["status"], "settlement");
    receiver.wait_for(4).await;
    let response = http.post(format!("{base}/_fake/transactions/CTL-1/expire")).send().await.unwrap();
    assert_eq!(response.status(), 409);
    let response = http.post(format!("{base}/_fake/transactions/NOPE/pay")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let list: Value =
        http.get(format!("{base}/_fake/transactions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["order_id"], "CTL-1");

    http.put(format!("{base}/_fake/config"))
        .json(&json!({"duplicates": 0, "hold": true}))
        .send()
        .await
        .unwrap();
    fake.reverse("CTL-1").await.unwrap();
    let released: Value =
        http.post(format!("{base}/_fake/release")).send().await.unwrap().json().await.unwrap();
    assert_eq!(released["released"], 1);
    let log: Value = http.get(format!("{base}/_fake/deliveries")).send().await.unwrap().json().await.unwrap();
    assert_eq!(log.as_array().unwrap().len(), 5);

    fake.fail_next("/v2/", 2, 503);
    let (status, body) = status_of(&fake, "CTL-1").await;
    assert_eq!((status, body["status_code"].as_str()), (503, Some("503")));
    let (status, _) = status_of(&fake, "CTL-1").await;
    assert_eq!(status, 503);
    let (status, _) = status_of(&fake, "CTL-1").await;
    assert_eq!(status, 200);
    assert_eq!(fake.api_calls("/v2/CTL-1"), 3);

    fake.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http.get(format!("{base}/healthz")).send().await.is_err(), "stopped after shutdown()");
}

#[tokio::test]
async fn binary_prints_its_address() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-midtrans"))
        .args(["--addr", "127.0.0.1:0", "--fast-retries"])
        .env("MIDTRANS_SERVER_KEY", KEY)
        .env_remove("FAKE_MIDTRANS_ADDR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(10), read).await;
    let line = match line {
        Ok(Ok(Ok(line))) => line,
        other => {
            child.kill().ok();
            panic!("no address line: {other:?}");
        }
    };
    let url = line.trim_end().strip_prefix("fake-midtrans listening on ").expect(&line).to_owned();
    let checks = async {
        assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "{line}");
        let health = client().get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let (status, _) = post_json(&format!("{url}/snap/v1/transactions"), &snap_body("BIN-1", 1000)).await;
        assert_eq!(status, 201);
    };
    let outcome = tokio::time::timeout(Duration::from_secs(10), checks).await;
    child.kill().ok();
    child.wait().ok();
    outcome.expect("binary answered in time");
}
