//! Many processes, one sale: two gateways, two admission controllers and two checkout workers, each a real
//! binary in a process of its own, on one PostgreSQL database and one Redis key prefix.
//!
//! Visitors join through one gateway and hold their live channel on the other, so their admission and
//! their order's result can only reach them across processes; buyers submit through both gateways; both
//! controllers tick the same queue and both workers read the same order stream. The same sale runs again
//! with every process behind PgBouncer, and on a Redis Cluster of three primaries.

use std::{collections::HashSet, time::Duration};

use e2e::{
    pgbouncer::{Mode, PgBouncer},
    redis_cluster::RedisCluster,
    topology::{Backends, Shape, Topology},
};
use fred::prelude::*;
use futures::StreamExt;
use keyspace::STREAM_PARTITIONS;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use waiting_room::tokens::RoomTokens;

const QUOTA: i32 = 40;
const BUYERS: usize = 120;

/// What one buyer saw on its live channel.
#[derive(Debug, Default)]
struct Seen {
    /// The distinct admissions (by `jti`: the same admission re-sent keeps it) pushed to this visitor.
    admissions: Vec<String>,
    result: Option<Value>,
    /// Told the tickets were gone while still waiting (the controllers stop admitting then).
    sold_out_while_waiting: bool,
}

const TWO_OF_EACH: Shape = Shape { gateways: 2, controllers: 2, workers: 2 };

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_of_every_process_sell_exactly_the_quota_and_deliver_every_result_across_gateways() {
    one_sale(&Topology::start(TWO_OF_EACH).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_sale_runs_with_every_process_behind_pgbouncer_in_session_mode() {
    let bouncer = PgBouncer::start(Mode::Session).await;
    let t = Topology::start_with(TWO_OF_EACH, bouncer.backends()).await;
    one_sale(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_sale_runs_with_every_process_behind_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start(Mode::Transaction).await;
    let t = Topology::start_with(TWO_OF_EACH, bouncer.backends()).await;
    one_sale(&t).await;
    // Six processes' pools, and the database never saw more than PgBouncer's 20 server connections
    // (beside the test's own direct pool).
    let backends: i64 = sqlx::query_scalar("select count(*) from pg_stat_activity where datname = $1")
        .bind(&t.db_name)
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert!(backends <= 20 + i64::from(t.db.size()), "{backends} connections to the database");
    // The statement timeout reaches the server connections the processes are handed.
    let through = sqlx::PgPool::connect(&bouncer.url(&t.db_name)).await.unwrap();
    let timeout: String = sqlx::query_scalar("show statement_timeout").fetch_one(&through).await.unwrap();
    assert_eq!(timeout, "5s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_sale_runs_on_a_three_primary_redis_cluster() {
    let cluster = RedisCluster::start();
    // The stream partitions spread over every node (the hash tags are the partitions', not the prefix's).
    let keys = keyspace::Keyspace::new("any:");
    let nodes: HashSet<u16> = (0..STREAM_PARTITIONS)
        .flat_map(|p| [keys.orders_stream(p), keys.webhooks_stream(p)])
        .map(|key| cluster.node_of_slot(cluster.keyslot(&key)))
        .collect();
    assert_eq!(nodes.len(), cluster.ports.len(), "partitions on {nodes:?}");

    let backends = Backends { redis_url: cluster.url.clone(), ..Default::default() };
    let t = Topology::start_with(TWO_OF_EACH, backends).await;
    one_sale(&t).await;
}

/// The sale every topology must carry: 120 buyers on 40 tickets, joining through gateway 0, listening
/// on gateway 1, submitting through both.
async fn one_sale(t: &Topology) {
    let admin = t.admin_token().await;
    let (event, category, _) = t.gateway(0).published_event(&admin, QUOTA, 10).await;
    let (s, body) = t
        .gateway(1)
        .by(&admin)
        .put(
            &format!("/api/admin/events/{event}/waiting-room"),
            json!({ "admission_rate_per_sec": 60, "max_active": 10_000 }),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    let buyers = futures::future::join_all((0..BUYERS).map(|i| buy(t, event, category, i))).await;

    let (mut confirmed, mut sold_out, mut queued, mut admitted) = (0, 0, 0, 0);
    for (i, seen) in buyers.iter().enumerate() {
        assert!(seen.admissions.len() <= 1, "buyer {i} was admitted {} times", seen.admissions.len());
        if seen.admissions.is_empty() {
            assert!(seen.sold_out_while_waiting, "buyer {i} was neither admitted nor told it sold out");
            continue;
        }
        admitted += 1;
        let result =
            seen.result.as_ref().unwrap_or_else(|| panic!("buyer {i} got no result\n{}", t.logs(20)));
        match (result["status"].as_str(), result["reason"].as_str()) {
            (Some("confirmed"), _) => confirmed += 1,
            (Some("rejected"), Some("sold_out")) => sold_out += 1,
            other => panic!("buyer {i}: unexpected result {other:?}: {result}"),
        }
        queued += usize::from(result.get("request_id").is_some());
    }
    assert_eq!(confirmed, QUOTA as usize, "{sold_out} sold out");
    assert!(admitted >= QUOTA as usize);

    // PostgreSQL agrees with what the buyers were told: exactly the quota held, one order per confirmed
    // request, every queued request decided once (and none recorded for an early refusal).
    let committed: i32 = sqlx::query_scalar("select sold + held from ticket_categories where id = $1")
        .bind(category)
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert_eq!(committed, QUOTA);
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where status = 'confirmed'),
                count(*) filter (where status = 'queued'),
                count(*) filter (where (status = 'confirmed') <> (order_id is not null))
           from order_requests",
    )
    .fetch_one(&t.db)
    .await
    .unwrap();
    assert_eq!(counts, (queued as i64, QUOTA as i64, 0, 0));
    let orders: i64 = sqlx::query_scalar("select count(*) from orders").fetch_one(&t.db).await.unwrap();
    assert_eq!(orders, QUOTA as i64);

    // The two controllers admitted each visitor once between them.
    let redis = Client::new(Config::from_url(&t.redis_url).unwrap(), None, None, None);
    redis.init().await.unwrap();
    let state = keyspace::Keyspace::new(t.redis_prefix.clone()).queue_state(event);
    let admitted_total: i64 = redis.hget(&state, "admitted_total").await.unwrap();
    assert_eq!(admitted_total, admitted as i64);

    // And the operator's audit finds nothing amiss, with the processes still running.
    t.assert_consistent().await;
}

/// Buyer `i`: joins through gateway 0, listens on gateway 1, submits through gateway `i % 2` once
/// admitted, and returns what its channel told it (or the gateway's early sold-out refusal).
async fn buy(t: &Topology, event: Uuid, category: Uuid, i: usize) -> Seen {
    let (_, token) = t.quick_buyer().await;
    let (s, joined) = t.gateway(0).anon().post_empty(&format!("/api/events/{event}/queue")).await;
    assert_eq!(s, 200, "{joined}");
    let visitor_token = joined["visitor_token"].as_str().expect("visitor token").to_owned();
    let visitor = t.signer.verify_visitor(&visitor_token, event).expect("a valid visitor token");
    let listen = t.gateway(1).addr;
    let url = format!("ws://{listen}/api/events/{event}/queue/ws?visitor_token={visitor_token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket on the other gateway");

    let mut seen = Seen::default();
    let mut request_id = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.result.is_none() && !(seen.admissions.is_empty() && seen.sold_out_while_waiting) {
        let frame =
            tokio::time::timeout_at(deadline, ws.next()).await.expect("in time").expect("open").unwrap();
        let Message::Text(text) = frame else { continue };
        let push: Value = serde_json::from_str(&text).unwrap();
        match push["type"].as_str() {
            Some("admitted") => {
                let admission = push["admission_token"].as_str().expect("admission token").to_owned();
                let claims =
                    t.signer.verify_admission(&admission, event, visitor).expect("a valid admission");
                if !seen.admissions.contains(&claims.jti) {
                    seen.admissions.push(claims.jti);
                }
                if request_id.is_none() {
                    match submit(t, i % 2, &token, &visitor_token, &admission, event, category).await {
                        Ok(accepted) => request_id = Some(accepted),
                        // Refused before queueing: the gateway already knows the stock is gone.
                        Err(refusal) => seen.result = Some(refusal),
                    }
                }
            }
            Some("stock") if push["sold_out"] == true => seen.sold_out_while_waiting = true,
            Some("order_result") if request_id.is_some_and(|r| push["request_id"] == r.to_string()) => {
                seen.result = Some(push);
            }
            _ => {}
        }
    }
    seen
}

async fn submit(
    t: &Topology,
    gateway: usize,
    token: &str,
    visitor_token: &str,
    admission: &str,
    event: Uuid,
    category: Uuid,
) -> Result<Uuid, Value> {
    let api = t.gateway(gateway);
    let resp = api
        .http
        .post(format!("http://{}/api/orders", api.addr))
        .bearer_auth(token)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .header("visitor-token", visitor_token)
        .header("admission-token", admission)
        .json(&json!({ "event_id": event, "items": [{ "ticket_category_id": category, "quantity": 1 }] }))
        .send()
        .await
        .expect("submit");
    let status = resp.status();
    let body: Value = resp.json().await.expect("json");
    match status.as_u16() {
        202 => Ok(body["request_id"].as_str().expect("request id").parse().expect("uuid")),
        409 if body["error"]["code"] == "sold_out" => {
            Err(json!({ "status": "rejected", "reason": "sold_out" }))
        }
        _ => panic!("submit through gateway {gateway}: {status} {body}"),
    }
}
