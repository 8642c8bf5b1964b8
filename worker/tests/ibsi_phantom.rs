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
//! The test prints one table row per family and fails on any miss. Reference rows that no
//! implemented feature covers must be listed in `NOT_IMPLEMENTED`, and every entry there
//! must cover at least one row, so nothing is skipped silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use radstudy_worker::features::ibsi::{Family, IbsiSettings, compute};
use radstudy_worker::image::read_volume;
use radstudy_worker::mask::select_label_spanning;

/// Float rounding allowance on top of compare_abs_tol.
const ROUNDING: f64 = 1e-12;

/// Reference tags without a computed value, as (tag suffix or tag, reason).
const NOT_IMPLEMENTED: [(&str, &str); 8] = [
    ("morph_vol_dens_conv_hull", "convex hull not implemented"),
    ("morph_area_dens_conv_hull", "convex hull not implemented"),
    ("_2D_avg", "2-D aggregation not implemented"),
    ("_2D_comb", "2-D aggregation not implemented"),
    ("_2_5D_avg", "2.5-D aggregation not implemented"),
    ("_2_5D_comb", "2.5-D aggregation not implemented"),
    ("_2D", "2-D aggregation not implemented"),
    ("_2_5D", "2.5-D aggregation not implemented"),
];

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

#[test]
fn digital_phantom_matches_ibsi_reference() {
    let root = data_root().join("ibsi");
    let image =
        read_volume(&root.join("digital_phantom/image.nii.gz")).expect("phantom image reads");
    let labels =
        read_volume(&root.join("digital_phantom/mask.nii.gz")).expect("phantom mask reads");
    let roi = select_label_spanning(&labels, 1, 3).expect("phantom mask has label 1");
    assert_eq!(roi.voxel_count, 74, "the phantom ROI has 74 voxels");

    let features = compute(&image, &roi, &Family::ALL, &IbsiSettings::digital_phantom())
        .expect("IBSI features of the phantom");
    let computed: BTreeMap<&str, (f64, &str)> = features
        .iter()
        .map(|feature| (feature.tag.as_str(), (feature.value, feature.code)))
        .collect();
    assert_eq!(computed.len(), features.len(), "feature tags are unique");

    let reference = read_reference(&root.join("digital_phantom_reference.csv"));
    let mut passed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    let mut skipped: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut code_mismatches = Vec::new();
    let mut used_patterns = std::collections::BTreeSet::new();
    for row in &reference {
        let Some(&(value, code)) = computed.get(row.tag.as_str()) else {
            let reason = not_implemented_reason(&row.tag).unwrap_or_else(|| {
                panic!(
                    "reference tag {} is neither computed nor listed as not implemented",
                    row.tag
                )
            });
            used_patterns.insert(reason);
            *skipped
                .entry(&row.family)
                .or_default()
                .entry(reason)
                .or_default() += 1;
            continue;
        };
        *totals.entry(&row.family).or_default() += 1;
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

    println!(
        "{:<28} {:>8} {:>6}  not implemented",
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
            "{:<28} {:>8} {:>6}  {}",
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
            "family {} has no compared value",
            family.name()
        );
    }
    assert!(
        misses.is_empty(),
        "{} values outside tolerance:\n{}",
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
            used_patterns.contains(reason),
            "NOT_IMPLEMENTED reason {reason:?} covers no reference row"
        );
    }
}
