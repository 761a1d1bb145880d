//! A Redis server of one test's own (Debian's `redis-server` on a free loopback port), for tests that stop,
//! restart or pause Redis beneath a running system without disturbing the shared one; with no persistence,
//! or with the append-only file the README recommends for production.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    /// Where the append-only file lives, when the server keeps one.
    aof_dir: Option<std::path::PathBuf>,
}

impl PrivateRedis {
    /// Starts a server that keeps nothing on disk and waits until it answers.
    pub async fn start() -> Self {
        Self::start_keeping(None).await
    }

    /// A server with the persistence the README recommends for production: an append-only file,
    /// fsynced every second (`appendonly yes`, `appendfsync everysec`). A restart reloads it.
    pub async fn start_persistent() -> Self {
        let dir = std::env::temp_dir().join(format!("qc-redis-aof-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self::start_keeping(Some(dir)).await
    }

    async fn start_keeping(aof_dir: Option<std::path::PathBuf>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = PrivateRedis { port, child: None, aof_dir };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would: no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port: empty, or with what its append-only file kept.
    pub async fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        match &self.aof_dir {
            Some(dir) => args.extend([
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                dir.to_str().expect("utf-8 path"),
            ]),
            None => args.extend(["--appendonly", "no"]),
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start on port {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.aof_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
