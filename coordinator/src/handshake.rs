//! Round 1 of a study: the handshake with each worker.
//!
//! A worker is left out, with a reason the user can act on, in five cases.
//! It reports another center id or a contract it cannot speak. Its manifest
//! lacks a sequence, or its policy keeps what the study needs. Or its
//! feature definitions differ from the majority's.
//!
//! Versions: the contract is `MAJOR.MINOR`. Another major version cannot
//! talk to this coordinator at all. Minor versions only add calls and
//! fields, so a worker of an older minor version takes part in every study
//! that uses none of the newer calls: contract 1.0 workers can still
//! extract and share tables, while the ICC filter (at development
//! centers), scores-only validation and federated fitting need 1.1, the
//! habitat rounds need 1.2 at every center, habitat models fitted as
//! Gaussian mixtures need 1.3, whose workers assign by posterior, and a
//! PyRadiomics parameter document in `[features]` needs 1.4 at every
//! center. Sites can therefore upgrade one at a time.

use radstudy_proto::v1::DescribeResponse;
use tracing::{info, warn};

use crate::client::CenterClient;
use crate::client::retry::with_retry;
use crate::config::{CenterConfig, CenterMode, CenterRole, Harmonization, StudyConfig};
use crate::habitat::config::ClusterMethod;
use crate::run::CenterFailure;

/// Checks a worker's contract version against what this study needs from
/// that center.
///
/// # Errors
///
/// A message naming both versions and what to upgrade.
pub(crate) fn check_contract(
    config: &StudyConfig,
    center: &str,
    contract_version: &str,
    scores_only: bool,
) -> Result<(), String> {
    let Some((major, minor)) = radstudy_proto::parse_contract_version(contract_version) else {
        return Err(format!(
            "the worker reports contract version {contract_version:?}, which is not MAJOR.MINOR; upgrade the worker"
        ));
    };
    if major != radstudy_proto::CONTRACT_MAJOR {
        return Err(format!(
            "the worker speaks contract {contract_version}, this coordinator {}; run the same major version at every site",
            radstudy_proto::contract_version()
        ));
    }

    let mut needs = Vec::new();
    if config.icc.enabled && center_role(config, center) == CenterRole::Development {
        needs.push("the ICC filter");
    }
    if scores_only {
        needs.push("scores-only validation");
    }
    if config.federated.logistic {
        needs.push("federated fitting");
    }
    if minor < 1 && !needs.is_empty() {
        return Err(format!(
            "the worker speaks contract {contract_version}, and {} need 1.1; upgrade the worker, or turn them off in study.toml",
            needs.join(", ")
        ));
    }
    // Every center, development or external, runs both habitat rounds,
    // since its regions come from the same population model.
    if minor < 2 && config.habitat.enabled {
        return Err(format!(
            "the worker speaks contract {contract_version}, and the habitat rounds need 1.2; upgrade the worker, or set [habitat] enabled = false in study.toml"
        ));
    }
    // A 1.2 worker ignores the mixture fields of HabitatModel and would
    // assign by nearest component mean.
    if minor < 3 && config.habitat.enabled && config.habitat.method == ClusterMethod::Gmm {
        return Err(format!(
            "the worker speaks contract {contract_version}, and habitat models with method = \"gmm\" need 1.3; upgrade the worker, or set method = \"kmeans\" in [habitat] of study.toml"
        ));
    }
    // A 1.3 worker does not read `parameters_json`, so it would reject the
    // request for its empty classes with a message that does not say why.
    if minor < 4 && config.features.parameters_json.is_some() {
        return Err(format!(
            "the worker speaks contract {contract_version}, and extraction parameters (params or PyRadiomics keys in [features]) need 1.4; upgrade the worker, or use only classes, bin_width and label in [features] of study.toml"
        ));
    }
    Ok(())
}

/// Connects and checks the worker's identity, contract version, cohort
/// and policy.
pub(crate) async fn handshake(
    config: StudyConfig,
    center: String,
    endpoint: String,
) -> Result<(CenterClient, DescribeResponse), String> {
    let configured = config.centers.iter().find(|c| c.id == center);
    let center_config = CenterConfig {
        id: center.clone(),
        endpoint: endpoint.clone(),
        role: center_role(&config, &center),
        server_name: configured.and_then(|c| c.server_name.clone()),
        mode: configured.map(|c| c.mode).unwrap_or_default(),
    };
    // A worker that is still starting refuses connections for a moment, so
    // connecting is retried like any call.
    let policy = config.retry_policy();
    let mut client = with_retry(&policy, &center, "connect", config.call_timeout(), |_| {
        CenterClient::connect_for_study(&config, &center_config)
    })
    .await
    .map_err(|e| e.to_string())?;
    let description = client
        .describe(&config.study_id)
        .await
        .map_err(|e| e.to_string())?;
    if description.center_id != center {
        let worker = match center_config.mode {
            CenterMode::Direct => format!("the worker at {endpoint}"),
            CenterMode::DialOut => "the dial-out worker".to_string(),
        };
        return Err(format!(
            "{worker} reports center id {:?}, but study.toml expects {center:?}",
            description.center_id
        ));
    }
    let missing: Vec<&String> = config
        .sequences
        .iter()
        .filter(|s| !description.cohort.iter().any(|c| &c.sequence == *s))
        .collect();
    if !description.counts_withheld && !missing.is_empty() {
        return Err(format!("the worker's manifest lacks sequences {missing:?}"));
    }
    let scores_only = validates_by_scores_only(&config, &center, &description)?;
    check_contract(&config, &center, &description.contract_version, scores_only)?;
    info!(
        patients = description.n_patients,
        software = %description.software_version,
        contract = %description.contract_version,
        "handshake done"
    );
    Ok((client, description))
}

/// Returns the role of `center` in the study. A center not in study.toml
/// is treated as external.
pub(crate) fn center_role(config: &StudyConfig, center: &str) -> CenterRole {
    config
        .centers
        .iter()
        .find(|c| c.id == center)
        .map(|c| c.role)
        .unwrap_or(CenterRole::External)
}

/// Returns whether a center validates by scores only, from its role and
/// policy. A development center must share its feature table, because
/// selection and fitting use per-patient rows. `Err` gives the reason a
/// center cannot take part.
pub(crate) fn validates_by_scores_only(
    config: &StudyConfig,
    center: &str,
    description: &DescribeResponse,
) -> Result<bool, String> {
    let shares = description
        .policy
        .as_ref()
        .is_some_and(|p| p.share_feature_tables);
    let allows_scores = description
        .policy
        .as_ref()
        .is_some_and(|p| p.scores_only_validation);
    match center_role(config, center) {
        CenterRole::Development if shares => Ok(false),
        CenterRole::Development => Err(
            "the site policy keeps feature tables at the site (share_feature_tables = false), and a development center's table is needed for selection and fitting; the site can set share_feature_tables = true in its worker.toml, or the study can list the center as external"
                .to_string(),
        ),
        CenterRole::External => {
            let scores_only = config.validation.scores_only_for(shares, allows_scores)?;
            if scores_only && config.model.harmonization != Harmonization::None {
                return Err(
                    "the site keeps its feature table, and ComBat needs the table of every center it adjusts; share the table or set model.harmonization = \"none\""
                        .to_string(),
                );
            }
            Ok(scores_only)
        }
    }
}

/// Leaves out every center whose feature definitions differ from the
/// majority's, since their numbers would not be comparable.
pub(crate) fn check_definitions(
    connected: &mut Vec<(CenterClient, DescribeResponse)>,
    failures: &mut Vec<CenterFailure>,
) {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, description) in connected.iter() {
        *counts
            .entry(description.feature_definition_hash.as_str())
            .or_default() += 1;
    }
    let Some(majority) = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(hash, _)| hash.to_string())
    else {
        return;
    };
    connected.retain(|(_, description)| {
        let same = description.feature_definition_hash == majority;
        if !same {
            warn!(center = %description.center_id, "feature definitions differ from the other centers");
            failures.push(CenterFailure {
                center: description.center_id.clone(),
                reason: format!(
                    "feature definitions {} differ from the other centers' {majority}; run the same radstudy-worker version everywhere",
                    description.feature_definition_hash
                ),
            });
        }
        same
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(icc: bool, federated: bool) -> StudyConfig {
        let text = format!(
            "study_id = \"s\"\nsequences = [\"T1\"]\n\
             [[centers]]\nid = \"A\"\nendpoint = \"http://127.0.0.1:1\"\nrole = \"development\"\n\
             [[centers]]\nid = \"B\"\nendpoint = \"http://127.0.0.1:2\"\nrole = \"external\"\n\
             [icc]\nenabled = {icc}\n[federated]\nlogistic = {federated}\n"
        );
        StudyConfig::parse(&text, std::path::Path::new("study.toml")).expect("valid study")
    }

    #[test]
    fn contract_other_major_is_left_out() {
        let error = check_contract(&study(false, false), "A", "2.0", false).expect_err("major 2");
        assert!(error.contains("same major version"), "{error}");
    }

    #[test]
    fn contract_malformed_version_is_left_out() {
        assert!(check_contract(&study(false, false), "A", "one", false).is_err());
    }

    #[test]
    fn contract_1_0_takes_part_without_new_calls() {
        // Extraction and tables exist since 1.0, so an older site keeps
        // working in a study that uses nothing newer.
        assert_eq!(
            check_contract(&study(false, false), "A", "1.0", false),
            Ok(())
        );
        // The ICC filter runs at development centers only.
        assert_eq!(
            check_contract(&study(true, false), "B", "1.0", false),
            Ok(())
        );
    }

    #[test]
    fn contract_1_0_lacks_new_calls() {
        let icc = check_contract(&study(true, false), "A", "1.0", false).expect_err("ICC");
        assert!(icc.contains("the ICC filter need 1.1"), "{icc}");
        let scores = check_contract(&study(false, false), "B", "1.0", true).expect_err("scores");
        assert!(scores.contains("scores-only validation"), "{scores}");
        let federated = check_contract(&study(false, true), "B", "1.0", false).expect_err("fed");
        assert!(federated.contains("federated fitting"), "{federated}");
        assert_eq!(check_contract(&study(true, true), "A", "1.1", true), Ok(()));
    }

    #[test]
    fn contract_1_1_lacks_habitat_rounds() {
        let mut config = study(false, false);
        assert_eq!(check_contract(&config, "B", "1.1", false), Ok(()));
        config.habitat.enabled = true;
        for center in ["A", "B"] {
            let error = check_contract(&config, center, "1.1", false).expect_err("habitat");
            assert!(error.contains("habitat rounds need 1.2"), "{error}");
            assert_eq!(check_contract(&config, center, "1.2", false), Ok(()));
        }
    }

    #[test]
    fn contract_1_2_lacks_mixture_assignment() {
        let mut config = study(false, false);
        config.habitat.enabled = true;
        config.habitat.method = ClusterMethod::Gmm;
        let error = check_contract(&config, "B", "1.2", false).expect_err("gmm");
        assert!(error.contains("need 1.3"), "{error}");
        assert_eq!(check_contract(&config, "B", "1.3", false), Ok(()));
    }

    #[test]
    fn contract_1_3_lacks_parameter_document() {
        let mut config = study(false, false);
        config.features.parameters_json = Some(r#"{"imageType":{"Wavelet":{}}}"#.into());
        let error = check_contract(&config, "A", "1.3", false).expect_err("parameters");
        assert!(error.contains("need 1.4"), "{error}");
        assert!(error.contains("contract 1.3"), "{error}");
        assert_eq!(check_contract(&config, "A", "1.4", false), Ok(()));
        // Without a document, a 1.3 worker still takes part.
        assert_eq!(
            check_contract(&study(false, false), "A", "1.3", false),
            Ok(())
        );
    }

    #[test]
    fn center_role_of_unknown_center_is_external() {
        let config = study(false, false);
        assert_eq!(center_role(&config, "A"), CenterRole::Development);
        assert_eq!(center_role(&config, "Z"), CenterRole::External);
    }
}
