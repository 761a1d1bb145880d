//! The push hub of one gateway: every WebSocket and SSE connection registers here, and each controller
//! tick (one Redis pub/sub message per event) fans out to this gateway's connections of that event. Any
//! gateway can serve any visitor: they all hear every tick.
//!
//! Each connection has a small bounded buffer; a client too slow to drain it is dropped rather than
//! allowed to grow memory. Connected visitors are marked present in batches, so a visitor with an open
//! socket is never skipped for absence.
//!
//! Connections are bounded three ways ([`PushLimits`]): a few per visitor (tabs), a cap per address group
//! and a cap for the whole gateway (under its open-file limit). They are indexed by visitor too, so an order
//! result reaches its visitor's sockets without scanning the event's connections.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use fred::{
    interfaces::{ClientLike, EventInterface, PubsubInterface},
    prelude::{Builder, Config},
};
use signing::Signer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use waiting_room::{progress::Progress, queue::Queue, tokens::RoomTokens};

use super::push::{Push, ms_to_time};

/// Messages buffered per connection before it counts as too slow.
pub const CONNECTION_BUFFER: usize = 32;
/// How often connected visitors are marked present.
/// Well under the smallest presence grace (5 s), so an open socket never looks absent.
const PRESENCE_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    conns: Mutex<Conns>,
    last: Mutex<HashMap<Uuid, Arc<Progress>>>,
    next_id: AtomicU64,
    signer: Signer,
    limits: PushLimits,
}

/// How many push connections one gateway holds.
#[derive(Clone, Copy, Debug)]
pub struct PushLimits {
    /// Per visitor of an event (several tabs are fine; thousands are an attack).
    pub per_visitor: usize,
    /// Per client address group (an IPv4 address or an IPv6 /64); a campus NAT shares one.
    pub per_address: usize,
    /// For the whole gateway: kept under the process's open-file limit, so other requests still get in.
    pub total: usize,
}

/// Why a new connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    VisitorFull,
    AddressFull,
    GatewayFull,
}

/// Every connection of this gateway, by event and by visitor, with counts for the limits.
#[derive(Default)]
struct Conns {
    by_event: HashMap<Uuid, HashMap<u64, Conn>>,
    /// (event, visitor) → its connection ids: where order results go.
    by_visitor: HashMap<(Uuid, Uuid), Vec<u64>>,
    per_address: HashMap<String, usize>,
    total: usize,
}

struct Conn {
    visitor: Uuid,
    /// Known once the visitor has a place (pre-queue visitors get one at the draw).
    seq: Option<i64>,
    admitted: bool,
    tx: mpsc::Sender<Push>,
}

/// Removes the connection from the hub when its socket task ends.
pub struct Registration {
    hub: Hub,
    event: Uuid,
    visitor: Uuid,
    address: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut conns = self.hub.inner.conns.lock().expect("hub lock");
        if let Some(m) = conns.by_event.get_mut(&self.event) {
            m.remove(&self.id);
            if m.is_empty() {
                conns.by_event.remove(&self.event);
            }
        }
        let key = (self.event, self.visitor);
        if let Some(ids) = conns.by_visitor.get_mut(&key) {
            ids.retain(|id| *id != self.id);
            if ids.is_empty() {
                conns.by_visitor.remove(&key);
            }
        }
        if let Some(n) = conns.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                conns.per_address.remove(&self.address);
            }
        }
        conns.total -= 1;
        metrics::gauge!("push_connections").decrement(1.0);
    }
}

impl Hub {
    pub fn new(signer: Signer, limits: PushLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                conns: Mutex::new(Conns::default()),
                last: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                signer,
                limits,
            }),
        }
    }

    /// Registers a connection from `address` (its address group) if the limits allow; its messages arrive
    /// on the returned receiver.
    pub fn register(
        &self,
        event: Uuid,
        visitor: Uuid,
        address: String,
    ) -> Result<(Registration, mpsc::Receiver<Push>), Refused> {
        let limits = self.inner.limits;
        let mut conns = self.inner.conns.lock().expect("hub lock");
        if conns.total >= limits.total {
            return Err(Refused::GatewayFull);
        }
        if conns.per_address.get(&address).is_some_and(|n| *n >= limits.per_address) {
            return Err(Refused::AddressFull);
        }
        if conns.by_visitor.get(&(event, visitor)).is_some_and(|ids| ids.len() >= limits.per_visitor) {
            return Err(Refused::VisitorFull);
        }
        let (tx, rx) = mpsc::channel(CONNECTION_BUFFER);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        conns.by_event.entry(event).or_default().insert(id, Conn { visitor, seq: None, admitted: false, tx });
        conns.by_visitor.entry((event, visitor)).or_default().push(id);
        *conns.per_address.entry(address.clone()).or_default() += 1;
        conns.total += 1;
        metrics::gauge!("push_connections").increment(1.0);
        Ok((Registration { hub: self.clone(), event, visitor, address, id }, rx))
    }

    /// Records the visitor's place once known (registration comes first so no tick is missed between the
    /// snapshot and the registration).
    pub fn set_place(&self, registration: &Registration, seq: Option<i64>, admitted: bool) {
        let mut conns = self.inner.conns.lock().expect("hub lock");
        if let Some(conn) =
            conns.by_event.get_mut(&registration.event).and_then(|m| m.get_mut(&registration.id))
        {
            conn.seq = conn.seq.or(seq);
            conn.admitted |= admitted;
        }
    }

    /// The latest progress heard for `event`, if any.
    pub fn last(&self, event: Uuid) -> Option<Arc<Progress>> {
        self.inner.last.lock().expect("hub lock").get(&event).cloned()
    }

    pub fn connections(&self) -> usize {
        self.inner.conns.lock().expect("hub lock").total
    }

    /// Fans one tick out to this gateway's connections of its event.
    pub fn apply(&self, progress: Progress, queue_seqs: &HashMap<Uuid, i64>) {
        let event = progress.event;
        let progress = Arc::new(progress);
        let previous = self.inner.last.lock().expect("hub lock").insert(event, progress.clone());
        let stock_changed = previous.as_ref().is_none_or(|p| p.stock != progress.stock);
        let pause_changed = previous.as_ref().is_some_and(|p| p.paused != progress.paused);
        let admitted: HashMap<Uuid, &waiting_room::progress::Admitted> =
            progress.admitted.iter().map(|a| (a.visitor, a)).collect();
        let now = chrono::Utc::now().timestamp();

        let mut conns = self.inner.conns.lock().expect("hub lock");
        let Some(of_event) = conns.by_event.get_mut(&event) else {
            return;
        };
        let mut too_slow = Vec::new();
        for (id, conn) in of_event.iter_mut() {
            if conn.seq.is_none() {
                conn.seq = queue_seqs.get(&conn.visitor).copied();
            }
            let mut out: Vec<Push> = Vec::with_capacity(3);
            if let Some(a) = admitted.get(&conn.visitor) {
                conn.admitted = true;
                out.push(Push::Admitted {
                    admission_token: self.inner.signer.admission(
                        event,
                        conn.visitor,
                        a.seq,
                        now,
                        a.expires_ms,
                    ),
                    expires_at: ms_to_time(a.expires_ms),
                    admitted_at: Some(ms_to_time(progress.at_ms)),
                });
            } else if !conn.admitted {
                match conn.seq {
                    Some(seq) if Push::is_open(&progress) => {
                        let ahead = (seq - progress.admitted_through - 1).max(0);
                        out.push(Push::position(ahead, Some(&progress)));
                    }
                    _ => out.push(Push::pre_queue(Some(&progress), None)),
                }
            }
            if pause_changed {
                out.push(Push::Paused { paused: progress.paused });
            }
            if stock_changed {
                out.push(Push::stock(&progress));
            }
            for push in out {
                if conn.tx.try_send(push).is_err() {
                    too_slow.push(*id);
                    break;
                }
            }
        }
        for id in too_slow {
            // Dropping the sender ends the connection's task; its Registration then cleans up.
            of_event.remove(&id);
            metrics::counter!("push_dropped_slow_total").increment(1);
        }
    }

    /// Delivers a checkout result to the sockets of the visitor it belongs to (found through the visitor
    /// index: a rush of results never scans an event's connections under the lock).
    pub fn deliver(&self, result: pipeline::orders::OrderResult) {
        let Some(visitor) = result.visitor else { return };
        let conns = self.inner.conns.lock().expect("hub lock");
        let (Some(ids), Some(of_event)) =
            (conns.by_visitor.get(&(result.event, visitor)), conns.by_event.get(&result.event))
        else {
            return;
        };
        for conn in ids.iter().filter_map(|id| of_event.get(id)) {
            let _ = conn.tx.try_send(Push::OrderResult {
                request_id: result.request_id,
                status: result.status,
                order_id: result.order_id,
                reason: result.reason,
            });
        }
    }

    /// Visitors connected per event (for presence).
    fn connected(&self) -> Vec<(Uuid, Vec<Uuid>)> {
        let conns = self.inner.conns.lock().expect("hub lock");
        conns.by_event.iter().map(|(event, m)| (*event, m.values().map(|c| c.visitor).collect())).collect()
    }

    /// Connected visitors of `event` that have no place yet (pre-queue visitors until the draw).
    fn without_place(&self, event: Uuid) -> Vec<Uuid> {
        let conns = self.inner.conns.lock().expect("hub lock");
        conns
            .by_event
            .get(&event)
            .map(|m| m.values().filter(|c| c.seq.is_none()).map(|c| c.visitor).collect())
            .unwrap_or_default()
    }
}

/// Subscribes to the controller's ticks and keeps connected visitors present, until `shutdown`. If Redis
/// is unreachable it keeps retrying: the push channel must come back by itself after a Redis restart.
pub async fn run(
    hub: Hub,
    queue: Queue,
    redis_url: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    while !shutdown.is_cancelled() {
        match listen(&hub, &queue, &redis_url, &shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "push hub lost Redis; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    Ok(())
}

/// Pub/sub messages (ticks and order results) held for this gateway's loop while it is busy.
const MESSAGE_BACKLOG: usize = 16_384;

async fn listen(
    hub: &Hub,
    queue: &Queue,
    redis_url: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let subscriber = Builder::from_config(Config::from_url(redis_url)?)
        .set_policy(fred::prelude::ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        // A worker publishes a whole batch's results at once (up to ORDER_BATCH_SIZE messages), and
        // messages beyond the channel's capacity are dropped while this loop is busy: room for many
        // batches, not the client's default of 32.
        .with_performance_config(|p| p.broadcast_channel_capacity = MESSAGE_BACKLOG)
        .build_subscriber_client()?;
    subscriber.init().await?;
    // Resubscribe automatically after a reconnect.
    let _resubscribe = subscriber.manage_subscriptions();
    let ticks = queue.keys().ticks_channel();
    let results = queue.keys().order_results_channel();
    subscriber.subscribe(vec![ticks.clone(), results.clone()]).await?;
    let mut messages = subscriber.message_rx();
    let mut presence = tokio::time::interval(PRESENCE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = presence.tick() => {
                let now_ms = chrono::Utc::now().timestamp_millis();
                for (event, visitors) in hub.connected() {
                    for chunk in visitors.chunks(5_000) {
                        if let Err(e) = queue.touch(event, chunk, now_ms).await {
                            tracing::warn!(error = %e, "presence update failed");
                        }
                    }
                }
            }
            message = messages.recv() => {
                let message = match message {
                    Ok(m) => m,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "push hub lagged behind the controller");
                        continue;
                    }
                    Err(_) => anyhow::bail!("subscription closed"),
                };
                let Some(text) = message.value.as_str() else { continue };
                if &*message.channel == results.as_str() {
                    match serde_json::from_str(&text) {
                        Ok(result) => hub.deliver(result),
                        Err(e) => tracing::warn!(error = %e, "unreadable order result"),
                    }
                    continue;
                }
                let progress: Progress = match serde_json::from_str(&text) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable tick message");
                        continue;
                    }
                };
                // Pre-queue visitors learn their place right after the draw: one lookup for all of them.
                let mut seqs = HashMap::new();
                let seqless = if Push::is_open(&progress) { hub.without_place(progress.event) } else { Vec::new() };
                if !seqless.is_empty() {
                    match queue.seqs(progress.event, &seqless).await {
                        Ok(found) => {
                            for (v, s) in seqless.into_iter().zip(found) {
                                if let Some(s) = s {
                                    seqs.insert(v, s);
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "sequence lookup failed"),
                    }
                }
                hub.apply(progress, &seqs);
            }
        }
    }
    let _ = subscriber.quit().await;
    Ok(())
}
