use super::*;

#[test]
fn connection_lost_recognises_transport_failures_only() {
    // The message tonic gave when the compose test cut a site's network.
    let cut = tonic::Status::unknown("h2 protocol error: error reading a body from connection");
    assert!(connection_lost(&cut));
    // A worker that stopped between two calls: the channel reconnects
    // and fails.
    let stopped = tonic::Status::unavailable("tcp connect error");
    assert!(connection_lost(&stopped));
    // A worker's own rejection is a reply, not a lost connection.
    let refused = tonic::Status::failed_precondition(
        "refused by the site policy of center B: min_patients = 5",
    );
    assert!(!connection_lost(&refused));
    let unknown = tonic::Status::unknown("round not found");
    assert!(!connection_lost(&unknown));
}
