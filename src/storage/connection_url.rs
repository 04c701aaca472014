//! The connection string handed to libpq.

use std::net::IpAddr;

use url::{Host, Url};

/// `url` with `sslmode=allow` added when it names a loopback host and
/// chooses no `sslmode` itself; any other string unchanged.
///
/// libpq's default (`prefer`) negotiates TLS whenever the server offers it,
/// loopback included, where it protects nothing and costs both ends CPU on
/// every round trip (about a fifth of PostgreSQL's time and a third of this
/// server's on a claim). `allow` connects in plain text first and falls
/// back to TLS only when the server insists (a `hostssl`-only rule).
/// Keyword strings (`host=... dbname=...`) and URLs naming their host in
/// the query (`?host=`, `?hostaddr=`) are left as they are.
pub fn with_loopback_sslmode(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return url.to_owned();
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return url.to_owned();
    }
    let chooses_own = parsed
        .query_pairs()
        .any(|(key, _)| matches!(key.as_ref(), "sslmode" | "host" | "hostaddr"));
    // `postgres:` is not a scheme the URL standard knows, so an IPv4 host
    // arrives as an opaque name.
    let loopback = match parsed.host() {
        Some(Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<IpAddr>()
                    .is_ok_and(|address| address.is_loopback())
        }
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    };
    if chooses_own || !loopback {
        return url.to_owned();
    }
    parsed.query_pairs_mut().append_pair("sslmode", "allow");
    parsed.into()
}

#[cfg(test)]
mod tests {
    use super::with_loopback_sslmode;

    #[test]
    fn loopback_urls_connect_in_plain_text_first() {
        assert_eq!(
            with_loopback_sslmode("postgres://root@127.0.0.1:5432/placement"),
            "postgres://root@127.0.0.1:5432/placement?sslmode=allow"
        );
        assert_eq!(
            with_loopback_sslmode("postgresql://u:p@localhost/db?connect_timeout=5"),
            "postgresql://u:p@localhost/db?connect_timeout=5&sslmode=allow"
        );
        assert_eq!(
            with_loopback_sslmode("postgres://[::1]:5432/db"),
            "postgres://[::1]:5432/db?sslmode=allow"
        );
    }

    #[test]
    fn a_chosen_sslmode_or_a_remote_host_is_kept() {
        for url in [
            "postgres://root@127.0.0.1/db?sslmode=require",
            "postgres://root@db.example.org/db",
            "postgres://root@10.0.0.5:5432/db",
            "postgres:///db?host=/var/run/postgresql",
            "postgres://localhost/db?hostaddr=10.0.0.5",
            "host=127.0.0.1 dbname=placement",
        ] {
            assert_eq!(with_loopback_sslmode(url), url);
        }
    }

    #[test]
    fn several_hosts_go_to_libpq_as_given() {
        for url in [
            "postgresql://placement@127.0.0.1:5432,127.0.0.1:5433/placement\
             ?target_session_attrs=read-write",
            "postgresql://127.0.0.1,127.0.0.1/placement?target_session_attrs=read-write",
            "postgresql://localhost,127.0.0.1/placement",
            "host=127.0.0.1,127.0.0.1 port=5432,5433 dbname=placement \
             target_session_attrs=read-write",
        ] {
            assert_eq!(with_loopback_sslmode(url), url);
        }
    }
}
