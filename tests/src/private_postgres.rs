//! A PostgreSQL server of one test's own (Debian's binaries, a fresh cluster in a temp dir, trust auth
//! on a free loopback port), for tests that restart or stop PostgreSQL beneath a running system.
//!
//! PostgreSQL refuses to run as root: when the tests do, the cluster is created and run as the
//! `postgres` account that Debian's package makes.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use uuid::Uuid;

pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates a cluster and starts it; waits until it accepts connections.
    pub async fn start() -> Self {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!("qc-postgres-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePostgres { port, dir, bin };
        if running_as_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.dir).status();
            assert!(status.is_ok_and(|s| s.success()), "chown the cluster's dir to postgres");
        }
        let data = pg.data();
        let out = pg
            .run("initdb", &["-D", path(&data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        pg.ctl("start");
        pg.wait_ready().await;
        pg
    }

    /// The server URL without a database, as `TEST_PG_URL` is written.
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Restarts the server (fast shutdown: open sessions are ended, as an operator's restart does).
    pub async fn restart(&self) {
        self.ctl("restart");
        self.wait_ready().await;
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// Starts a stopped server again.
    pub async fn start_again(&self) {
        self.ctl("start");
        self.wait_ready().await;
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            path(&self.dir)
        );
        let log = self.dir.join("postgres.log");
        let data = self.data();
        let mut args = vec!["-D", path(&data), "-l", path(&log), "-m", "fast", "-w", action];
        if action != "stop" {
            args.extend(["-o", &options]);
        }
        let out = self.run("pg_ctl", &args);
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            crate::topology::tail(&log, 20)
        );
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private PostgreSQL did not start on port {}", self.port);
    }

    /// Runs one of the server's programs, as `postgres` when the tests run as root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's newest installed server binaries (`/usr/lib/postgresql/<version>/bin`).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's PostgreSQL server package (/usr/lib/postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    versions
        .sort_by_key(|b| b.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0));
    versions.pop().expect("initdb under /usr/lib/postgresql/*/bin")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
