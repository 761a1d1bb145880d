//! Waiting-room load generator: many real visitors joining over HTTP and waiting on real WebSockets.
//!
//! It joins `--visitors` visitors (spread over the `--gateways`), opens one WebSocket per visitor from
//! `--source-ips` loopback addresses (127.0.0.2, 127.0.0.3, …, so the ephemeral ports of one address are
//! not the limit), keeps them open for `--hold-secs`, and reports as JSON: joins per second and join
//! latency, time to first position, the longest gap between position updates per visitor, and how long
//! admissions took to arrive. Progress goes to stderr once a second.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use futures::StreamExt;
use serde::Serialize;
use tokio::{net::TcpSocket, sync::Semaphore};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// Gateway base addresses, comma separated (host:port).
    #[arg(long, value_delimiter = ',')]
    gateways: Vec<SocketAddr>,
    #[arg(long)]
    event: uuid::Uuid,
    #[arg(long, default_value_t = 1000)]
    visitors: usize,
    /// Loopback source addresses to spread sockets over (127.0.0.2 onwards).
    #[arg(long, default_value_t = 8)]
    source_ips: u8,
    /// Offset of this process's first source address (so several processes use different ones).
    #[arg(long, default_value_t = 0)]
    source_offset: u8,
    /// Joins and connects in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// How long every socket stays open after the last one connected.
    #[arg(long, default_value_t = 20)]
    hold_secs: u64,
}

#[derive(Default)]
struct Counters {
    joined: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    positions: AtomicU64,
    admitted: AtomicU64,
}

struct Visitor {
    join_ms: f64,
    first_position_ms: Option<f64>,
    /// Longest time between two position messages while waiting.
    max_gap_ms: Option<f64>,
    admission_delay_ms: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    visitors: usize,
    connected: u64,
    failed: u64,
    join_per_sec: f64,
    join_ms_p50: f64,
    join_ms_p99: f64,
    first_position_ms_p50: f64,
    first_position_ms_p99: f64,
    max_gap_ms_p50: f64,
    max_gap_ms_p99: f64,
    max_gap_ms_max: f64,
    /// Share of waiting visitors whose every update came within 2 s of the previous one.
    share_updated_within_2s: f64,
    positions_received: u64,
    admitted: u64,
    admission_delivery_ms_p50: f64,
    admission_delivery_ms_p99: f64,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    midtrans::install_crypto_provider();
    let args = Args::parse();
    let counters = Arc::new(Counters::default());
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let gate = Arc::new(Semaphore::new(args.concurrency));
    let all_connected = Arc::new(tokio::sync::Notify::new());
    let hold_until = Arc::new(tokio::sync::OnceCell::<Instant>::new());

    let progress = {
        let c = counters.clone();
        let total = args.visitors;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprintln!(
                    "joined {}/{total}  connected {}  failed {}  positions {}  admitted {}",
                    c.joined.load(Ordering::Relaxed),
                    c.connected.load(Ordering::Relaxed),
                    c.failed.load(Ordering::Relaxed),
                    c.positions.load(Ordering::Relaxed),
                    c.admitted.load(Ordering::Relaxed)
                );
            }
        })
    };

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.visitors);
    for i in 0..args.visitors {
        let gw = args.gateways[i % args.gateways.len()];
        let source = Ipv4Addr::new(127, 0, 0, 2 + args.source_offset + (i % args.source_ips as usize) as u8);
        let (http, gate, c, event) = (http.clone(), gate.clone(), counters.clone(), args.event);
        let (all_connected, hold_until) = (all_connected.clone(), hold_until.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("open semaphore");
            let t = Instant::now();
            let joined = http.post(format!("http://{gw}/api/events/{event}/queue")).send().await;
            let token = match joined {
                Ok(r) if r.status().is_success() => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["visitor_token"].as_str().map(str::to_owned)),
                _ => None,
            };
            let join_ms = t.elapsed().as_secs_f64() * 1000.0;
            let Some(token) = token else {
                c.failed.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            c.joined.fetch_add(1, Ordering::Relaxed);
            let t = Instant::now();
            let socket = TcpSocket::new_v4().ok()?;
            if socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).is_err() {
                c.failed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            let Ok(stream) = socket.connect(gw).await else {
                c.failed.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            let url = format!("ws://{gw}/api/events/{event}/queue/ws?visitor_token={token}");
            let Ok((mut ws, _)) = tokio_tungstenite::client_async(url, stream).await else {
                c.failed.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            c.connected.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            let mut v =
                Visitor { join_ms, first_position_ms: None, max_gap_ms: None, admission_delay_ms: None };
            let mut last_position: Option<Instant> = None;
            loop {
                let deadline = hold_until.get().copied();
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d.into(), ws.next()).await {
                        Ok(n) => n,
                        Err(_) => break,
                    },
                    None => tokio::select! {
                        n = ws.next() => n,
                        _ = all_connected.notified() => continue,
                    },
                };
                let Some(Ok(Message::Text(text))) = next else {
                    if matches!(next, None | Some(Err(_))) {
                        break;
                    }
                    continue;
                };
                // Position updates are most of the traffic: recognise them without a full JSON parse, so
                // the load generator (on the same cores as the servers) stays cheap.
                let is_position = text.starts_with(r#"{"type":"position""#);
                let msg = if is_position {
                    serde_json::Value::Null
                } else {
                    match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(m) => m,
                        Err(_) => continue,
                    }
                };
                match if is_position { Some("position") } else { msg["type"].as_str() } {
                    Some("position") => {
                        c.positions.fetch_add(1, Ordering::Relaxed);
                        let now = Instant::now();
                        if v.first_position_ms.is_none() {
                            v.first_position_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        if let Some(prev) = last_position {
                            let gap = now.duration_since(prev).as_secs_f64() * 1000.0;
                            v.max_gap_ms = Some(v.max_gap_ms.map_or(gap, |g: f64| g.max(gap)));
                        }
                        last_position = Some(now);
                    }
                    Some("admitted") => {
                        c.admitted.fetch_add(1, Ordering::Relaxed);
                        if let Some(at) = msg["admitted_at"]
                            .as_str()
                            .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
                        {
                            v.admission_delay_ms = Some(
                                (chrono::Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                            );
                        }
                        last_position = None; // no more position updates are due
                    }
                    _ => {}
                }
            }
            Some(v)
        }));
    }

    // Start the hold clock once everyone has connected (or failed).
    let c = counters.clone();
    let total = args.visitors as u64;
    while c.connected.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let _ = hold_until.set(Instant::now() + Duration::from_secs(args.hold_secs));
    all_connected.notify_waiters();

    let mut visitors = Vec::new();
    for t in tasks {
        if let Ok(Some(v)) = t.await {
            visitors.push(v);
        }
    }
    progress.abort();
    let mut join: Vec<f64> = visitors.iter().map(|v| v.join_ms).collect();
    let mut first: Vec<f64> = visitors.iter().filter_map(|v| v.first_position_ms).collect();
    let mut gaps: Vec<f64> = visitors.iter().filter_map(|v| v.max_gap_ms).collect();
    let mut delivery: Vec<f64> = visitors.iter().filter_map(|v| v.admission_delay_ms).collect();
    let within = gaps.iter().filter(|g| **g <= 2000.0).count() as f64 / gaps.len().max(1) as f64;
    let report = Report {
        visitors: args.visitors,
        connected: counters.connected.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        join_per_sec: counters.joined.load(Ordering::Relaxed) as f64 / connect_secs,
        join_ms_p50: pct(&mut join, 0.5),
        join_ms_p99: pct(&mut join, 0.99),
        first_position_ms_p50: pct(&mut first, 0.5),
        first_position_ms_p99: pct(&mut first, 0.99),
        max_gap_ms_p50: pct(&mut gaps, 0.5),
        max_gap_ms_p99: pct(&mut gaps, 0.99),
        max_gap_ms_max: gaps.last().copied().unwrap_or(0.0),
        share_updated_within_2s: within,
        positions_received: counters.positions.load(Ordering::Relaxed),
        admitted: counters.admitted.load(Ordering::Relaxed),
        admission_delivery_ms_p50: pct(&mut delivery, 0.5),
        admission_delivery_ms_p99: pct(&mut delivery, 0.99),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
