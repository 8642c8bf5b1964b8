//! Reading the PEM files of `[tls]`: certificates, private keys and CA
//! bundles, with the X.509 details that the startup checks need.

use std::path::Path;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::TlsError;

/// The parts of an X.509 certificate that the worker checks and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject distinguished name, as OpenSSL prints it (`CN=site-a, O=...`).
    pub subject: String,
    /// First common name (CN) of the subject, if any.
    pub common_name: Option<String>,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// Start of validity, in seconds since the Unix epoch (UTC).
    pub not_before: i64,
    /// End of validity, in seconds since the Unix epoch (UTC).
    pub not_after: i64,
}

impl CertificateInfo {
    /// Parses a DER certificate; `path` and `field` only name it in errors.
    pub fn parse(
        der: &CertificateDer<'_>,
        path: &Path,
        field: &'static str,
    ) -> Result<Self, TlsError> {
        let (_, certificate) =
            X509Certificate::from_der(der.as_ref()).map_err(|error| TlsError::BadCertificate {
                field,
                path: path.to_path_buf(),
                message: error.to_string(),
            })?;
        let common_name = certificate
            .subject()
            .iter_common_name()
            .next()
            .and_then(|name| name.as_str().ok())
            .map(str::to_string);
        let mut dns_names = Vec::new();
        if let Ok(Some(extension)) = certificate.subject_alternative_name() {
            for name in &extension.value.general_names {
                if let GeneralName::DNSName(dns) = name {
                    dns_names.push(dns.to_string());
                }
            }
        }
        let validity = certificate.validity();
        Ok(CertificateInfo {
            subject: certificate.subject().to_string(),
            common_name,
            dns_names,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    /// Checks that `now` (seconds since the Unix epoch) lies within the
    /// validity period.
    pub fn check_validity(
        &self,
        now: i64,
        path: &Path,
        field: &'static str,
    ) -> Result<(), TlsError> {
        if now > self.not_after {
            return Err(TlsError::Expired {
                field,
                path: path.to_path_buf(),
                subject: self.subject.clone(),
                not_after: format_utc(self.not_after),
            });
        }
        if now < self.not_before {
            return Err(TlsError::NotYetValid {
                field,
                path: path.to_path_buf(),
                subject: self.subject.clone(),
                not_before: format_utc(self.not_before),
            });
        }
        Ok(())
    }

    /// Returns whether `name` equals the common name or one of the DNS
    /// names, ignoring ASCII case as DNS does.
    pub fn has_name(&self, name: &str) -> bool {
        self.common_name
            .iter()
            .chain(self.dns_names.iter())
            .any(|own| own.eq_ignore_ascii_case(name))
    }
}

/// Reads a whole file named by `[tls] field`.
pub fn read_file(path: &Path, field: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        field,
        path: path.to_path_buf(),
        error,
    })
}

/// Parses every `CERTIFICATE` block of a PEM file, in file order.
pub fn parse_certificates(
    pem: &[u8],
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadPem {
            field,
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoPemBlock {
            field,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certificates)
}

/// Parses the first private key block (PKCS#8, PKCS#1 or SEC1) of a PEM
/// file.
pub fn parse_private_key(
    pem: &[u8],
    path: &Path,
    field: &'static str,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPemBlock {
            field,
            path: path.to_path_buf(),
            expected: "PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
        },
        other => TlsError::BadPem {
            field,
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    })
}

/// Returns the current time in seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(timestamp: i64) -> String {
    let days = timestamp.div_euclid(86_400);
    let seconds = timestamp.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date, with
/// Howard Hinnant's `civil_from_days` algorithm
/// (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_utc_known_instants() {
        // 0 is the Unix epoch; 951_782_400 is 2000-02-29 00:00:00 UTC
        // (`date -u -d @951782400`), a leap day of a century leap year.
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        // `date -u -d @1767225599`: the last second of 2025.
        assert_eq!(format_utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
    }

    #[test]
    fn read_file_missing_cause_once() {
        let error = read_file(Path::new("/nonexistent/tls/cert.pem"), "cert").unwrap_err();
        // The CLI prints errors with anyhow's `{:#}`, which appends the
        // message of every `source()`. The operating system's "No such file
        // or directory (os error 2)" must appear once.
        let printed = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(printed.matches("os error").count(), 1, "{printed}");
        assert!(printed.contains("/nonexistent/tls/cert.pem"), "{printed}");
        assert!(printed.ends_with("[tls] table of worker.toml"), "{printed}");
    }

    #[test]
    fn parse_certificates_rejects_file_without_block() {
        let error = parse_certificates(b"not pem\n", Path::new("ca.pem"), "client_ca").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("ca.pem"), "{text}");
        assert!(text.contains("CERTIFICATE"), "{text}");
        assert!(text.contains("tls.client_ca"), "{text}");
    }

    #[test]
    fn parse_private_key_rejects_certificate_file() {
        let certified = rcgen::generate_simple_self_signed(vec!["site-a".into()])
            .expect("rcgen makes a self-signed certificate");
        let error = parse_private_key(
            certified.cert.pem().as_bytes(),
            Path::new("site.key"),
            "key",
        )
        .unwrap_err();
        assert!(error.to_string().contains("PRIVATE KEY"), "{error}");
    }

    #[test]
    fn certificate_info_reads_names_and_dates() {
        let mut params =
            rcgen::CertificateParams::new(vec!["site-a.example".into()]).expect("valid SAN");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "site-a");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let key = rcgen::KeyPair::generate().expect("key pair");
        let certificate = params.self_signed(&key).expect("self-signed");
        let info =
            CertificateInfo::parse(certificate.der(), Path::new("c.pem"), "cert").expect("parses");
        assert_eq!(info.common_name.as_deref(), Some("site-a"));
        assert_eq!(info.dns_names, ["site-a.example"]);
        assert!(info.has_name("SITE-A.example"));
        assert!(!info.has_name("site-b"));
        // 2021-01-01 00:00:00 UTC is 1_609_459_200 (`date -u -d 2021-01-01 +%s`).
        assert_eq!(info.not_after, 1_609_459_200);

        let expired = info
            .check_validity(1_700_000_000, Path::new("c.pem"), "cert")
            .unwrap_err();
        assert!(
            expired
                .to_string()
                .contains("expired on 2021-01-01 00:00:00 UTC"),
            "{expired}"
        );
        let early = info
            .check_validity(1_500_000_000, Path::new("c.pem"), "cert")
            .unwrap_err();
        assert!(
            early.to_string().contains("not valid before 2020-01-01"),
            "{early}"
        );
        assert!(
            info.check_validity(1_590_000_000, Path::new("c.pem"), "cert")
                .is_ok()
        );
    }
}
