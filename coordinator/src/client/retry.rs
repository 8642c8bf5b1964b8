//! Retries with exponential backoff for calls to one center.
//!
//! Only transient failures are retried: a connection that could not be
//! opened or was lost (refused, reset, broken HTTP/2 stream, missed
//! keep-alive pings) and the status `Unavailable`. A worker's own reply
//! (`InvalidArgument`, `FailedPrecondition`, `PermissionDenied`, a policy
//! rejection), a TLS failure, an invalid reply and a timed-out call are
//! final, because the same request would get the same reply or wait as
//! long again.
//!
//! Attempt `n` (1-based) that failed is followed by a wait of
//! `d = min(max, initial * 2^(n-1))` with equal jitter: a uniform draw in
//! `[d/2, d]`. The jitter comes from the thread-local generator, so waits
//! differ between runs, but they never change a result because a repeated
//! call carries the same study and round ids. Every attempt and wait of
//! one call fits in one budget, the study's round deadline: an attempt
//! gets at most the time left, and no wait starts that would end past it.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use tokio::time::Instant;
use tracing::warn;

use super::CenterError;

/// The `[retry]` table of study.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per call, the first included; 1 turns retries off.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait after the first failed attempt, in milliseconds.
    #[serde(default = "default_initial_ms")]
    pub initial_ms: u64,
    /// Maximum wait between two attempts, in milliseconds.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
}

fn default_attempts() -> u32 {
    5
}

fn default_initial_ms() -> u64 {
    500
}

fn default_max_ms() -> u64 {
    10_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            initial_ms: default_initial_ms(),
            max_ms: default_max_ms(),
        }
    }
}

impl RetryConfig {
    /// Checks the values; `Err` gives the key, the value and the expected
    /// range.
    pub fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        if !(1..=100).contains(&self.attempts) {
            return Err((
                "retry.attempts",
                self.attempts.to_string(),
                "between 1 and 100",
            ));
        }
        if self.initial_ms == 0 {
            return Err(("retry.initial_ms", "0".into(), "at least 1 millisecond"));
        }
        if self.max_ms < self.initial_ms {
            return Err((
                "retry.max_ms",
                self.max_ms.to_string(),
                "at least retry.initial_ms",
            ));
        }
        Ok(())
    }
}

/// Retry policy of one client: the `[retry]` settings and the time
/// budget of one call, retries included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// Wait after the first failed attempt.
    pub initial: Duration,
    /// Maximum wait between two attempts.
    pub max: Duration,
    /// Time for every attempt and wait of one call.
    pub budget: Duration,
}

impl RetryPolicy {
    /// Builds the policy of `config` with the time `budget` per call.
    pub fn new(config: &RetryConfig, budget: Duration) -> Self {
        RetryPolicy {
            attempts: config.attempts.max(1),
            initial: Duration::from_millis(config.initial_ms),
            max: Duration::from_millis(config.max_ms.max(config.initial_ms)),
            budget,
        }
    }

    /// Returns the policy that makes one attempt only.
    pub fn once(budget: Duration) -> Self {
        RetryPolicy {
            attempts: 1,
            initial: Duration::ZERO,
            max: Duration::ZERO,
            budget,
        }
    }

    /// Returns the upper bound of the wait after failed attempt `attempt`
    /// (1-based): `min(max, initial * 2^(attempt-1))`.
    pub fn max_wait(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Draws the wait after failed attempt `attempt`, uniform in
    /// `[d/2, d]` with `d` from [`RetryPolicy::max_wait`].
    fn draw_wait(&self, attempt: u32) -> Duration {
        let upper = self.max_wait(attempt);
        let lower = upper / 2;
        if upper <= lower {
            return upper;
        }
        let millis = rand::thread_rng().gen_range(lower.as_millis()..=upper.as_millis());
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(&RetryConfig::default(), Duration::from_secs(3600))
    }
}

/// Returns whether `error` is worth another attempt of the same request:
/// a connection that failed or broke, or the status `Unavailable`.
pub fn is_transient(error: &CenterError) -> bool {
    match error {
        CenterError::Connect { .. } | CenterError::ConnectionLost { .. } => true,
        CenterError::Call { code, .. } => *code == tonic::Code::Unavailable,
        CenterError::Endpoint { .. }
        | CenterError::Tls { .. }
        | CenterError::Timeout { .. }
        | CenterError::Protocol { .. }
        | CenterError::RetriesExhausted { .. } => false,
    }
}

/// Runs `attempt` until it succeeds, fails with a final error, or the
/// policy's attempts or budget run out. `attempt` receives the time left
/// in the budget and must finish within it. `per_attempt` caps one
/// attempt, for calls whose own deadline is shorter than the budget.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    center: &str,
    call: &'static str,
    per_attempt: Duration,
    mut attempt: F,
) -> Result<T, CenterError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, CenterError>>,
{
    let start = Instant::now();
    let deadline = start + policy.budget;
    let mut number = 1;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match attempt(left.min(per_attempt)).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        // A timeout after a transient failure ends the call like running
        // out of attempts, so that the reason gives the whole time spent.
        let timed_out = matches!(error, CenterError::Timeout { .. });
        let timed_out_after_retry = timed_out && number > 1;
        if !is_transient(&error) && !timed_out_after_retry {
            return Err(error);
        }

        let wait = policy.draw_wait(number);
        let left = deadline.saturating_duration_since(Instant::now());
        if timed_out || number >= policy.attempts || wait >= left {
            if number == 1 {
                return Err(error);
            }
            return Err(CenterError::RetriesExhausted {
                center: center.to_string(),
                call,
                attempts: number,
                seconds: start.elapsed().as_secs(),
                last: Box::new(error),
            });
        }
        warn!(
            %center,
            call,
            attempt = number,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "call failed with a transient error; retrying"
        );
        tokio::time::sleep(wait).await;
        number += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn lost() -> CenterError {
        CenterError::ConnectionLost {
            center: "A".into(),
            call: "Describe",
            message: "connection reset".into(),
        }
    }

    fn policy(attempts: u32, budget_ms: u64) -> RetryPolicy {
        RetryPolicy::new(
            &RetryConfig {
                attempts,
                initial_ms: 10,
                max_ms: 40,
            },
            Duration::from_millis(budget_ms),
        )
    }

    #[test]
    fn retry_config_check_rejects_invalid() {
        assert_eq!(RetryConfig::default().check(), Ok(()));
        let cases = [
            (0, 500, 10_000, "retry.attempts"),
            (101, 500, 10_000, "retry.attempts"),
            (5, 0, 10_000, "retry.initial_ms"),
            (5, 500, 499, "retry.max_ms"),
        ];
        for (attempts, initial_ms, max_ms, field) in cases {
            let config = RetryConfig {
                attempts,
                initial_ms,
                max_ms,
            };
            let error = config.check().expect_err("invalid [retry]");
            assert_eq!(error.0, field, "{config:?}");
        }
    }

    #[test]
    fn max_wait_doubles_up_to_max() {
        // initial 10 ms doubled per attempt: 10, 20, 40, then capped at
        // max_ms = 40.
        let policy = policy(5, 1000);
        let waits: Vec<u128> = (1..=5).map(|n| policy.max_wait(n).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 40, 40]);
    }

    #[test]
    fn draw_wait_stays_within_jitter_bounds() {
        let policy = policy(5, 1000);
        for attempt in 1..=4 {
            let upper = policy.max_wait(attempt);
            for _ in 0..50 {
                let wait = policy.draw_wait(attempt);
                assert!(wait >= upper / 2, "{wait:?} below half of {upper:?}");
                assert!(wait <= upper, "{wait:?} above {upper:?}");
            }
        }
    }

    #[test]
    fn is_transient_only_for_transport_failures() {
        assert!(is_transient(&lost()));
        let unavailable = CenterError::Call {
            center: "A".into(),
            call: "Extract",
            code: tonic::Code::Unavailable,
            message: "tcp connect error".into(),
        };
        assert!(is_transient(&unavailable));
        for code in [
            tonic::Code::InvalidArgument,
            tonic::Code::FailedPrecondition,
            tonic::Code::PermissionDenied,
            tonic::Code::Unknown,
        ] {
            let reply = CenterError::Call {
                center: "A".into(),
                call: "Extract",
                code,
                message: "refused by the site policy".into(),
            };
            assert!(!is_transient(&reply), "{code:?} must not be retried");
        }
        let timeout = CenterError::Timeout {
            center: "A".into(),
            call: "Extract",
            seconds: 3,
        };
        assert!(!is_transient(&timeout));
    }

    #[tokio::test]
    async fn with_retry_succeeds_after_transient_failures() {
        let calls = AtomicU32::new(0);
        let result = with_retry(
            &policy(5, 5000),
            "A",
            "Describe",
            Duration::MAX,
            |_| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(lost())
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn with_retry_stops_at_final_error() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> =
            with_retry(&policy(5, 5000), "A", "Extract", Duration::MAX, |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(CenterError::Call {
                    center: "A".into(),
                    call: "Extract",
                    code: tonic::Code::FailedPrecondition,
                    message: "policy".into(),
                })
            })
            .await;
        assert!(matches!(result, Err(CenterError::Call { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn with_retry_gives_up_after_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(
            &policy(3, 5000),
            "A",
            "Describe",
            Duration::MAX,
            |_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(lost())
            },
        )
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        match result {
            Err(CenterError::RetriesExhausted { attempts, .. }) => assert_eq!(attempts, 3),
            other => panic!("expected RetriesExhausted, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn with_retry_reports_timeout_after_retry() {
        // A worker that dropped the connection and then stopped replying:
        // the second attempt times out, and the error gives both attempts.
        let calls = AtomicU32::new(0);
        let result: Result<(), _> =
            with_retry(&policy(5, 5000), "A", "Extract", Duration::MAX, |_| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(lost())
                } else {
                    Err(CenterError::Timeout {
                        center: "A".into(),
                        call: "Extract",
                        seconds: 3,
                    })
                }
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        match result {
            Err(error @ CenterError::RetriesExhausted { attempts: 2, .. }) => {
                assert!(error.to_string().contains("no reply within"), "{error}");
            }
            other => panic!("expected RetriesExhausted after 2 attempts, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn with_retry_stays_within_budget() {
        // Waits of 10..40 ms against a 25 ms budget: the second wait
        // (10..20 ms) would end past the budget at the latest, so at most
        // two or three attempts run, never the 100 allowed.
        let calls = AtomicU32::new(0);
        let start = std::time::Instant::now();
        let result: Result<(), _> =
            with_retry(&policy(100, 25), "A", "Describe", Duration::MAX, |left| {
                calls.fetch_add(1, Ordering::SeqCst);
                assert!(left <= Duration::from_millis(25));
                async { Err(lost()) }
            })
            .await;
        assert!(result.is_err());
        assert!(calls.load(Ordering::SeqCst) <= 3);
        // 25 ms budget plus scheduling slack on a loaded 2-core machine.
        assert!(start.elapsed() < Duration::from_millis(500));
    }
}
