//! A PgBouncer of one test's own in front of the shared PostgreSQL, as production deployments put it, on
//! a free loopback port.
//!
//! - [`Mode::Session`] with Debian 12's `pgbouncer` (1.18).
//! - [`Mode::Transaction`] with PgBouncer 1.21+ (`scripts/pgbouncer-transaction-mode` builds Debian 13's
//!   1.24 where the distribution's is older; `./dev test` runs it): sqlx names its prepared statements
//!   per client connection (`sqlx_s_1`, …), and only 1.21+ tracks named statements across the server
//!   connections transaction mode hands out (`max_prepared_statements`); 1.18 makes two clients on one
//!   server collide ("prepared statement sqlx_s_1 already exists"). See ARCHITECTURE.md, "Through
//!   PgBouncer".

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use uuid::Uuid;

/// The limits our pools put in the startup `options` (which PgBouncer cannot pass on: it is told to
/// ignore them), set on each server connection PgBouncer opens instead.
pub const SERVER_SETTINGS: &str =
    "SET statement_timeout = 5000; SET idle_in_transaction_session_timeout = 15000";

/// How PgBouncer hands out server connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One server connection per client connection, for as long as the client holds it.
    Session,
    /// A server connection per transaction: many more clients than server connections.
    Transaction,
}

pub struct PgBouncer {
    pub port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl PgBouncer {
    /// Starts PgBouncer in `mode` for every database of the shared server.
    pub async fn start(mode: Mode) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("qc-pgbouncer-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (host, pg_port) = upstream();
        let config = format!(
            "[databases]\n* = host={host} port={pg_port} connect_query='{SERVER_SETTINGS}'\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
             listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {auth}\n\
             {pooling}\nmax_client_conn = 2000\n\
             ignore_startup_parameters = extra_float_digits,options\nlogfile = {log}\n",
            // Session mode needs a server connection per client one; transaction mode shares a few.
            pooling = match mode {
                Mode::Session => "pool_mode = session\ndefault_pool_size = 120",
                Mode::Transaction =>
                    "pool_mode = transaction\ndefault_pool_size = 20\nmax_prepared_statements = 200",
            },
            auth = dir.join("users.txt").display(),
            log = dir.join("pgbouncer.log").display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).unwrap();
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let mut cmd = Command::new(binary(mode));
        // PgBouncer refuses to run as root; Debian's package has the postgres account.
        if running_as_root() {
            let _ = Command::new("chmod").args(["-R", "a+rwX"]).arg(&dir).status();
            cmd.args(["-u", "postgres"]);
        }
        let child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer (Debian's pgbouncer package)");
        let bouncer = PgBouncer { port, child, dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return bouncer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pgbouncer did not start on port {port}:\n{}", bouncer.log_tail(20));
    }

    /// The URL of database `db` through PgBouncer.
    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.base())
    }

    /// The server URL (without a database) through PgBouncer.
    pub fn base(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// The shared server's topology backends with every process connected through this PgBouncer.
    pub fn backends(&self) -> crate::topology::Backends {
        crate::topology::Backends { process_pg_base: self.base(), ..Default::default() }
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::topology::tail(&self.dir.join("pgbouncer.log"), lines)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's `pgbouncer` for session mode; for transaction mode `PGBOUNCER_TRANSACTION_BIN`, or where
/// `scripts/pgbouncer-transaction-mode` installs it.
fn binary(mode: Mode) -> String {
    match mode {
        Mode::Session => "pgbouncer".to_owned(),
        Mode::Transaction => {
            let bin = std::env::var("PGBOUNCER_TRANSACTION_BIN")
                .unwrap_or_else(|_| "/opt/pgbouncer-1.24/bin/pgbouncer".to_owned());
            assert!(
                std::path::Path::new(&bin).exists(),
                "{bin} is missing: run scripts/pgbouncer-transaction-mode (./dev test does)"
            );
            bin
        }
    }
}

/// Host and port of the shared PostgreSQL, from `TEST_PG_URL`.
fn upstream() -> (String, u16) {
    let url = crate::pg_base_url();
    let authority = url.rsplit('@').next().unwrap_or("127.0.0.1:5432").trim_end_matches('/');
    let (host, port) = authority.split_once(':').unwrap_or((authority, "5432"));
    (host.to_owned(), port.parse().unwrap_or(5432))
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"))
}
