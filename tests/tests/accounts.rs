//! Registration, sign-in and tokens, including every kind of bad input (which must write nothing).

use e2e::{Options, assert_error, spawn_app, spawn_app_with, spawn_with_admin};
use serde_json::json;

async fn user_count(app: &e2e::TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from users").fetch_one(&app.db).await.unwrap()
}

#[tokio::test]
async fn a_buyer_registers_signs_in_and_sees_itself() {
    let app = spawn_app().await;
    let (s, body) = app
        .anon()
        .post(
            "/api/auth/register",
            json!({
                "email": "  Siti.Rahma@Kampus.AC.ID ", "password": "a good password", "name": " Siti Rahma "
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["user"]["email"], "siti.rahma@kampus.ac.id");
    assert_eq!(body["user"]["name"], "Siti Rahma");
    assert_eq!(body["user"]["role"], "buyer");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("password_hash").is_none() && body["user"].get("password_hash").is_none());
    let token = body["access_token"].as_str().unwrap();

    let me = app.expect(200, "GET", "/api/me", Some(token), None).await;
    assert_eq!(me["email"], "siti.rahma@kampus.ac.id");

    let resp = app.login("SITI.RAHMA@kampus.ac.id", "a good password").await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().len() > 20);

    let stored: String =
        sqlx::query_scalar("select password_hash from users where email = 'siti.rahma@kampus.ac.id'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "passwords are stored as argon2id hashes");
}

#[tokio::test]
async fn a_taken_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    app.register("budi@kampus.ac.id").await;
    let before = user_count(&app).await;
    let (s, body) = app
        .anon()
        .post(
            "/api/auth/register",
            json!({
                "email": "BUDI@kampus.ac.id", "password": "another password", "name": "Budi 2"
            }),
        )
        .await;
    assert_eq!(s, 409);
    assert_error(&body, "email_taken");
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_make_one_account() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (http, url) = (app.http.clone(), app.url("/api/auth/register"));
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({ "email": "race@kampus.ac.id", "password": "a good password", "name": "Race" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 201).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|&c| c == 201 || c == 409), "{codes:?}");
    let n: i64 = sqlx::query_scalar("select count(*) from users where email = 'race@kampus.ac.id'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn invalid_registrations_are_422_and_write_nothing() {
    let app = spawn_app().await;
    let before = user_count(&app).await;
    let long_name = "n".repeat(101);
    for body in [
        json!({ "email": "not-an-email", "password": "a good password", "name": "A" }),
        json!({ "email": "", "password": "a good password", "name": "A" }),
        json!({ "email": "a@b.id", "password": "short", "name": "A" }),
        json!({ "email": "a@b.id", "password": "x".repeat(129), "name": "A" }),
        json!({ "email": "a@b.id", "password": "a good password", "name": "   " }),
        json!({ "email": "a@b.id", "password": "a good password", "name": long_name }),
    ] {
        let resp = app.expect(422, "POST", "/api/auth/register", None, Some(body.clone())).await;
        assert_error(&resp, "validation_failed");
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn malformed_bodies_get_clear_json_errors_and_write_nothing() {
    let app = spawn_app().await;
    let before = user_count(&app).await;
    let url = app.url("/api/auth/register");
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        // Malformed JSON.
        (
            app.http.post(&url).header("content-type", "application/json").body("{\"email\":"),
            400,
            "invalid_json",
        ),
        // Wrong types.
        (app.http.post(&url).json(&json!({ "email": 5, "password": true, "name": [] })), 400, "invalid_body"),
        // Missing field.
        (
            app.http.post(&url).json(&json!({ "email": "a@b.id", "password": "a good password" })),
            400,
            "invalid_body",
        ),
        // Unknown field (a client trying to set its own role).
        (
            app.http.post(&url).json(
                &json!({ "email": "a@b.id", "password": "a good password", "name": "A", "role": "admin" }),
            ),
            400,
            "invalid_body",
        ),
        // Not JSON at all.
        (
            app.http.post(&url).header("content-type", "text/plain").body("hello"),
            415,
            "unsupported_media_type",
        ),
        // Over the 64 KiB body limit.
        (
            app.http.post(&url).json(
                &json!({ "email": "a@b.id", "password": "a good password", "name": "x".repeat(70 * 1024) }),
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (req, status, code) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "expected {code}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_error(&body, code);
    }
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn wrong_credentials_are_401_without_saying_which_part_was_wrong() {
    let app = spawn_app().await;
    app.register("dewi@kampus.ac.id").await;
    let wrong_password = app.login("dewi@kampus.ac.id", "not my password").await;
    assert_eq!(wrong_password.status(), 401);
    let a: serde_json::Value = wrong_password.json().await.unwrap();
    let unknown = app.login("nobody@kampus.ac.id", "not my password").await;
    assert_eq!(unknown.status(), 401);
    let b: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(a, b, "the same answer for an unknown account and a wrong password");
    let malformed = app.login("not an email", "whatever1").await;
    assert_eq!(malformed.status(), 401);
}

#[tokio::test]
async fn password_guessing_on_one_account_is_rate_limited() {
    let app = spawn_app_with(Options { login_per_account_address_per_min: 5, ..Options::default() }).await;
    app.register("target@kampus.ac.id").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let resp = app.login("target@kampus.ac.id", &format!("guess number {i}")).await;
        let status = resp.status().as_u16();
        if status == 429 {
            let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1);
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_error(&body, "rate_limited");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|&s| s == 429), "{statuses:?}");
    // Even the right password waits: the limit is on attempts, not failures.
    assert_eq!(app.login("target@kampus.ac.id", "a good password").await.status(), 429);
    // Another account is not affected.
    app.register("other@kampus.ac.id").await;
    assert_eq!(app.login("other@kampus.ac.id", "a good password").await.status(), 200);
}

#[tokio::test]
async fn the_login_limit_is_shared_by_every_gateway() {
    // Two gateways on one Redis prefix: attempts on either count against the same account.
    let a = spawn_app_with(Options { login_per_account_address_per_min: 4, ..Options::default() }).await;
    let prefix = a.redis_prefix.clone();
    let db_name = a.db_name.clone();
    let mut config = e2e::test_config(
        &db_name,
        &prefix,
        &Options { login_per_account_address_per_min: 4, ..Options::default() },
    );
    config.migrate_on_start = false;
    let b_app = gateway::Application::build(config).await.unwrap();
    let b_addr = b_app.local_addr();
    tokio::spawn(b_app.run_until(std::future::pending()));
    a.register("shared@kampus.ac.id").await;
    let mut codes = Vec::new();
    for i in 0..6 {
        let base = if i % 2 == 0 { a.url("") } else { format!("http://{b_addr}") };
        let resp = a
            .http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "email": "shared@kampus.ac.id", "password": format!("guess {i}") }))
            .send()
            .await
            .unwrap();
        codes.push(resp.status().as_u16());
    }
    assert_eq!(codes, vec![401, 401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn missing_malformed_and_forged_tokens_are_401() {
    let app = spawn_app().await;
    let body = app.expect(401, "GET", "/api/me", None, None).await;
    assert_error(&body, "unauthorized");
    let resp = app.get("/api/me").header("authorization", "Basic abc").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    app.expect(401, "GET", "/api/me", Some("garbage"), None).await;
    // A token signed with another secret (another deployment) is refused.
    let other = gateway::accounts::token::TokenKeys::new(b"some-other-secret-of-32-bytes!!!", 3600);
    let forged = other.issue_access(uuid::Uuid::new_v4(), gateway::accounts::Role::Admin, 0).unwrap();
    app.expect(401, "GET", "/api/me", Some(&forged), None).await;
    app.expect(401, "GET", "/api/admin/events", Some(&forged), None).await;
}

#[tokio::test]
async fn bootstrapping_an_address_someone_registered_takes_the_account_away_from_them() {
    let app = spawn_app().await;
    // Someone registers the address the operator is about to make the admin, with their own password.
    let (squatter_token, _) = app.register("ops@kampus.ac.id").await;
    let found = gateway::bootstrap::ensure_admin(&app.db, "ops@kampus.ac.id", "the operator's own secret")
        .await
        .unwrap();
    assert_eq!(found, gateway::accounts::store::Ensured::TakenOver);
    // Their password no longer opens the account, and their session has ended.
    assert_eq!(app.login("ops@kampus.ac.id", "a good password").await.status(), 401);
    app.expect(401, "GET", "/api/me", Some(&squatter_token), None).await;
    app.expect(401, "GET", "/api/admin/users", Some(&squatter_token), None).await;
    // The operator's password does, with admin rights; bootstrapping again changes nothing.
    let resp = app.login("ops@kampus.ac.id", "the operator's own secret").await;
    assert_eq!(resp.status(), 200);
    let token = resp.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    app.expect(200, "GET", "/api/admin/users", Some(&token), None).await;
    let again = gateway::bootstrap::ensure_admin(&app.db, "ops@kampus.ac.id", "another password entirely")
        .await
        .unwrap();
    assert_eq!(again, gateway::accounts::store::Ensured::Present);
    assert_eq!(app.login("ops@kampus.ac.id", "the operator's own secret").await.status(), 200);
}

#[tokio::test]
async fn a_demoted_admin_or_staff_member_loses_their_rights_at_once() {
    let (app, admin) = spawn_with_admin().await;
    let staff = app.staff_token(&admin).await;
    app.expect(404, "POST", "/api/checkin", Some(&staff), Some(json!({ "code": "QC-NOTHING" }))).await;
    // A second admin, then both demoted while their tokens are still young.
    let (_, second_id) = app.register("second-admin@kampus.ac.id").await;
    let (s, _) =
        app.by(&admin).put(&format!("/api/admin/users/{second_id}/role"), json!({ "role": "admin" })).await;
    assert_eq!(s, 200);
    let second = app.login("second-admin@kampus.ac.id", "a good password").await;
    let second =
        second.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    app.expect(200, "GET", "/api/admin/users", Some(&second), None).await;
    let staff_me = app.expect(200, "GET", "/api/me", Some(&staff), None).await;
    let staff_id = staff_me["id"].as_str().unwrap().to_owned();
    for id in [second_id.to_string(), staff_id] {
        let (s, _) =
            app.by(&admin).put(&format!("/api/admin/users/{id}/role"), json!({ "role": "buyer" })).await;
        assert_eq!(s, 200);
    }
    app.expect(401, "GET", "/api/admin/users", Some(&second), None).await;
    app.expect(401, "POST", "/api/checkin", Some(&staff), Some(json!({ "code": "QC-NOTHING" }))).await;
    // Signing in again gives a buyer's session, which works as a buyer's.
    let fresh = app.login("second-admin@kampus.ac.id", "a good password").await;
    let fresh = fresh.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.by(&fresh).get("/api/me").await.0, 200);
    assert_eq!(app.by(&fresh).get("/api/admin/users").await.0, 403);
}

/// Logs in as if from `address` (the gateway trusts `X-Forwarded-For` in these tests).
async fn login_from(app: &e2e::TestApp, address: &str, email: &str, password: &str) -> u16 {
    app.post("/api/auth/login")
        .header("x-forwarded-for", address)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn wrong_guesses_from_elsewhere_cannot_lock_the_owner_out() {
    let app = spawn_app_with(Options {
        configure: |c| {
            c.trust_forwarded_for = true;
            c.login_per_email_per_min = 30;
            c.login_per_ip_per_min = 40;
        },
        ..Options::default()
    })
    .await;
    app.register("owner@kampus.ac.id").await;
    // Ten wrong passwords a minute from one address: that address is slowed down on this account...
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(login_from(&app, "203.0.113.7", "owner@kampus.ac.id", &format!("wrong {i}")).await);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429; 2]);
    // ...while the owner, from their own address, still gets in.
    assert_eq!(login_from(&app, "198.51.100.2", "owner@kampus.ac.id", "a good password").await, 200);
    // Addresses of one IPv6 /64 count as one.
    for i in 0..10 {
        let address = format!("2001:db8:7:7::{:x}", i + 1);
        assert_eq!(login_from(&app, &address, "owner@kampus.ac.id", "wrong").await, 401);
    }
    assert_eq!(login_from(&app, "2001:db8:7:7::ffff", "owner@kampus.ac.id", "wrong").await, 429);
    // Guessing spread over many addresses meets the per-account limit (30 a minute): 21 attempts have
    // counted so far (the ones refused per address were not let through to count), so the tenth new
    // address is refused, or a few later if the seconds this test took let the allowance refill (one
    // attempt per two seconds: argon2 on a busy machine is slow).
    let mut spread = Vec::new();
    for i in 0..20 {
        let status = login_from(&app, &format!("192.0.2.{}", i + 1), "owner@kampus.ac.id", "wrong").await;
        spread.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(spread.last(), Some(&429), "{spread:?}");
    assert!(spread[..spread.len() - 1].iter().all(|s| *s == 401), "{spread:?}");
    assert!(spread.len() >= 10, "the per-account limit refused too early: {spread:?}");
}

#[tokio::test]
async fn one_address_guessing_many_accounts_meets_the_per_address_limit() {
    let app = spawn_app_with(Options {
        configure: |c| {
            c.trust_forwarded_for = true;
            c.login_per_ip_per_min = 15;
        },
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..17 {
        statuses.push(login_from(&app, "203.0.113.9", &format!("user{i}@kampus.ac.id"), "wrong guess").await);
    }
    assert_eq!(&statuses[..15], &[401; 15]);
    assert_eq!(&statuses[15..], &[429; 2]);
    assert_eq!(login_from(&app, "203.0.113.10", "user0@kampus.ac.id", "wrong guess").await, 401);
}
