//! The dial-out preface: the few text lines that a worker and the
//! coordinator exchange on a connection that the worker opened, before
//! gRPC runs over it with the coordinator as the HTTP/2 client.
//!
//! After the TLS handshake (or at once on a plaintext loopback connection):
//!
//! 1. The worker sends `RADSTUDY-DIAL-OUT/1 <center id>\n`.
//! 2. The coordinator replies `OK\n`, or `ERROR <reason>\n` and closes the
//!    connection. Under TLS the coordinator identifies the center from the
//!    worker's client certificate, and the id in the hello must agree.
//! 3. The connection then waits as a standby until the coordinator needs a
//!    connection to that center. The coordinator sends `CLAIM\n`, and the
//!    worker replies `READY\n`.
//! 4. HTTP/2 follows: the coordinator sends the client connection preface
//!    and the worker serves `radstudy.v1.Worker` on the connection.
//!
//! The claim step lets the coordinator skip a standby that died while it
//! waited: no `READY` within a few seconds means the next standby is tried.
//! Every line is ASCII, ends with `\n` and is at most [`MAX_LINE_BYTES`]
//! bytes long including the newline.

/// Protocol name and version at the start of the hello line.
pub const HELLO_PREFIX: &str = "RADSTUDY-DIAL-OUT/1";

/// The coordinator's reply that accepts a hello.
pub const OK_LINE: &[u8] = b"OK\n";

/// Start of the coordinator's reply that rejects a hello.
pub const ERROR_PREFIX: &str = "ERROR ";

/// The coordinator's request to use a standby connection.
pub const CLAIM_LINE: &[u8] = b"CLAIM\n";

/// The worker's reply to [`CLAIM_LINE`]; HTTP/2 starts after it.
pub const READY_LINE: &[u8] = b"READY\n";

/// Maximum length of a preface line, newline included.
pub const MAX_LINE_BYTES: usize = 256;

/// Formats the worker's hello line for `center`.
pub fn hello_line(center: &str) -> String {
    format!("{HELLO_PREFIX} {center}\n")
}

/// Parses a hello line, with or without its newline, and returns the
/// center id.
///
/// # Errors
///
/// A message naming what is wrong: another protocol or version, or a
/// center id that is empty or has characters outside A-Z, a-z, 0-9, '_'
/// and '-' (the worker config's rule for `center_id`).
pub fn parse_hello(line: &str) -> Result<&str, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let Some((protocol, center)) = line.split_once(' ') else {
        return Err(format!(
            "expected \"{HELLO_PREFIX} <center id>\", got {line:?}"
        ));
    };
    if protocol != HELLO_PREFIX {
        return Err(format!(
            "expected protocol {HELLO_PREFIX}, got {protocol:?}; run the same radstudy version at the worker and the coordinator"
        ));
    }
    let valid = !center.is_empty()
        && center.len() <= 32
        && center
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(format!(
            "invalid center id {center:?}; expected 1 to 32 characters from A-Z, a-z, 0-9, '_' and '-'"
        ));
    }
    Ok(center)
}

/// Formats the coordinator's rejection line. Newlines in `reason` become
/// spaces and the line is cut to [`MAX_LINE_BYTES`], so that it stays one
/// line.
pub fn error_line(reason: &str) -> String {
    let mut line: String = format!("{ERROR_PREFIX}{reason}")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    while line.len() > MAX_LINE_BYTES - 1 {
        line.pop();
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips() {
        assert_eq!(parse_hello(&hello_line("site_B-2")), Ok("site_B-2"));
        assert_eq!(parse_hello("RADSTUDY-DIAL-OUT/1 A"), Ok("A"));
    }

    #[test]
    fn hello_rejects_other_protocol() {
        let error = parse_hello("RADSTUDY-DIAL-OUT/2 A\n").unwrap_err();
        assert!(error.contains("RADSTUDY-DIAL-OUT/1"), "{error}");
        let error = parse_hello("PRI * HTTP/2.0\r\n").unwrap_err();
        assert!(error.contains("expected protocol"), "{error}");
    }

    #[test]
    fn hello_rejects_invalid_center_id() {
        for line in [
            "RADSTUDY-DIAL-OUT/1 \n",
            "RADSTUDY-DIAL-OUT/1 A B\n",
            "RADSTUDY-DIAL-OUT/1 a/b\n",
            "RADSTUDY-DIAL-OUT/1\n",
        ] {
            assert!(parse_hello(line).is_err(), "{line:?} was accepted");
        }
        let long = format!("{HELLO_PREFIX} {}", "a".repeat(33));
        assert!(parse_hello(&long).is_err());
    }

    #[test]
    fn error_line_is_one_bounded_line() {
        let line = error_line("first\nsecond");
        assert_eq!(line, "ERROR first second\n");
        let long = error_line(&"x".repeat(1000));
        assert_eq!(long.len(), MAX_LINE_BYTES);
        assert!(long.ends_with('\n'));
        assert_eq!(long.matches('\n').count(), 1);
    }
}
