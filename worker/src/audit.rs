//! The worker's append-only audit log: one JSON line per request that the
//! worker serves or refuses, with the caller and the data that left the site.
//!
//! A record carries counts and a SHA-256 hash of the released bytes, never a
//! patient id, a pseudonym or voxel data.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Whether the worker answered or refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditDecision {
    /// The worker sent a response.
    Answered,
    /// The worker returned an error status.
    Refused,
}

/// What an answered request released, as counts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Released {
    /// `Describe`: the cohort counts (or none, when withheld) and the policy.
    Description,
    /// `Extract`: one event per patient-sequence job and the round summary.
    RoundEvents {
        /// Patient events sent.
        patients: u32,
    },
    /// `FetchFeatureTable`: the pseudonymised per-patient table.
    FeatureTable {
        /// Table rows.
        rows: u32,
        /// Feature columns.
        columns: u32,
    },
    /// `FetchReproducibilitySums`: ICC sums per feature.
    IccSums {
        /// Features with sums.
        features: u32,
        /// Largest number of patients behind one feature's sums.
        patients: u32,
    },
    /// `LogisticStep`: gradient, Hessian and deviance sums.
    LogisticStep {
        /// Patients in the sums.
        patients: u32,
    },
    /// `ScoreModel`: ROC points, confusion counts and calibration sums.
    ScoreAggregates {
        /// Patients scored.
        patients: u32,
    },
    /// `ComputeSupervoxels`: supervoxel descriptors, voxel counts and
    /// depth and entropy sums of the shared patients.
    SupervoxelDescriptors {
        /// Patients whose descriptors were sent.
        patients: u32,
        /// Supervoxel rows sent, over all patients and spaces.
        supervoxels: u32,
    },
    /// `ApplyHabitatModel`: per-region sums over patients, and the list of
    /// regions left out below the minimum size.
    RegionSummaries {
        /// Sequence-region sums sent.
        regions: u32,
        /// Largest number of patients behind one region's sums.
        patients: u32,
    },
}

/// One line of the audit log, without its time, which [`AuditLog::append`]
/// adds.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// gRPC method name, for example `Describe`.
    pub call: &'static str,
    /// Study id of the request, as sent.
    pub study_id: String,
    /// Round id of the request, for calls that name a round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_id: Option<String>,
    /// The caller, as [`requester_identity`] writes it. Under mutual TLS it
    /// is the client certificate's names and the peer address, else the
    /// peer address alone, and `None` when the transport gives neither.
    pub requester: Option<String>,
    /// Answered or refused.
    pub decision: AuditDecision,
    /// Error message of a refused request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Counts of the data that left the site, for an answered request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released: Option<Released>,
    /// Hex SHA-256 of the encoded response message, or of the concatenated
    /// encoded messages of a stream, for an answered request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_sha256: Option<String>,
}

#[derive(Serialize)]
struct TimedRecord<'a> {
    time: String,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

/// Returns the caller's identity for the audit log.
///
/// Under mutual TLS it is the client certificate's subject common name and
/// subjectAltName DNS names, then the peer address, as
/// `CN=coordinator DNS=coordinator,study.example from 10.0.0.5:41234`.
/// Without TLS it is the peer address (`Request::remote_addr`) alone.
///
/// In dial-out mode the same form names the coordinator's server
/// certificate and address, from [`crate::dial_out::DialOutConnectInfo`].
pub fn requester_identity<T>(request: &tonic::Request<T>) -> Option<String> {
    let dial_out = request
        .extensions()
        .get::<crate::dial_out::DialOutConnectInfo>();
    let address = request
        .remote_addr()
        .or_else(|| dial_out.and_then(|info| info.remote_addr))
        .map(|address| address.to_string());
    let certificates = request
        .peer_certs()
        .or_else(|| dial_out.and_then(|info| info.peer_certs.clone()));
    let Some(certificate) = certificates.as_deref().and_then(|chain| chain.first()) else {
        return address;
    };
    let mut parts = Vec::new();
    match crate::tls::CertificateInfo::parse(
        certificate,
        std::path::Path::new("(client certificate)"),
        "client",
    ) {
        Ok(info) => {
            if let Some(common_name) = info.common_name {
                parts.push(format!("CN={common_name}"));
            }
            if !info.dns_names.is_empty() {
                parts.push(format!("DNS={}", info.dns_names.join(",")));
            }
        }
        // The handshake verified this certificate, so parsing can fail
        // only where webpki accepts what x509-parser does not.
        Err(_) => parts.push("unparsed client certificate".to_string()),
    }
    if let Some(address) = address {
        parts.push(format!("from {address}"));
    }
    Some(parts.join(" "))
}

impl AuditRecord {
    /// Creates the record of an answered request.
    pub fn answered(
        call: &'static str,
        study_id: &str,
        round_id: Option<&str>,
        requester: Option<String>,
        released: Released,
        payload_sha256: String,
    ) -> Self {
        AuditRecord {
            call,
            study_id: study_id.to_string(),
            round_id: round_id.map(str::to_string),
            requester,
            decision: AuditDecision::Answered,
            reason: None,
            released: Some(released),
            payload_sha256: Some(payload_sha256),
        }
    }

    /// Creates the record of a refused request.
    pub fn refused(
        call: &'static str,
        study_id: &str,
        round_id: Option<&str>,
        requester: Option<String>,
        reason: String,
    ) -> Self {
        AuditRecord {
            call,
            study_id: study_id.to_string(),
            round_id: round_id.map(str::to_string),
            requester,
            decision: AuditDecision::Refused,
            reason: Some(reason),
            released: None,
            payload_sha256: None,
        }
    }
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened for appending.
    #[error(
        "cannot open the audit log {path} for appending: {source}; set `audit_log` in worker.toml to a file in a writable folder"
    )]
    Open {
        /// The audit log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A record could not be written.
    #[error("cannot write to the audit log {path}: {source}")]
    Write {
        /// The audit log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// An audit log file opened for appending. Each record is written with one
/// `write_all` of a whole line under a mutex, so the lines of concurrent
/// requests never interleave.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens `path` for appending, creating it when missing.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Returns the file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` with the current time as one line and flushes it.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let timed = TimedRecord {
            time: rfc3339_utc(SystemTime::now()),
            record,
        };
        let write_error = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&timed).map_err(|error| write_error(error.into()))?;
        line.push(b'\n');
        // A panic while holding the lock happens at most between whole
        // writes, so the file stays usable.
        let mut file = match self.file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.write_all(&line).map_err(write_error)?;
        file.flush().map_err(write_error)
    }
}

/// SHA-256 over the concatenated protobuf encodings of the messages that a
/// response sends.
#[derive(Default)]
pub struct PayloadHasher(Sha256);

impl PayloadHasher {
    /// Adds the encoding of `message`.
    pub fn add(&mut self, message: &impl prost::Message) {
        self.0.update(message.encode_to_vec());
    }

    /// Returns the hex digest.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Returns the hex SHA-256 of the concatenated protobuf encodings of
/// `messages`.
pub fn payload_sha256<'a, M: prost::Message + 'a>(
    messages: impl IntoIterator<Item = &'a M>,
) -> String {
    let mut hasher = PayloadHasher::default();
    for message in messages {
        hasher.add(message);
    }
    hasher.finish()
}

/// Formats `time` as RFC 3339 in UTC with millisecond precision, for
/// example `2026-01-31T12:00:00.123Z`.
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month,
/// day). The count is shifted to start on 0000-03-01 and split into
/// 400-year eras of 146 097 days, so leap days fall at the end of a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn read_lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("audit log is readable")
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    fn answered_record() -> AuditRecord {
        AuditRecord::answered(
            "FetchFeatureTable",
            "study-1",
            Some("round-1"),
            Some("127.0.0.1:4000".into()),
            Released::FeatureTable {
                rows: 12,
                columns: 3,
            },
            "ab".repeat(32),
        )
    }

    #[test]
    fn audit_lines_are_json_with_fields() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("audit log opens");
        log.append(&answered_record()).expect("append");
        log.append(&AuditRecord::refused(
            "Describe",
            "study-1",
            None,
            None,
            "not allowed".into(),
        ))
        .expect("append");

        let lines = read_lines(&path);
        assert_eq!(lines.len(), 2);
        let answered = &lines[0];
        assert_eq!(answered["call"], "FetchFeatureTable");
        assert_eq!(answered["study_id"], "study-1");
        assert_eq!(answered["round_id"], "round-1");
        assert_eq!(answered["requester"], "127.0.0.1:4000");
        assert_eq!(answered["decision"], "answered");
        assert_eq!(answered["released"]["kind"], "feature_table");
        assert_eq!(answered["released"]["rows"], 12);
        assert_eq!(answered["released"]["columns"], 3);
        assert_eq!(answered["payload_sha256"], "ab".repeat(32));
        assert!(answered.get("reason").is_none());
        let time = answered["time"].as_str().expect("time is a string");
        assert_eq!(time.len(), "2026-01-31T12:00:00.123Z".len(), "{time}");
        assert!(time.ends_with('Z'), "{time}");

        let refused = &lines[1];
        assert_eq!(refused["call"], "Describe");
        assert_eq!(refused["decision"], "refused");
        assert_eq!(refused["reason"], "not allowed");
        assert!(refused["requester"].is_null());
        assert!(refused.get("round_id").is_none());
        assert!(refused.get("released").is_none());
        assert!(refused.get("payload_sha256").is_none());
    }

    #[test]
    fn audit_reopen_keeps_earlier_lines() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("audit.jsonl");
        let first = AuditLog::open(&path).expect("first open");
        first.append(&answered_record()).expect("append");
        let second = AuditLog::open(&path).expect("second open");
        second.append(&answered_record()).expect("append");
        first.append(&answered_record()).expect("append");
        assert_eq!(read_lines(&path).len(), 3);
    }

    #[test]
    fn audit_concurrent_lines_never_interleave() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("audit.jsonl");
        let log = Arc::new(AuditLog::open(&path).expect("audit log opens"));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for index in 0..200 {
                        let study = format!("study-{thread}-{index}-{}", "x".repeat(500));
                        let record =
                            AuditRecord::refused("Describe", &study, None, None, "r".into());
                        log.append(&record).expect("append");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer thread finishes");
        }
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 800);
    }

    #[test]
    fn audit_open_error_names_path_and_fix() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let path = folder.path().join("missing").join("audit.jsonl");
        let error = AuditLog::open(&path).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("audit_log"), "{error}");
    }

    #[test]
    fn rfc3339_formats_known_times() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap_day = UNIX_EPOCH + Duration::from_millis(951_782_400_250);
        assert_eq!(rfc3339_utc(leap_day), "2000-02-29T00:00:00.250Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_767_225_599);
        assert_eq!(rfc3339_utc(later), "2025-12-31T23:59:59.000Z");
    }
}
