//! A Redis Cluster of one test's own: three primaries on free loopback ports, started and stopped by
//! `scripts/redis-cluster` (the same script an operator uses to try the system on a cluster).

use std::{path::PathBuf, process::Command};

use uuid::Uuid;

pub struct RedisCluster {
    /// The `REDIS_URL` every process is given (`redis-cluster://…?node=…`).
    pub url: String,
    pub ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three primaries and waits until the cluster is `ok`.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("qc-redis-cluster-{}", Uuid::new_v4().simple()));
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .args(ports.iter().map(u16::to_string))
            .output()
            .expect("scripts/redis-cluster");
        assert!(
            out.status.success(),
            "starting the Redis Cluster failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
        RedisCluster { url, ports, dir }
    }

    /// `CLUSTER KEYSLOT key`, asked of the first node.
    pub fn keyslot(&self, key: &str) -> u16 {
        let out = self.cli(&["cluster", "keyslot", key]);
        out.trim().parse().unwrap_or_else(|_| panic!("CLUSTER KEYSLOT {key}: {out}"))
    }

    /// The port of the primary serving `slot`, read off `CLUSTER SLOTS`.
    pub fn node_of_slot(&self, slot: u16) -> u16 {
        let slots = self.cli(&["cluster", "slots"]);
        // Each range: start, end, then the primary's host, port and id (one value per line).
        let lines: Vec<&str> = slots.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        for range in lines.chunks(5) {
            let [start, end, _host, port, _id] = range else { break };
            let (start, end): (u16, u16) = (start.parse().unwrap(), end.parse().unwrap());
            if (start..=end).contains(&slot) {
                return port.parse().unwrap();
            }
        }
        panic!("no node serves slot {slot}:\n{slots}");
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.ports[0].to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/redis-cluster"))
}

/// A port that is free, and so is its cluster bus port (10,000 above): picked below the ephemeral range
/// so that the bus port exists.
fn free_port() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    loop {
        let port = rand::random_range(20_000..30_000);
        if free(port) && free(port + 10_000) {
            return port;
        }
    }
}
