//! Dial-out mode: the worker connects to the coordinator and serves its
//! gRPC service over that connection, so the hospital opens no inbound
//! port.
//!
//! The worker keeps one standby connection open to the coordinator's
//! dial-in listener. Each standby goes through the TLS handshake (the
//! worker is the TLS client, see [`crate::tls::dial_out`]) and the
//! preface of [`radstudy_proto::dial_out`]. When the coordinator claims the
//! standby, the worker hands it to the gRPC server, on which the
//! coordinator is the HTTP/2 client, and dials the next standby. A failed
//! attempt is retried after a capped exponential backoff, and every attempt
//! is logged.

mod connection;
mod dialer;

pub use connection::{DialOutConnectInfo, DialedConnection};
pub use dialer::dial_connections;

use std::time::Duration;

use serde::Deserialize;

/// The `[dial_out]` table of worker.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DialOutSettings {
    /// Address of the coordinator's dial-in listener, `host:port`, for
    /// example `study.example.org:7443` or `[::1]:7443`.
    pub coordinator: String,
    /// DNS name that the coordinator's TLS certificate must contain; the
    /// host of `coordinator` when unset.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Delay before the first redial after a failed attempt, in seconds.
    /// Each further failure doubles it, up to `backoff_max_s`.
    #[serde(default = "default_backoff_initial_s")]
    pub backoff_initial_s: u64,
    /// Maximum delay between two attempts, in seconds.
    #[serde(default = "default_backoff_max_s")]
    pub backoff_max_s: u64,
    /// A standby that the coordinator has not claimed for this many
    /// seconds is closed and dialled again, so that a firewall that drops
    /// idle connections leaves no dead standby.
    #[serde(default = "default_idle_redial_s")]
    pub idle_redial_s: u64,
}

fn default_backoff_initial_s() -> u64 {
    1
}

fn default_backoff_max_s() -> u64 {
    30
}

fn default_idle_redial_s() -> u64 {
    180
}

impl DialOutSettings {
    /// Checks the values; `Err` contains the dotted key, the value as written
    /// and the expected form. `has_tls` tells whether worker.toml has a
    /// `[tls]` table. Without one, only a loopback coordinator is allowed.
    pub fn check(&self, has_tls: bool) -> Result<(), (&'static str, String, &'static str)> {
        let Some(host) = self.host() else {
            return Err((
                "dial_out.coordinator",
                format!("{:?}", self.coordinator),
                "host:port, for example \"study.example.org:7443\" or \"[::1]:7443\"",
            ));
        };
        // Plaintext gRPC would expose the released tables on the network.
        if !has_tls && !is_loopback_host(host) {
            return Err((
                "dial_out.coordinator",
                format!("{:?}", self.coordinator),
                "a loopback address (127.0.0.0/8, ::1 or localhost) unless worker.toml has a \
                 [tls] table with cert, key and client_ca; add one to dial the coordinator over \
                 mutual TLS",
            ));
        }
        if let Some(name) = &self.server_name
            && name.trim().is_empty()
        {
            return Err((
                "dial_out.server_name",
                format!("{name:?}"),
                "a DNS name in the coordinator's certificate, or no server_name",
            ));
        }
        if self.backoff_initial_s < 1 {
            return Err(("dial_out.backoff_initial_s", "0".into(), "at least 1"));
        }
        if self.backoff_max_s < self.backoff_initial_s {
            return Err((
                "dial_out.backoff_max_s",
                self.backoff_max_s.to_string(),
                "at least dial_out.backoff_initial_s",
            ));
        }
        if self.idle_redial_s < 10 {
            return Err((
                "dial_out.idle_redial_s",
                self.idle_redial_s.to_string(),
                "at least 10",
            ));
        }
        Ok(())
    }

    /// Returns the host of `coordinator` without IPv6 brackets, or `None`
    /// when the address is not `host:port` with a port from 1 to 65535.
    pub fn host(&self) -> Option<&str> {
        let (host, port) = self.coordinator.rsplit_once(':')?;
        let port_ok = port.parse::<u16>().is_ok_and(|port| port > 0);
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']')?,
            // An IPv6 address needs brackets, so a bare one is rejected.
            None if host.contains(':') => return None,
            None => host,
        };
        let host_ok = !host.is_empty() && !host.contains(char::is_whitespace);
        (port_ok && host_ok).then_some(host)
    }

    /// Returns the name that the coordinator's certificate must contain.
    pub fn server_name(&self) -> String {
        self.server_name
            .clone()
            .or_else(|| self.host().map(str::to_string))
            .unwrap_or_default()
    }

    /// Returns the backoff that these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_secs(self.backoff_initial_s),
            Duration::from_secs(self.backoff_max_s),
        )
    }
}

/// Returns whether a host is `localhost`, an address in 127.0.0.0/8, or
/// `::1`.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Capped exponential backoff between dial attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// Returns the delay before the next attempt and doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts again from the initial delay, after a successful attempt.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(coordinator: &str) -> DialOutSettings {
        DialOutSettings {
            coordinator: coordinator.to_string(),
            server_name: None,
            backoff_initial_s: default_backoff_initial_s(),
            backoff_max_s: default_backoff_max_s(),
            idle_redial_s: default_idle_redial_s(),
        }
    }

    #[test]
    fn coordinator_address_forms() {
        assert_eq!(
            settings("study.example.org:7443").host(),
            Some("study.example.org")
        );
        assert_eq!(settings("[::1]:7443").host(), Some("::1"));
        assert_eq!(settings("127.0.0.1:1").host(), Some("127.0.0.1"));
        for invalid in [
            "study.example.org",
            ":7443",
            "host:0",
            "host:70000",
            "::1:7443",
            "[::1:7443",
        ] {
            assert_eq!(settings(invalid).host(), None, "{invalid} was accepted");
        }
    }

    #[test]
    fn server_name_defaults_to_host() {
        assert_eq!(settings("[::1]:7443").server_name(), "::1");
        let mut named = settings("10.0.0.5:7443");
        named.server_name = Some("coordinator".into());
        assert_eq!(named.server_name(), "coordinator");
    }

    #[test]
    fn plaintext_needs_loopback_coordinator() {
        assert!(settings("localhost:7443").check(false).is_ok());
        assert!(settings("[::1]:7443").check(false).is_ok());
        let (field, _, expected) = settings("study.example.org:7443").check(false).unwrap_err();
        assert_eq!(field, "dial_out.coordinator");
        assert!(expected.contains("[tls]"), "{expected}");
        assert!(settings("study.example.org:7443").check(true).is_ok());
    }

    #[test]
    fn backoff_bounds_are_checked() {
        let mut backwards = settings("127.0.0.1:7443");
        backwards.backoff_initial_s = 10;
        backwards.backoff_max_s = 5;
        assert_eq!(
            backwards.check(false).unwrap_err().0,
            "dial_out.backoff_max_s"
        );
        let mut zero = settings("127.0.0.1:7443");
        zero.backoff_initial_s = 0;
        assert_eq!(
            zero.check(false).unwrap_err().0,
            "dial_out.backoff_initial_s"
        );
    }

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }
}
