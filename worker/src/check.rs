//! `radstudy-worker check`: the site's preflight before a study.
//!
//! It loads `worker.toml`, the pseudonym key and the cohort manifest. It
//! then opens every image and mask that the manifest lists and runs the
//! checks that an extraction round runs before the feature kernels. Both
//! files must be readable under the data root, and the mask grid must equal
//! the image grid within the configured tolerance. The ROI label must be
//! present, the ROI large enough, and its intensities finite. It contacts
//! no coordinator and opens no port.
//!
//! Problems are reported by manifest line and pseudonym, the way the
//! worker's log names them, so that the report can be read without the
//! local patient ids on screen.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{Policy, WorkerConfig};
use crate::error::{Exclusion, ExclusionKind};
use crate::extract::{ExtractContext, load_sequence};
use crate::feature_request::FeatureRequest;
use crate::features::ExtractionSettings;
use crate::manifest::{Manifest, SequenceFiles};
use crate::mask;
use crate::pseudonym::PseudonymKey;
use crate::tls::pem_files::{format_utc, unix_now};
use crate::tls::{EXPIRY_WARNING_DAYS, ServerTls, TlsSettings};

/// Options of `radstudy-worker check` besides the config file.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Replaces the config's `data_root`.
    pub data_root: Option<PathBuf>,
    /// Mask label of the ROI, as the study's `features.label` will request.
    /// A manifest row's `<sequence>_label` cell replaces it for that row.
    pub label: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            data_root: None,
            label: 1,
        }
    }
}

/// How much a finding matters for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The patient or sequence would be excluded, or the worker would not
    /// start; `check` exits non-zero.
    Error,
    /// The manifest leaves a sequence empty for a patient on purpose; the
    /// round reports it as `not_listed`, and `check` still exits 0.
    Note,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Note => "note",
        }
    }
}

/// One finding of the preflight.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Manifest line (the header is line 1); `None` for a config, key or
    /// whole-manifest problem.
    pub line: Option<u64>,
    /// Pseudonym of the row's patient; `None` when the row has no id or the
    /// key cannot be read.
    pub pseudonym: Option<String>,
    /// Sequence the finding concerns, if any.
    pub sequence: Option<String>,
    /// Whether the finding fails the check.
    pub severity: Severity,
    /// Category: an [`ExclusionKind`] name, or `config`, `pseudonym_key`,
    /// `data_root`, `manifest` or `policy` for site-level problems.
    pub kind: &'static str,
    /// Config key or manifest column concerned, for example `MR_T1_mask`.
    pub field: String,
    /// The problem and, where known, its fix.
    pub reason: String,
}

/// Result of a preflight.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Accepted manifest rows.
    pub patients: usize,
    /// Image/mask pairs opened and checked.
    pub pairs_checked: usize,
    /// Findings sorted by manifest line, then sequence.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Returns the number of findings that fail the check.
    pub fn error_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == Severity::Error)
            .count()
    }

    /// Returns whether no finding fails the check.
    pub fn is_clean(&self) -> bool {
        self.error_count() == 0
    }

    /// Formats the findings as a table with aligned columns, followed by a
    /// summary line.
    pub fn render(&self) -> String {
        let header = [
            "LINE",
            "PSEUDONYM",
            "SEQUENCE",
            "SEVERITY",
            "KIND",
            "FIELD",
            "REASON",
        ];
        let rows: Vec<[String; 7]> = self
            .findings
            .iter()
            .map(|finding| {
                [
                    finding
                        .line
                        .map_or_else(|| "-".to_string(), |line| line.to_string()),
                    finding.pseudonym.clone().unwrap_or_else(|| "-".into()),
                    finding.sequence.clone().unwrap_or_else(|| "-".into()),
                    finding.severity.as_str().to_string(),
                    finding.kind.to_string(),
                    if finding.field.is_empty() {
                        "-".to_string()
                    } else {
                        finding.field.clone()
                    },
                    finding.reason.clone(),
                ]
            })
            .collect();

        let mut output = String::new();
        if !rows.is_empty() {
            let mut widths = header.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            let mut push_row = |cells: [&str; 7]| {
                let mut line = String::new();
                for (column, cell) in cells.iter().enumerate() {
                    if column + 1 == cells.len() {
                        // The reason is last and not padded.
                        line.push_str(cell);
                    } else {
                        let _ = write!(line, "{cell:<width$}  ", width = widths[column]);
                    }
                }
                output.push_str(line.trim_end());
                output.push('\n');
            };
            push_row(header);
            for row in &rows {
                push_row(row.each_ref().map(String::as_str));
            }
            output.push('\n');
        }
        let errors = self.error_count();
        let notes = self.findings.len() - errors;
        let _ = writeln!(
            output,
            "{}, {} checked: {}, {}",
            count_of(self.patients, "patient", "patients"),
            count_of(self.pairs_checked, "image/mask pair", "image/mask pairs"),
            count_of(errors, "error", "errors"),
            count_of(notes, "note", "notes"),
        );
        output
    }
}

/// Formats `count` with the singular noun for 1 and the plural otherwise.
fn count_of(count: usize, singular: &str, plural: &str) -> String {
    let noun = if count == 1 { singular } else { plural };
    format!("{count} {noun}")
}

/// Runs the preflight on the site files named by `config_path`.
///
/// Site-level problems (config, key, data root, manifest header) end the
/// check early with one finding, because every later step depends on
/// them. Patient-level problems are all collected.
pub fn run_check(config_path: &Path, options: &CheckOptions) -> CheckReport {
    let mut report = CheckReport::default();
    let site_problem = |kind: &'static str, field: &str, reason: String| Finding {
        line: None,
        pseudonym: None,
        sequence: None,
        severity: Severity::Error,
        kind,
        field: field.to_string(),
        reason,
    };

    let mut config = match WorkerConfig::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            report
                .findings
                .push(site_problem("config", "", error_chain(&error)));
            return report;
        }
    };
    if let Some(root) = &options.data_root {
        config.data_root = root.clone();
    }

    if let Some(settings) = &config.tls {
        report.findings.extend(tls_findings(settings, unix_now()));
    }

    // Without the key the files can still be checked; rows are then named
    // by manifest line only.
    let key = match PseudonymKey::load(&config.pseudonym_key_file) {
        Ok(key) => Some(key),
        Err(error) => {
            report.findings.push(site_problem(
                "pseudonym_key",
                "pseudonym_key_file",
                error_chain(&error),
            ));
            None
        }
    };
    let canonical_root = match std::fs::canonicalize(&config.data_root) {
        Ok(root) => root,
        Err(error) => {
            report.findings.push(site_problem(
                "data_root",
                "data_root",
                format!(
                    "cannot open data root {}: {error}; set data_root in the config or pass --data-root",
                    config.data_root.display()
                ),
            ));
            return report;
        }
    };
    if let Some(reason) = output_dir_problem(&config.output_dir, &canonical_root) {
        report
            .findings
            .push(site_problem("output_dir", "output_dir", reason));
    }
    if let Some(reason) = cache_dir_problem(&config.cache_dir, &canonical_root) {
        report
            .findings
            .push(site_problem("cache_dir", "cache_dir", reason));
    }
    let manifest = match Manifest::load(&config.manifest, &config.data_root) {
        Ok(manifest) => manifest,
        Err(error) => {
            report
                .findings
                .push(site_problem("manifest", "manifest", error_chain(&error)));
            return report;
        }
    };
    report.patients = manifest.entries.len();
    for (field, reason) in cohort_policy_problems(&manifest, &config.policy) {
        report.findings.push(site_problem("policy", field, reason));
    }

    let center = config.center_id.as_str();
    let pseudonym_of = |patient_id: &str| key.as_ref().map(|key| key.pseudonym(center, patient_id));

    for row in &manifest.rejected {
        report.findings.push(Finding {
            line: Some(row.problem.line),
            pseudonym: row.patient_id.as_deref().and_then(pseudonym_of),
            sequence: None,
            severity: Severity::Error,
            kind: ExclusionKind::ManifestInvalid.as_str(),
            field: row.problem.field.clone(),
            reason: row.problem.reason.clone(),
        });
    }

    let mut jobs = Vec::new();
    for entry in &manifest.entries {
        let pseudonym = pseudonym_of(&entry.patient_id);
        for (sequence, files) in &entry.sequences {
            match files {
                Ok(files) => jobs.push(PairJob {
                    line: entry.line,
                    pseudonym: pseudonym.clone(),
                    sequence: sequence.clone(),
                    files: files.clone(),
                }),
                Err(problem) => {
                    let (severity, kind) = if problem.empty_cell {
                        (Severity::Note, ExclusionKind::NotListed)
                    } else {
                        (Severity::Error, ExclusionKind::ManifestInvalid)
                    };
                    report.findings.push(Finding {
                        line: Some(entry.line),
                        pseudonym: pseudonym.clone(),
                        sequence: Some(sequence.clone()),
                        severity,
                        kind: kind.as_str(),
                        field: problem.field.clone(),
                        reason: problem.reason.clone(),
                    });
                }
            }
        }
    }

    report.pairs_checked = jobs.len();
    let features = FeatureRequest::from_settings(ExtractionSettings {
        classes: Vec::new(),
        bin_width: 1.0,
        label: options.label,
    });
    let context = ExtractContext {
        canonical_root: &canonical_root,
        features: &features,
        tolerance: &config.geometry_tolerance,
    };
    report
        .findings
        .extend(check_pairs(&jobs, &context, config.extraction_threads));
    report.findings.sort_by(|a, b| {
        (a.line, &a.sequence, a.severity, &a.field).cmp(&(
            b.line,
            &b.sequence,
            b.severity,
            &b.field,
        ))
    });
    report
}

/// Loads the `[tls]` files as `serve` does, at `now` (seconds since the
/// Unix epoch). A file that `serve` would reject is an error, and a
/// certificate that expires within [`EXPIRY_WARNING_DAYS`] is a note.
fn tls_findings(settings: &TlsSettings, now: i64) -> Vec<Finding> {
    let finding = |severity, field: String, reason| Finding {
        line: None,
        pseudonym: None,
        sequence: None,
        severity,
        kind: "tls",
        field,
        reason,
    };
    match ServerTls::load_at(settings, now) {
        Err(error) => vec![finding(
            Severity::Error,
            format!("tls.{}", error.field()),
            error.to_string(),
        )],
        Ok(tls) if tls.days_left(now) < EXPIRY_WARNING_DAYS => vec![finding(
            Severity::Note,
            "tls.cert".to_string(),
            format!(
                "certificate {} expires on {}, in {} days; issue a new one before then",
                tls.certificate.subject,
                format_utc(tls.certificate.not_after),
                tls.days_left(now)
            ),
        )],
        Ok(_) => Vec::new(),
    }
}

/// Lists each policy threshold that the manifest's accepted rows fall
/// below, as (config key, reason). The worker releases nothing below
/// `policy.min_patients`, and no feature table or labelled aggregate below
/// `policy.min_per_class` in a class, so such a cohort cannot take part in a
/// study. `serve` logs these as warnings and `check` reports them as errors.
pub fn cohort_policy_problems(manifest: &Manifest, policy: &Policy) -> Vec<(&'static str, String)> {
    let (n_negative, n_positive) = manifest.label_counts();
    let n_patients = n_negative + n_positive;
    let mut problems = Vec::new();
    if n_patients < policy.min_patients {
        problems.push((
            "policy.min_patients",
            format!(
                "the manifest has {n_patients} patients, fewer than policy.min_patients = {}, \
                 so the worker would reject every feature table and aggregate; \
                 add patients to the manifest or lower policy.min_patients in worker.toml",
                policy.min_patients
            ),
        ));
    }
    if n_negative.min(n_positive) < policy.min_per_class {
        problems.push((
            "policy.min_per_class",
            format!(
                "the manifest has {n_negative} patients with label 0 and {n_positive} with label 1, \
                 fewer than policy.min_per_class = {} in one class, \
                 so the worker would reject every feature table and labelled aggregate; \
                 add patients of that class or lower policy.min_per_class in worker.toml",
                policy.min_per_class
            ),
        ));
    }
    problems
}

/// Joins an error's message with those of its sources, as `a: b: c`.
/// Returns why the habitat map directory cannot be used: it is a file, or
/// it lies under the data root, which contains the site's originals and may be
/// read-only. A directory that does not exist yet is fine, because
/// `ApplyHabitatModel` creates it.
fn output_dir_problem(output_dir: &Path, canonical_root: &Path) -> Option<String> {
    if output_dir.exists() && !output_dir.is_dir() {
        return Some(format!(
            "{} exists and is not a directory; set output_dir to a directory for the habitat maps",
            output_dir.display()
        ));
    }
    let resolved = std::fs::canonicalize(output_dir).unwrap_or_else(|_| output_dir.to_path_buf());
    if resolved.starts_with(canonical_root) {
        return Some(format!(
            "{} is inside the data root; set output_dir to a directory outside it",
            output_dir.display()
        ));
    }
    None
}

/// Returns why the result cache directory cannot be used: it is a file, or
/// it lies under the data root, where its entries would mix with the site's
/// originals. A directory that does not exist yet is fine, because the
/// worker creates it at start.
fn cache_dir_problem(cache_dir: &Path, canonical_root: &Path) -> Option<String> {
    if cache_dir.exists() && !cache_dir.is_dir() {
        return Some(format!(
            "{} exists and is not a directory; set cache_dir to a directory for the result cache",
            cache_dir.display()
        ));
    }
    let resolved = std::fs::canonicalize(cache_dir).unwrap_or_else(|_| cache_dir.to_path_buf());
    if resolved.starts_with(canonical_root) {
        return Some(format!(
            "{} is inside the data root; set cache_dir to a directory outside it",
            cache_dir.display()
        ));
    }
    None
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One image/mask pair to open.
struct PairJob {
    line: u64,
    pseudonym: Option<String>,
    sequence: String,
    files: SequenceFiles,
}

/// Checks every pair on up to `threads` threads and returns one finding per
/// pair that fails.
fn check_pairs(jobs: &[PairJob], context: &ExtractContext<'_>, threads: usize) -> Vec<Finding> {
    let next = AtomicUsize::new(0);
    let findings = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(exclusion) = check_pair(job, context) {
                        let finding = Finding {
                            line: Some(job.line),
                            pseudonym: job.pseudonym.clone(),
                            sequence: Some(job.sequence.clone()),
                            severity: Severity::Error,
                            kind: exclusion.kind.as_str(),
                            field: exclusion.field,
                            reason: exclusion.reason,
                        };
                        findings
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push(finding);
                    }
                }
            });
        }
    });
    findings
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens one pair as an extraction round would, and checks its ROI
/// intensities; stops before the feature kernels.
fn check_pair(job: &PairJob, context: &ExtractContext<'_>) -> Result<(), Exclusion> {
    let loaded = load_sequence(&job.sequence, &job.files, context)?;
    mask::roi_values(&loaded.image, &loaded.roi).map_err(|non_finite| {
        Exclusion::new(
            ExclusionKind::IntensityInvalid,
            format!("{}_image", job.sequence),
            format!(
                "{non_finite} of {} ROI voxels are NaN or infinite",
                loaded.roi.voxel_count
            ),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests;
