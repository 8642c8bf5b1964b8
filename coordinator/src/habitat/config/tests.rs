use super::*;

fn parse(text: &str) -> Result<HabitatConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn habitat_defaults_follow_method() {
    let config = HabitatConfig::default();
    assert!(!config.enabled);
    assert_eq!(config.k, KChoice::Criterion(KCriterion::CalinskiHarabasz));
    assert_eq!(config.candidates(), (2..=10).collect::<Vec<_>>());
    assert_eq!(config.supervoxels.supervoxels, 40);
    assert_eq!(config.entropy.window_edge, 9);
    assert_eq!(config.entropy.bins, 256);
    assert_eq!(config.min_region_voxels, 50);
    assert_eq!(config.order_by, OrderBy::Depth);
    assert_eq!(config.check(), Ok(()));
}

#[test]
fn habitat_k_reads_number_or_criterion() {
    let fixed = parse("k = 2").expect("fixed K");
    assert_eq!(fixed.k, KChoice::Fixed(2));
    assert_eq!(fixed.candidates(), vec![2]);
    let silhouette = parse("k = \"silhouette\"").expect("criterion");
    assert_eq!(silhouette.k, KChoice::Criterion(KCriterion::Silhouette));
    assert!(parse("k = \"elbow\"").is_err());
}

#[test]
fn habitat_bic_needs_gmm() {
    let kmeans = parse("k = \"bic\"").expect("parses");
    assert_eq!(kmeans.check().map_err(|e| e.0), Err("habitat.k"));
    let gmm = parse("k = \"bic\"\nmethod = \"gmm\"").expect("parses");
    assert_eq!(gmm.check(), Ok(()));
}

#[test]
fn habitat_check_names_the_key() {
    let cases = [
        ("k = 11", "habitat.k"),
        ("k_min = 1", "habitat.k_min"),
        ("k_min = 5\nk_max = 4", "habitat.k_min"),
        ("[entropy]\nwindow_edge = 8", "habitat.entropy.window_edge"),
        ("[entropy]\nbins = 4", "habitat.entropy.bins"),
        (
            "[entropy]\nboundary = \"mirror\"",
            "habitat.entropy.boundary",
        ),
        (
            "[supervoxels]\nsupervoxels = 5",
            "habitat.supervoxels.supervoxels",
        ),
        ("regions = [\"core\"]", "habitat.regions"),
        ("regions = [\"tumour\"]", "habitat.regions"),
        ("regions = []", "habitat.regions"),
        (
            "[geometric]\nsplit = \"absolute\"\nthreshold_mm = 8.0",
            "habitat.geometric.threshold_mm",
        ),
        ("min_region_voxels = 0", "habitat.min_region_voxels"),
    ];
    for (text, key) in cases {
        let config = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(config.check().map_err(|e| e.0), Err(key), "{text}");
    }
}

#[test]
fn habitat_regions_expand_habitat_names() {
    let config = parse(
        "regions = [\"whole\", \"habitats\", \"inner\", \"core\", \"rim\"]\n[geometric]\nsplit = \"relative\"",
    )
    .expect("parses");
    assert_eq!(config.check(), Ok(()));
    let names = vec!["inner".to_string(), "mid_2".into(), "marginal".into()];
    assert_eq!(
        config.extraction_regions(&names),
        ["whole", "inner", "mid_2", "marginal", "core", "rim"]
    );
    assert_eq!(
        config.geometric_options().map(|g| g.rule),
        Some("relative".into())
    );
}
