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
mod tests {
    use super::*;

    fn data_root() -> PathBuf {
        std::env::var_os("RADSTUDY_DATA_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
    }

    /// Writes a config, key and manifest into `dir` and returns the config
    /// path. Its policy accepts any cohort of at least one patient, so
    /// only file problems are reported.
    fn site(dir: &Path, manifest: &str) -> PathBuf {
        site_with_policy(dir, manifest, "min_patients = 1\nmin_per_class = 0\n")
    }

    /// Like [`site`], with `policy` as the body of the `[policy]` table.
    fn site_with_policy(dir: &Path, manifest: &str, policy: &str) -> PathBuf {
        std::fs::write(dir.join("site.key"), "07".repeat(32)).expect("write key");
        std::fs::write(dir.join("manifest.csv"), manifest).expect("write manifest");
        let config = dir.join("worker.toml");
        std::fs::write(
            &config,
            format!(
                "center_id = \"T\"\ndata_root = {:?}\nmanifest = \"manifest.csv\"\n\
                 pseudonym_key_file = \"site.key\"\nextraction_threads = 2\n\
                 [policy]\n{policy}",
                data_root()
            ),
        )
        .expect("write config");
        config
    }

    fn pseudonym(patient_id: &str) -> Option<String> {
        let key = PseudonymKey::from_bytes(vec![7; 32]).expect("32-byte key");
        Some(key.pseudonym("T", patient_id))
    }

    const HEADER: &str = "patient_id,label,PET_image,PET_mask\n";

    #[test]
    fn check_clean_sts_rows_pass() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = format!(
            "{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
             STS_002,1,sts/STS_002/PET_image.nii.gz,sts/STS_002/PET_mask.nii.gz\n"
        );
        let report = run_check(&site(dir.path(), &manifest), &CheckOptions::default());
        assert!(report.is_clean(), "{}", report.render());
        assert_eq!(report.patients, 2);
        assert_eq!(report.pairs_checked, 2);
        assert!(report.findings.is_empty());
    }

    #[test]
    fn check_output_dir_inside_data_root_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest =
            format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
        let config = site(dir.path(), &manifest);
        let text = std::fs::read_to_string(&config).expect("read config");
        let inside = data_root().join("sts");
        // Top-level keys go before the `[policy]` table.
        let text = format!("output_dir = {inside:?}\n{text}");
        std::fs::write(&config, text).expect("write config");

        let report = run_check(&config, &CheckOptions::default());
        let finding = report
            .findings
            .iter()
            .find(|f| f.field == "output_dir")
            .expect("an output_dir finding");
        assert_eq!(finding.severity, Severity::Error);
        assert!(
            finding.reason.contains("inside the data root"),
            "{}",
            finding.reason
        );
    }

    #[test]
    fn check_cache_dir_problems_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest =
            format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
        let config = site(dir.path(), &manifest);
        let text = std::fs::read_to_string(&config).expect("read config");
        let a_file = dir.path().join("not-a-folder");
        std::fs::write(&a_file, b"").expect("write file");
        let cases = [
            (data_root().join("sts"), "inside the data root"),
            (a_file, "is not a directory"),
        ];
        for (cache_dir, expected) in cases {
            // Top-level keys go before the `[policy]` table.
            std::fs::write(&config, format!("cache_dir = {cache_dir:?}\n{text}"))
                .expect("write config");
            let report = run_check(&config, &CheckOptions::default());
            let finding = report
                .findings
                .iter()
                .find(|f| f.field == "cache_dir")
                .expect("a cache_dir finding");
            assert_eq!(finding.severity, Severity::Error);
            assert!(finding.reason.contains(expected), "{}", finding.reason);
        }
    }

    #[test]
    fn check_missing_mr_image_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        // STS_009 has no MR image in the data set, as its README states.
        let manifest = "patient_id,label,MR_T1_image,MR_T1_mask\n\
                        STS_009,0,sts/STS_009/MR_T1_image.nii.gz,sts/STS_009/MR_T1_mask.nii.gz\n";
        let report = run_check(&site(dir.path(), manifest), &CheckOptions::default());
        assert_eq!(report.error_count(), 1, "{}", report.render());
        let finding = &report.findings[0];
        assert_eq!(finding.line, Some(2));
        assert_eq!(finding.pseudonym, pseudonym("STS_009"));
        assert_eq!(finding.sequence.as_deref(), Some("MR_T1"));
        assert_eq!(finding.kind, "file_missing");
        assert_eq!(finding.field, "MR_T1_image");
        assert!(
            finding.reason.starts_with("file not found; check"),
            "{}",
            finding.reason
        );
    }

    #[test]
    fn check_crossed_mask_is_geometry_mismatch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = "patient_id,label,MR_T1_image,MR_T1_mask\n\
                        STS_001,0,sts/STS_001/MR_T1_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n";
        let report = run_check(&site(dir.path(), manifest), &CheckOptions::default());
        assert_eq!(report.error_count(), 1, "{}", report.render());
        assert_eq!(report.findings[0].kind, "geometry_mismatch");
        assert_eq!(report.findings[0].field, "MR_T1_mask");
    }

    #[test]
    fn check_absent_label_is_mask_invalid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest =
            format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
        let options = CheckOptions {
            label: 7,
            ..CheckOptions::default()
        };
        let report = run_check(&site(dir.path(), &manifest), &options);
        assert_eq!(report.error_count(), 1, "{}", report.render());
        assert_eq!(report.findings[0].kind, "mask_invalid");
        assert!(
            report.findings[0].reason.contains("label 7 not found"),
            "{}",
            report.findings[0].reason
        );
    }

    #[test]
    fn check_manifest_row_problems_are_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = format!(
            "{HEADER}STS_001,2,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
             STS_002,0,../../etc/passwd,sts/STS_002/PET_mask.nii.gz\n\
             STS_003,1,,\n"
        );
        let report = run_check(&site(dir.path(), &manifest), &CheckOptions::default());
        let lines: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.line, f.severity, f.kind))
            .collect();
        assert_eq!(
            lines,
            vec![
                (Some(2), Severity::Error, "manifest_invalid"),
                (Some(3), Severity::Error, "manifest_invalid"),
                (Some(4), Severity::Note, "not_listed"),
            ],
            "{}",
            report.render()
        );
        assert_eq!(report.error_count(), 2);
        assert_eq!(report.pairs_checked, 0);
    }

    #[test]
    fn check_empty_cell_alone_is_clean() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = format!("{HEADER}STS_003,1,,\n");
        let report = run_check(&site(dir.path(), &manifest), &CheckOptions::default());
        assert!(report.is_clean(), "{}", report.render());
        assert_eq!(report.findings.len(), 1);
    }

    #[test]
    fn check_missing_key_still_checks_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = "patient_id,label,MR_T1_image,MR_T1_mask\n\
                        STS_009,0,sts/STS_009/MR_T1_image.nii.gz,sts/STS_009/MR_T1_mask.nii.gz\n";
        let config = site(dir.path(), manifest);
        std::fs::remove_file(dir.path().join("site.key")).expect("remove key");
        let report = run_check(&config, &CheckOptions::default());
        let kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, vec!["pseudonym_key", "file_missing"]);
        assert_eq!(report.findings[1].pseudonym, None);
        assert!(report.findings[0].reason.contains("keygen"));
    }

    #[test]
    fn check_missing_config_is_one_finding() {
        let report = run_check(
            Path::new("/nonexistent/worker.toml"),
            &CheckOptions::default(),
        );
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].kind, "config");
        assert!(
            report.findings[0]
                .reason
                .contains("/nonexistent/worker.toml")
        );
    }

    #[test]
    fn check_tls_missing_cert_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest =
            format!("{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n");
        let config = site(dir.path(), &manifest);
        let mut text = std::fs::read_to_string(&config).expect("read config");
        text = text.replace(
            "[policy]",
            "[tls]\ncert = \"absent.pem\"\nkey = \"absent.key\"\nclient_ca = \"ca.pem\"\n[policy]",
        );
        std::fs::write(&config, text).expect("write config");
        let report = run_check(&config, &CheckOptions::default());
        assert!(!report.is_clean());
        let tls: Vec<&Finding> = report.findings.iter().filter(|f| f.kind == "tls").collect();
        assert_eq!(tls.len(), 1, "{}", report.render());
        assert_eq!(tls[0].field, "tls.cert");
        assert!(tls[0].reason.contains("absent.pem"), "{}", tls[0].reason);
        // The image files are still checked after a TLS problem.
        assert_eq!(report.pairs_checked, 1);
    }

    #[test]
    fn check_tls_certificate_near_expiry_is_a_note() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["site-t".into()]).expect("valid SAN");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 11);
        let certificate = params.self_signed(&key).expect("self-signed");

        std::fs::write(dir.path().join("cert.pem"), certificate.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key");
        let settings = TlsSettings {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            // A self-signed certificate is its own CA.
            client_ca: dir.path().join("cert.pem"),
            allowed_clients: Vec::new(),
        };

        // 2030-01-02 00:00:00 UTC (`date -u -d 2030-01-02 +%s`) is 9 days
        // before not_after, 2030-01-11 00:00:00 UTC.
        let findings = tls_findings(&settings, 1_893_542_400);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Note);
        assert!(
            findings[0].reason.contains("in 9 days"),
            "{}",
            findings[0].reason
        );

        // 2029-01-02 (`date -u -d 2029-01-02 +%s`): not valid yet, an error.
        let early = tls_findings(&settings, 1_862_006_400);
        assert_eq!(early[0].severity, Severity::Error);
        assert_eq!(early[0].field, "tls.cert");
    }

    #[test]
    fn check_missing_data_root_stops_early() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = site(dir.path(), HEADER);
        let options = CheckOptions {
            data_root: Some(dir.path().join("no-such-folder")),
            ..CheckOptions::default()
        };
        let report = run_check(&config, &options);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].kind, "data_root");
        assert!(report.findings[0].reason.contains("--data-root"));
    }

    #[test]
    fn check_small_cohort_is_policy_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = format!(
            "{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
             STS_002,1,sts/STS_002/PET_image.nii.gz,sts/STS_002/PET_mask.nii.gz\n"
        );
        let config = site_with_policy(dir.path(), &manifest, "min_patients = 3\n");
        let report = run_check(&config, &CheckOptions::default());
        assert_eq!(report.error_count(), 1, "{}", report.render());
        let finding = &report.findings[0];
        assert_eq!(finding.line, None);
        assert_eq!(finding.kind, "policy");
        assert_eq!(finding.field, "policy.min_patients");
        assert!(finding.reason.contains("2 patients"), "{}", finding.reason);
        assert!(
            finding.reason.contains("policy.min_patients = 3"),
            "{}",
            finding.reason
        );
        assert_eq!(report.pairs_checked, 2, "the files are still checked");
    }

    #[test]
    fn check_small_class_is_policy_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = format!(
            "{HEADER}STS_001,0,sts/STS_001/PET_image.nii.gz,sts/STS_001/PET_mask.nii.gz\n\
             STS_002,1,sts/STS_002/PET_image.nii.gz,sts/STS_002/PET_mask.nii.gz\n\
             STS_003,0,sts/STS_003/PET_image.nii.gz,sts/STS_003/PET_mask.nii.gz\n"
        );
        let config = site_with_policy(
            dir.path(),
            &manifest,
            "min_patients = 3\nmin_per_class = 2\n",
        );
        let report = run_check(&config, &CheckOptions::default());
        assert_eq!(report.error_count(), 1, "{}", report.render());
        let finding = &report.findings[0];
        assert_eq!(finding.kind, "policy");
        assert_eq!(finding.field, "policy.min_per_class");
        assert!(
            finding
                .reason
                .contains("2 patients with label 0 and 1 with label 1"),
            "{}",
            finding.reason
        );
        assert!(
            finding.reason.contains("policy.min_per_class = 2"),
            "{}",
            finding.reason
        );
    }

    #[test]
    fn cohort_policy_problems_for_serve_warning() {
        let root = tempfile::tempdir().expect("temp dir");
        let manifest = Manifest::parse(
            format!("{HEADER}X1,1,x1.nii.gz,x1_mask.nii.gz\n").as_bytes(),
            Path::new("manifest.csv"),
            root.path(),
        )
        .expect("manifest");
        let fields = |policy: &Policy| -> Vec<&'static str> {
            cohort_policy_problems(&manifest, policy)
                .into_iter()
                .map(|(field, _)| field)
                .collect()
        };

        // The default policy wants 5 patients and 1 per class.
        assert_eq!(
            fields(&Policy::default()),
            vec!["policy.min_patients", "policy.min_per_class"]
        );
        let small = Policy {
            min_patients: 1,
            min_per_class: 0,
            ..Policy::default()
        };
        assert!(fields(&small).is_empty());
    }

    #[test]
    fn check_render_aligns_columns() {
        let report = CheckReport {
            patients: 2,
            pairs_checked: 2,
            findings: vec![
                Finding {
                    line: Some(10),
                    pseudonym: Some("A-0123456789abcdef".into()),
                    sequence: Some("MR_T1".into()),
                    severity: Severity::Error,
                    kind: "file_missing",
                    field: "MR_T1_image".into(),
                    reason: "file not found".into(),
                },
                Finding {
                    line: Some(9),
                    pseudonym: None,
                    sequence: Some("PET".into()),
                    severity: Severity::Note,
                    kind: "not_listed",
                    field: "PET_image".into(),
                    reason: "no image listed".into(),
                },
            ],
        };
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        // Every row's REASON column starts where the header's does.
        let reason_column = lines[0].find("REASON").expect("header has REASON");
        assert_eq!(lines[1].find("file not found"), Some(reason_column));
        assert_eq!(lines[2].find("no image listed"), Some(reason_column));
        assert_eq!(
            lines[4],
            "2 patients, 2 image/mask pairs checked: 1 error, 1 note"
        );

        let one = CheckReport {
            patients: 1,
            pairs_checked: 1,
            findings: Vec::new(),
        };
        assert_eq!(
            one.render(),
            "1 patient, 1 image/mask pair checked: 0 errors, 0 notes\n"
        );
    }
}
