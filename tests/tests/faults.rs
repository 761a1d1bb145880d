//! Faults with real processes under load: the binaries of `tests/src/topology.rs`, buyers submitting
//! through the gateway while a process is killed with SIGKILL (no shutdown, as a crash or an OOM kill),
//! each test ending with the operator's audit.

use std::{sync::Arc, time::Duration};

use e2e::topology::{Shape, Topology};
use serde_json::{Value, json};
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

const QUOTA: i32 = 250;
const BUYERS: usize = 700;
const KILLS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_checkout_worker_twenty_times_mid_batch_loses_duplicates_and_oversells_nothing() {
    let shape = Shape { gateways: 1, controllers: 0, workers: 2 };
    let t = Topology::start_configured(
        shape,
        |db| format!("{}/{db}", e2e::pg_base_url()),
        e2e::redis_url(),
        &[
            // Small batches keep a worker holding unacknowledged entries most of the time; a short
            // reclaim lets the survivors take a killed worker's entries over within the test.
            ("ORDER_BATCH_SIZE", "10"),
            ("ORDER_RECLAIM_IDLE_MS", "1500"),
            ("ORDERS_PER_IP_PER_MIN", "1000000"),
        ],
    )
    .await;
    let admin = t.admin_token().await;
    let (event, category, _) = t.gateway(0).published_event(&admin, QUOTA, 10).await;
    let mut buyers = Vec::with_capacity(BUYERS);
    for _ in 0..BUYERS {
        buyers.push(t.quick_buyer().await);
    }

    // Buyers submit at a steady pace for the whole time the workers are being killed; every fourth
    // double-clicks (the same Idempotency-Key twice at once).
    let t = Arc::new(tokio::sync::RwLock::new(t));
    let submissions = {
        let t = t.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for (i, (_, token)) in buyers.into_iter().enumerate() {
                let t = t.clone();
                answers.push(tokio::spawn(async move {
                    let guard = t.read().await;
                    let api = guard.gateway(0);
                    let (http, addr, signer) = (api.http.clone(), api.addr, guard.signer.clone());
                    drop(guard);
                    let copies = if i % 4 == 0 { 2 } else { 1 };
                    submit(&http, addr, &signer, &token, event, category, copies).await
                }));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            futures::future::join_all(answers).await.into_iter().map(Result::unwrap).collect::<Vec<_>>()
        })
    };

    // Twenty times: kill one worker (alternately the older and the newer), start a replacement.
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut t = t.write().await;
        let live: Vec<usize> = (0..t.workers.len()).filter(|&i| t.workers[i].is_running()).collect();
        let victim = live[kill % live.len()];
        t.workers[victim].kill();
        t.add_worker().await;
    }
    let answers = submissions.await.unwrap();
    let t = Arc::try_unwrap(t).ok().expect("no other holder").into_inner();

    // Every 202 names a request, double clicks name the same one, and nothing else was refused.
    let mut accepted: Vec<Uuid> = Vec::new();
    for (i, copies) in answers.iter().enumerate() {
        let ids: Vec<Uuid> = copies
            .iter()
            .map(|(status, body)| {
                assert!(matches!(status, 200 | 202), "buyer {i}: {status} {body}");
                body["request_id"].as_str().expect("request id").parse().expect("uuid")
            })
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "buyer {i}'s double click made two requests: {ids:?}");
        accepted.push(ids[0]);
    }

    // Every accepted request is decided (none lost with a killed worker), once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let queued: i64 = sqlx::query_scalar("select count(*) from order_requests where status = 'queued'")
            .fetch_one(&t.db)
            .await
            .unwrap();
        if queued == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{queued} requests never decided\n{}", t.logs(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (recorded, confirmed, orders): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from order_requests),
                (select count(*) from order_requests where status = 'confirmed'),
                (select count(*) from orders)",
    )
    .fetch_one(&t.db)
    .await
    .unwrap();
    assert_eq!(recorded, BUYERS as i64, "one request per buyer");
    let known: i64 = sqlx::query_scalar("select count(*) from order_requests where id = any($1)")
        .bind(&accepted)
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert_eq!(known, BUYERS as i64, "every 202 names a recorded request");
    assert_eq!((confirmed, orders), (i64::from(QUOTA), i64::from(QUOTA)), "exactly the quota sold, once");
    let (sold_held,): (i32,) = sqlx::query_as("select sold + held from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert_eq!(sold_held, QUOTA);

    // The killed workers' unacknowledged entries were taken over by the others and finished.
    let redis = keyspace::connect(&t.redis_url, 1).await.unwrap();
    let keys = keyspace::Keyspace::new(t.redis_prefix.clone());
    let backlog = pipeline::orders::backlog(&redis, &keys).await.unwrap();
    assert_eq!(backlog, 0, "entries left pending");
    let reclaims = t.workers.iter().filter(|w| w.log_tail(100_000).contains("reclaimed entries")).count();
    assert!(reclaims > 0, "no worker ever reclaimed a killed worker's entries");

    let report = checkout_worker::audit::run(&t.db, &redis, &keys, &Default::default()).await.unwrap();
    assert!(report.is_consistent(), "{report}");
}

/// One buyer's submission, sent `copies` times at once with one Idempotency-Key: each answer.
async fn submit(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    signer: &signing::Signer,
    token: &str,
    event: Uuid,
    category: Uuid,
    copies: usize,
) -> Vec<(u16, Value)> {
    let (visitor, now) = (Uuid::new_v4(), chrono::Utc::now());
    let visitor_token = signer.visitor(event, visitor, now.timestamp());
    let seq = rand::random_range(1..i64::MAX);
    let admission = signer.admission(event, visitor, seq, now.timestamp(), now.timestamp_millis() + 600_000);
    let key = Uuid::new_v4().to_string();
    let body = json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] });
    let one = || async {
        let resp = http
            .post(format!("http://{addr}/api/orders"))
            .bearer_auth(token)
            .header("idempotency-key", &key)
            .header("visitor-token", &visitor_token)
            .header("admission-token", &admission)
            .json(&body)
            .send()
            .await
            .expect("the gateway answers");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    };
    futures::future::join_all((0..copies).map(|_| one())).await
}
