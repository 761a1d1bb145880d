//! A PgBouncer of one test's own (Debian's `pgbouncer`, 1.18) in front of the shared PostgreSQL, as
//! production deployments put it, on a free loopback port.
//!
//! Session mode: sqlx names its prepared statements per client connection (`sqlx_s_1`, …, even with
//! the statement cache off), and PgBouncer before 1.21 cannot track named statements across the server
//! connections transaction mode hands out, so two clients on one server collide ("prepared statement
//! sqlx_s_1 already exists"). See ARCHITECTURE.md, "Through PgBouncer".

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use uuid::Uuid;

pub struct PgBouncer {
    pub port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl PgBouncer {
    /// Starts PgBouncer (pool_mode = session) for every database of the shared server.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("qc-pgbouncer-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (host, pg_port) = upstream();
        let config = format!(
            "[databases]\n* = host={host} port={pg_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
             listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {auth}\n\
             pool_mode = session\nmax_client_conn = 2000\ndefault_pool_size = 120\n\
             ignore_startup_parameters = extra_float_digits,options\nlogfile = {log}\n",
            auth = dir.join("users.txt").display(),
            log = dir.join("pgbouncer.log").display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).unwrap();
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let mut cmd = Command::new("pgbouncer");
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
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
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
