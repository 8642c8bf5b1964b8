//! The file format of one cache entry.
//!
//! An entry file is the 8-byte magic `RSCACHE` followed by a format
//! version byte, then the SHA-256 of the payload (32 bytes), then the
//! payload: a protobuf-encoded [`StoredEntry`]. The checksum catches a
//! truncated or overwritten file, which protobuf alone would not, because a
//! message cut at a field boundary still decodes. Feature values are
//! protobuf `double`s, the IEEE 754 bits of each `f64`, so a decoded entry
//! equals the stored one bit for bit.

use prost::Message;
use radstudy_proto::v1::{ErrorKind, RegionExclusion};
use sha2::{Digest, Sha256};

use super::outcome::{RegionCopyFeatures, SequenceOutcome};
use crate::error::{Exclusion, ExclusionKind};

/// Magic bytes and format version at the start of every entry file. The
/// version byte changes whenever [`StoredEntry`] changes meaning.
const MAGIC: &[u8; 8] = b"RSCACHE\x01";

/// Bytes before the payload: the magic and the payload's SHA-256.
const HEADER_LEN: usize = MAGIC.len() + 32;

/// The reason an entry file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntryError {
    /// The file is shorter than its header or has another magic or version.
    #[error("not a cache entry of this format (bad magic, version or length)")]
    Format,
    /// The payload does not match its checksum, as after a torn write.
    #[error("payload checksum mismatch; the file is truncated or damaged")]
    Checksum,
    /// The payload is not a valid entry message.
    #[error("payload does not decode: {0}")]
    Decode(String),
    /// The entry belongs to another key, patient or sequence.
    #[error("entry is for another key, patient or sequence")]
    Mismatch,
}

#[derive(Clone, PartialEq, Message)]
struct StoredEntry {
    /// The cache key, repeated so that a misplaced file is detected.
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(string, tag = "2")]
    pseudonym: String,
    #[prost(string, tag = "3")]
    sequence: String,
    /// The exclusion of the whole patient and sequence; `regions` is then
    /// empty.
    #[prost(message, optional, tag = "4")]
    exclusion: Option<StoredExclusion>,
    #[prost(message, repeated, tag = "5")]
    regions: Vec<StoredRegion>,
    #[prost(message, repeated, tag = "6")]
    region_exclusions: Vec<RegionExclusion>,
    /// Whether `copies` is set at all, because an empty list and no copies
    /// differ.
    #[prost(bool, tag = "7")]
    has_copies: bool,
    #[prost(message, repeated, tag = "8")]
    copies: Vec<StoredCopies>,
}

#[derive(Clone, PartialEq, Message)]
struct StoredExclusion {
    /// The contract's `ErrorKind` code.
    #[prost(int32, tag = "1")]
    kind: i32,
    #[prost(string, tag = "2")]
    field: String,
    #[prost(string, tag = "3")]
    reason: String,
}

#[derive(Clone, PartialEq, Message)]
struct StoredRegion {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(double, repeated, tag = "2")]
    values: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct StoredCopies {
    #[prost(string, tag = "1")]
    region: String,
    #[prost(message, repeated, tag = "2")]
    rows: Vec<StoredRow>,
    /// The failure message; `rows` is then empty.
    #[prost(string, optional, tag = "3")]
    failure: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct StoredRow {
    #[prost(double, repeated, tag = "1")]
    values: Vec<f64>,
}

/// Encodes the entry file of `outcome` under `key`.
pub fn encode(key: &[u8], pseudonym: &str, sequence: &str, outcome: &SequenceOutcome) -> Vec<u8> {
    let (exclusion, regions) = match &outcome.features {
        Ok(regions) => (
            None,
            regions
                .iter()
                .map(|(name, values)| StoredRegion {
                    name: name.clone(),
                    values: values.clone(),
                })
                .collect(),
        ),
        Err(exclusion) => (
            Some(StoredExclusion {
                kind: exclusion.kind.to_proto() as i32,
                field: exclusion.field.clone(),
                reason: exclusion.reason.clone(),
            }),
            Vec::new(),
        ),
    };
    let copies = outcome
        .copies
        .iter()
        .flatten()
        .map(|(region, result)| match result {
            Ok(rows) => StoredCopies {
                region: region.clone(),
                rows: rows
                    .iter()
                    .map(|values| StoredRow {
                        values: values.clone(),
                    })
                    .collect(),
                failure: None,
            },
            Err(failure) => StoredCopies {
                region: region.clone(),
                rows: Vec::new(),
                failure: Some(failure.clone()),
            },
        })
        .collect();
    let entry = StoredEntry {
        key: key.to_vec(),
        pseudonym: pseudonym.to_string(),
        sequence: sequence.to_string(),
        exclusion,
        regions,
        region_exclusions: outcome.region_exclusions.clone(),
        has_copies: outcome.copies.is_some(),
        copies,
    };

    let payload = entry.encode_to_vec();
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
    bytes
}

/// Decodes an entry file and checks that it belongs to `key`, `pseudonym`
/// and `sequence`.
pub fn decode(
    bytes: &[u8],
    key: &[u8],
    pseudonym: &str,
    sequence: &str,
) -> Result<SequenceOutcome, EntryError> {
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(EntryError::Format);
    }
    let (checksum, payload) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(EntryError::Checksum);
    }
    let entry =
        StoredEntry::decode(payload).map_err(|error| EntryError::Decode(error.to_string()))?;
    if entry.key != key || entry.pseudonym != pseudonym || entry.sequence != sequence {
        return Err(EntryError::Mismatch);
    }

    let features = match entry.exclusion {
        Some(stored) => {
            let kind = ErrorKind::try_from(stored.kind)
                .ok()
                .and_then(ExclusionKind::from_proto)
                .ok_or_else(|| {
                    EntryError::Decode(format!("unknown exclusion kind {}", stored.kind))
                })?;
            Err(Exclusion::new(kind, stored.field, stored.reason))
        }
        None => Ok(entry
            .regions
            .into_iter()
            .map(|region| (region.name, region.values))
            .collect()),
    };
    let copies: Option<RegionCopyFeatures> = entry.has_copies.then(|| {
        entry
            .copies
            .into_iter()
            .map(|stored| {
                let result = match stored.failure {
                    Some(failure) => Err(failure),
                    None => Ok(stored.rows.into_iter().map(|row| row.values).collect()),
                };
                (stored.region, result)
            })
            .collect()
    });
    Ok(SequenceOutcome {
        features,
        region_exclusions: entry.region_exclusions,
        copies,
    })
}
