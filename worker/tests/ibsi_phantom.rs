//! IBSI mode against the IBSI-1 reference values of the digital phantom (5 × 4 × 4 voxels
//! of 2 mm, grey levels 1 to 6, 74 ROI voxels), read from `ibsi/` under the shared data
//! root: `digital_phantom/{image,mask}.nii.gz` and `digital_phantom_reference.csv`.
//!
//! Settings are the phantom's: no discretisation (fixed bin size 1 from 1, N_g = 6 so the
//! empty levels 2 and 5 count), Chebyshev distance 1, NGLDM α = 0, IVH range [1, 6].
//!
//! Tolerance: a value passes when |computed − reference| ≤ compare_abs_tol + 1e-12.
//! compare_abs_tol is the IBSI tolerance where IBSI gives one (morphology) and otherwise
//! half a unit in the third significant digit, because the manual prints three digits;
//! 1e-12 absorbs float rounding, since the one reference value of 0 has tolerance 0.
//!
//! Both tests print one table row per family and fail on any miss. Reference rows that no
//! implemented feature covers must be listed in `NOT_IMPLEMENTED`, and every entry there
//! must cover at least one row, so nothing is skipped silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use radstudy_worker::features::ibsi::{Family, IbsiSettings, code_of, compute, feature_tags};
use radstudy_worker::features::{compute_with_options, ibsi_columns};
use radstudy_worker::image::{Volume, read_volume};
use radstudy_worker::mask::{Roi, select_label_spanning};
use radstudy_worker::params::parse_parameters;

/// Float rounding allowance on top of compare_abs_tol.
const ROUNDING: f64 = 1e-12;

/// Reference tags without a computed value, as (tag suffix or tag, reason).
const NOT_IMPLEMENTED: [(&str, &str); 0] = [];

fn data_root() -> PathBuf {
    std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// One row of the reference table.
struct Reference {
    family: String,
    tag: String,
    code: String,
    value: f64,
    tolerance: f64,
}

fn read_reference(path: &Path) -> Vec<Reference> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
    let headers = reader.headers().expect("reference has a header").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|header| header == name)
            .unwrap_or_else(|| panic!("reference lacks column {name}"))
    };
    let (family, code, instance, tag, value, tolerance) = (
        column("family"),
        column("ibsi_code"),
        column("ibsi_instance_code"),
        column("feature_tag"),
        column("value"),
        column("compare_abs_tol"),
    );
    reader
        .records()
        .map(|record| {
            let record = record.expect("reference row parses");
            let number = |index: usize| -> f64 {
                record[index]
                    .parse()
                    .unwrap_or_else(|_| panic!("row {}: not a number", &record[tag]))
            };
            let instance_code = &record[instance];
            Reference {
                family: record[family].to_string(),
                tag: record[tag].to_string(),
                code: if instance_code.is_empty() {
                    record[code].to_string()
                } else {
                    instance_code.to_string()
                },
                value: number(value),
                tolerance: number(tolerance),
            }
        })
        .collect()
}

fn not_implemented_reason(tag: &str) -> Option<&'static str> {
    NOT_IMPLEMENTED
        .iter()
        .find(|(pattern, _)| tag == *pattern || tag.ends_with(pattern))
        .map(|(_, reason)| *reason)
}

/// Parameter file of the phantom conventions: bins of width 1 from the lower bound of the
/// re-segmentation range [1, 6], which is also the IVH range.
const PHANTOM_PARAMETERS: &str = "
setting:
  ibsiMode: true
  binWidth: 1
  resegmentRange: [1, 6]
  label: 1
featureClass:
  shape:
  firstorder:
  glcm:
  glrlm:
  glszm:
  gldm:
  ngtdm:
";

fn read_phantom() -> (Volume, Roi) {
    let root = data_root().join("ibsi/digital_phantom");
    let image = read_volume(&root.join("image.nii.gz")).expect("phantom image reads");
    let labels = read_volume(&root.join("mask.nii.gz")).expect("phantom mask reads");
    let roi = select_label_spanning(&labels, 1, 3).expect("phantom mask has label 1");
    assert_eq!(roi.voxel_count, 74, "the phantom ROI has 74 voxels");
    (image, roi)
}

/// Compares computed values, by tag, with every reference row and prints the per-family
/// table. Fails on a miss, on an unlisted missing tag and on a wrong IBSI code.
fn compare_with_reference(label: &str, computed: &BTreeMap<String, f64>) {
    let path = data_root().join("ibsi/digital_phantom_reference.csv");
    let reference = read_reference(&path);
    let mut passed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    let mut skipped: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut code_mismatches = Vec::new();
    let mut used_reasons = std::collections::BTreeSet::new();
    for row in &reference {
        let Some(&value) = computed.get(&row.tag) else {
            let reason = not_implemented_reason(&row.tag).unwrap_or_else(|| {
                panic!(
                    "reference tag {} is neither computed nor listed as not implemented",
                    row.tag
                )
            });
            used_reasons.insert(reason);
            *skipped
                .entry(&row.family)
                .or_default()
                .entry(reason)
                .or_default() += 1;
            continue;
        };
        *totals.entry(&row.family).or_default() += 1;
        let code = code_of(&row.tag);
        if code != row.code {
            code_mismatches.push(format!("{}: code {code}, reference {}", row.tag, row.code));
        }
        if (value - row.value).abs() <= row.tolerance + ROUNDING {
            *passed.entry(&row.family).or_default() += 1;
        } else {
            misses.push(format!(
                "{} {} ({}): computed {value:.6}, reference {} ± {}",
                row.family, row.tag, row.code, row.value, row.tolerance
            ));
        }
    }

    println!("{label}");
    println!(
        "{:<28} {:>6} {:>6}  not implemented",
        "family", "passed", "total"
    );
    for family in Family::ALL {
        let name = family.name();
        let skipped_text: Vec<String> = skipped
            .get(name)
            .map(|reasons| {
                reasons
                    .iter()
                    .map(|(reason, count)| format!("{count} ({reason})"))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{:<28} {:>6} {:>6}  {}",
            name,
            passed.get(name).copied().unwrap_or(0),
            totals.get(name).copied().unwrap_or(0),
            skipped_text.join(", ")
        );
    }
    for miss in &misses {
        println!("MISS {miss}");
    }

    for family in Family::ALL {
        assert!(
            totals.get(family.name()).copied().unwrap_or(0) > 0,
            "{label}: family {} has no compared value",
            family.name()
        );
    }
    assert!(
        misses.is_empty(),
        "{label}: {} values outside tolerance:\n{}",
        misses.len(),
        misses.join("\n")
    );
    assert!(
        code_mismatches.is_empty(),
        "IBSI codes differ:\n{}",
        code_mismatches.join("\n")
    );
    for (_, reason) in NOT_IMPLEMENTED {
        assert!(
            used_reasons.contains(reason),
            "NOT_IMPLEMENTED reason {reason:?} covers no reference row"
        );
    }
}

#[test]
fn phantom_families_match_reference() {
    let (image, roi) = read_phantom();
    let features = compute(
        &image,
        &roi,
        &roi,
        &Family::ALL,
        &IbsiSettings::digital_phantom(),
    )
    .expect("IBSI features of the phantom");
    let computed: BTreeMap<String, f64> = features
        .iter()
        .map(|feature| (feature.tag.clone(), feature.value))
        .collect();
    assert_eq!(computed.len(), features.len(), "feature tags are unique");
    for family in Family::ALL {
        let tags: Vec<&str> = features
            .iter()
            .filter(|feature| feature.family == family)
            .map(|feature| feature.tag.as_str())
            .collect();
        assert_eq!(tags, feature_tags(family), "tags of {}", family.name());
    }
    for feature in &features {
        assert_eq!(
            feature.code,
            code_of(&feature.tag),
            "code of {}",
            feature.tag
        );
        assert!(!feature.code.is_empty(), "{} has an IBSI code", feature.tag);
    }
    compare_with_reference("IBSI families, phantom settings", &computed);
}

#[test]
fn phantom_parameter_file_matches_reference() {
    let (image, roi) = read_phantom();
    let parameters = parse_parameters(PHANTOM_PARAMETERS).expect("phantom parameter file parses");
    let columns = compute_with_options(&image, &roi, &parameters.settings, &parameters.options)
        .expect("IBSI mode computes the phantom");
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ibsi_columns(&parameters.settings), "column order");

    let mut computed = BTreeMap::new();
    for (name, value) in columns {
        let tag = name
            .strip_prefix("ibsi_")
            .unwrap_or_else(|| panic!("column {name} lacks the ibsi_ prefix"));
        assert!(
            computed.insert(tag.to_string(), value).is_none(),
            "column {name} is repeated"
        );
    }
    compare_with_reference("ibsiMode parameter file", &computed);
}
