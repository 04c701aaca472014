//! The real `placement` binary run as a separate server process on a test
//! database, for tests that need several processes on one database.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::Client;

/// A running `placement serve`, killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub client: Client,
}

impl ServerProcess {
    /// Starts one on `database_url` with `pool_size` connections and waits
    /// until it answers `GET /`.
    pub fn start(database_url: &str, pool_size: u32) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("free port");
        let mut child = Command::new(env!("CARGO_BIN_EXE_placement"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("RBAC", "legacy")
            .env("OS_API__AUTH_STRATEGY", "noauth2")
            .env("PLACEMENT_WORKERS", "2")
            .env("PLACEMENT_DB_POOL_SIZE", pool_size.to_string())
            .env("PLACEMENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start placement");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ureq::get(&format!("{base}/")).call().is_ok() {
                return ServerProcess {
                    child,
                    client: Client::new(&base),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("server process did not start");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
