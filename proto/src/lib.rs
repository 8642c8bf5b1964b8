//! The versioned gRPC contract between the radstudy coordinator and its
//! hospital workers, generated from `radstudy/v1/worker.proto`.

pub mod dial_out;

/// Messages and services of contract version 1.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("radstudy.v1");
}

/// Major version of the contract, as in the protobuf package name.
pub const CONTRACT_MAJOR: u32 = 1;

/// Minor version of the contract; raised when fields or RPCs are added.
pub const CONTRACT_MINOR: u32 = 4;

/// Returns the contract version as "MAJOR.MINOR".
pub fn contract_version() -> String {
    format!("{CONTRACT_MAJOR}.{CONTRACT_MINOR}")
}

/// Parses a "MAJOR.MINOR" contract version.
pub fn parse_contract_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_version_round_trips() {
        assert_eq!(
            parse_contract_version(&contract_version()),
            Some((CONTRACT_MAJOR, CONTRACT_MINOR))
        );
    }

    #[test]
    fn contract_version_rejects_malformed_text() {
        assert_eq!(parse_contract_version("1"), None);
        assert_eq!(parse_contract_version("one.two"), None);
    }
}
