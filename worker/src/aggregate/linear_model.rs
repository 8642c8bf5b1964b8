//! A frozen linear model evaluated on a round's feature table.
//!
//! The contract's `LinearModel` is on the log-odds scale:
//!
//! ```text
//! η = intercept + Σ_j coefficient_j · z_j,   z_j = (x_j − mean_j) / scale_j
//! p = σ(η) = 1 / (1 + e^−η)
//! ```
//!
//! with x_j the value of term j's feature in the patient's row for term j's
//! sequence and region. [`ValidModel::evaluate`] turns a model into one
//! [`PatientEvaluation`] per patient, which both the logistic step and the
//! validation scores read.

use std::collections::HashMap;

use radstudy_proto::v1::{FeatureRow, LinearModel};

/// The columns of a round's feature table that a model may name.
#[derive(Debug, Clone, Copy)]
pub struct TableLayout<'a> {
    /// Sequences of the round.
    pub sequences: &'a [String],
    /// Region names of the rows.
    pub regions: &'a [&'a str],
    /// Feature names, in the order of each row's values.
    pub feature_names: &'a [String],
}

/// A model that names something the table does not have, or a number that
/// cannot be used. `term` counts from 0 in the order of the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The intercept is NaN or infinite.
    #[error("intercept = {value} is not finite")]
    NonFiniteIntercept {
        /// The intercept.
        value: f64,
    },
    /// A term names a sequence the round did not extract.
    #[error(
        "term {term}: sequence {sequence:?} is not a sequence of this round, which has {available:?}"
    )]
    UnknownSequence {
        /// Index of the term.
        term: usize,
        /// The requested sequence.
        sequence: String,
        /// The round's sequences.
        available: Vec<String>,
    },
    /// A term names a region the table does not have.
    #[error(
        "term {term}: region {region:?} is not a region of this round, which has {available:?}"
    )]
    UnknownRegion {
        /// Index of the term.
        term: usize,
        /// The requested region.
        region: String,
        /// The table's regions.
        available: Vec<String>,
    },
    /// A term names a feature the round did not compute.
    #[error(
        "term {term}: feature {feature:?} is not a feature of this round; names look like \"original_firstorder_Mean\""
    )]
    UnknownFeature {
        /// Index of the term.
        term: usize,
        /// The requested feature.
        feature: String,
    },
    /// A term's scale is not a finite number > 0.
    #[error("term {term} ({feature}): scale = {value} must be a finite number > 0")]
    InvalidScale {
        /// Index of the term.
        term: usize,
        /// The term's feature.
        feature: String,
        /// The scale.
        value: f64,
    },
    /// A term's mean is NaN or infinite.
    #[error("term {term} ({feature}): mean = {value} is not finite")]
    NonFiniteMean {
        /// Index of the term.
        term: usize,
        /// The term's feature.
        feature: String,
        /// The mean.
        value: f64,
    },
    /// A term's coefficient is NaN or infinite.
    #[error("term {term} ({feature}): coefficient = {value} is not finite")]
    NonFiniteCoefficient {
        /// Index of the term.
        term: usize,
        /// The term's feature.
        feature: String,
        /// The coefficient.
        value: f64,
    },
    /// Standardising a patient's value overflowed, which happens only for a
    /// scale that is tiny against the spread of the feature.
    #[error(
        "term {term} ({feature}): (x − mean) / scale overflows for at least one patient; check the term's mean and scale"
    )]
    NonFiniteStandardized {
        /// Index of the term.
        term: usize,
        /// The term's feature.
        feature: String,
    },
    /// The linear predictor of a patient overflowed.
    #[error(
        "the linear predictor overflows for at least one patient; the coefficients are too large"
    )]
    NonFiniteLinearPredictor,
}

impl ModelError {
    /// Returns the request field, in dotted form, that the error concerns.
    pub fn field(&self) -> &'static str {
        match self {
            ModelError::NonFiniteIntercept { .. } => "model.intercept",
            ModelError::UnknownSequence { .. } => "model.terms.sequence",
            ModelError::UnknownRegion { .. } => "model.terms.region",
            ModelError::UnknownFeature { .. } => "model.terms.feature",
            ModelError::InvalidScale { .. } | ModelError::NonFiniteStandardized { .. } => {
                "model.terms.scale"
            }
            ModelError::NonFiniteMean { .. } => "model.terms.mean",
            ModelError::NonFiniteCoefficient { .. } => "model.terms.coefficient",
            ModelError::NonFiniteLinearPredictor => "model",
        }
    }
}

/// One term of a [`ValidModel`], resolved to a table column.
#[derive(Debug, Clone, PartialEq)]
struct ValidTerm {
    sequence: String,
    region: String,
    feature: String,
    /// Index of the feature in each row's values.
    column: usize,
    mean: f64,
    scale: f64,
    coefficient: f64,
}

/// A [`LinearModel`] whose terms name columns of one round's table and whose
/// numbers are finite.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidModel {
    intercept: f64,
    terms: Vec<ValidTerm>,
}

/// One patient's model inputs and output.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientEvaluation {
    /// Outcome class.
    pub label: bool,
    /// z_j = (x_j − mean_j) / scale_j, one value per term, without the
    /// intercept's 1.
    pub standardized: Vec<f64>,
    /// η = intercept + Σ coefficient_j · z_j, finite.
    pub linear_predictor: f64,
}

impl PatientEvaluation {
    /// Returns p = σ(η), in [0, 1].
    pub fn probability(&self) -> f64 {
        logistic(self.linear_predictor)
    }
}

/// The evaluations of the patients that have every term's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Included patients, in the order requested.
    pub patients: Vec<PatientEvaluation>,
    /// Requested patients without a row for some term's sequence and
    /// region, or without any row.
    pub n_skipped: usize,
}

impl Evaluation {
    /// Returns the (probability, label) pair of each included patient.
    pub fn probabilities(&self) -> Vec<(f64, bool)> {
        self.patients
            .iter()
            .map(|patient| (patient.probability(), patient.label))
            .collect()
    }
}

impl ValidModel {
    /// Checks `model` against the table's columns and its numbers.
    ///
    /// # Errors
    ///
    /// The first [`ModelError`] found, in term order.
    pub fn new(model: &LinearModel, layout: TableLayout<'_>) -> Result<Self, ModelError> {
        if !model.intercept.is_finite() {
            return Err(ModelError::NonFiniteIntercept {
                value: model.intercept,
            });
        }
        let mut terms = Vec::with_capacity(model.terms.len());
        for (term, requested) in model.terms.iter().enumerate() {
            if !layout.sequences.contains(&requested.sequence) {
                return Err(ModelError::UnknownSequence {
                    term,
                    sequence: requested.sequence.clone(),
                    available: layout.sequences.to_vec(),
                });
            }
            if !layout.regions.contains(&requested.region.as_str()) {
                return Err(ModelError::UnknownRegion {
                    term,
                    region: requested.region.clone(),
                    available: layout.regions.iter().map(|r| r.to_string()).collect(),
                });
            }
            let column = layout
                .feature_names
                .iter()
                .position(|name| *name == requested.feature)
                .ok_or_else(|| ModelError::UnknownFeature {
                    term,
                    feature: requested.feature.clone(),
                })?;
            let feature = requested.feature.clone();
            if !(requested.scale.is_finite() && requested.scale > 0.0) {
                return Err(ModelError::InvalidScale {
                    term,
                    feature,
                    value: requested.scale,
                });
            }
            if !requested.mean.is_finite() {
                return Err(ModelError::NonFiniteMean {
                    term,
                    feature,
                    value: requested.mean,
                });
            }
            if !requested.coefficient.is_finite() {
                return Err(ModelError::NonFiniteCoefficient {
                    term,
                    feature,
                    value: requested.coefficient,
                });
            }
            terms.push(ValidTerm {
                sequence: requested.sequence.clone(),
                region: requested.region.clone(),
                feature,
                column,
                mean: requested.mean,
                scale: requested.scale,
                coefficient: requested.coefficient,
            });
        }
        Ok(ValidModel {
            intercept: model.intercept,
            terms,
        })
    }

    /// Returns the number of coefficients, the intercept included.
    pub fn n_coefficients(&self) -> usize {
        1 + self.terms.len()
    }

    /// Evaluates the model for each of `patients` on the table `rows`.
    ///
    /// A patient is included when it has a row for every term's sequence
    /// and region, and at least one row, which carries its label. Others are
    /// counted in [`Evaluation::n_skipped`].
    ///
    /// # Errors
    ///
    /// [`ModelError::NonFiniteStandardized`] or
    /// [`ModelError::NonFiniteLinearPredictor`] when a finite model
    /// overflows on a patient's values.
    pub fn evaluate(
        &self,
        patients: &[String],
        rows: &[FeatureRow],
    ) -> Result<Evaluation, ModelError> {
        let mut by_key: HashMap<(&str, &str, &str), &FeatureRow> = HashMap::new();
        let mut any_row: HashMap<&str, &FeatureRow> = HashMap::new();
        for row in rows {
            by_key.insert((&row.pseudonym, &row.sequence, &row.region), row);
            any_row.entry(&row.pseudonym).or_insert(row);
        }

        let mut evaluation = Evaluation {
            patients: Vec::with_capacity(patients.len()),
            n_skipped: 0,
        };
        'patients: for pseudonym in patients {
            let Some(first_row) = any_row.get(pseudonym.as_str()) else {
                evaluation.n_skipped += 1;
                continue;
            };
            let mut standardized = Vec::with_capacity(self.terms.len());
            let mut linear_predictor = self.intercept;
            for (index, term) in self.terms.iter().enumerate() {
                let key = (
                    pseudonym.as_str(),
                    term.sequence.as_str(),
                    term.region.as_str(),
                );
                let Some(value) = by_key.get(&key).and_then(|row| row.values.get(term.column))
                else {
                    evaluation.n_skipped += 1;
                    continue 'patients;
                };
                let z = (value - term.mean) / term.scale;
                if !z.is_finite() {
                    return Err(ModelError::NonFiniteStandardized {
                        term: index,
                        feature: term.feature.clone(),
                    });
                }
                linear_predictor += term.coefficient * z;
                standardized.push(z);
            }
            if !linear_predictor.is_finite() {
                return Err(ModelError::NonFiniteLinearPredictor);
            }
            evaluation.patients.push(PatientEvaluation {
                label: first_row.label == 1,
                standardized,
                linear_predictor,
            });
        }
        Ok(evaluation)
    }
}

/// Returns σ(z) = 1 / (1 + e^−z). Each branch takes the exponential of a
/// non-positive number, so neither overflows.
pub fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let exp_z = z.exp();
        exp_z / (1.0 + exp_z)
    }
}

/// Returns log(1 + e^z) without overflow: for z > 0 it is
/// z + log(1 + e^−z).
pub fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radstudy_proto::v1::ModelTerm;

    const REGIONS: [&str; 1] = ["whole"];

    fn sequences() -> Vec<String> {
        vec!["PET".into(), "MR_T1".into()]
    }

    fn feature_names() -> Vec<String> {
        vec![
            "original_firstorder_Mean".into(),
            "original_shape_Sphericity".into(),
        ]
    }

    fn row(pseudonym: &str, label: u32, sequence: &str, values: [f64; 2]) -> FeatureRow {
        FeatureRow {
            pseudonym: pseudonym.into(),
            label,
            sequence: sequence.into(),
            region: "whole".into(),
            values: values.to_vec(),
        }
    }

    fn term(sequence: &str, feature: &str, mean: f64, scale: f64, coefficient: f64) -> ModelTerm {
        ModelTerm {
            sequence: sequence.into(),
            region: "whole".into(),
            feature: feature.into(),
            mean,
            scale,
            coefficient,
        }
    }

    fn validate(model: &LinearModel) -> Result<ValidModel, ModelError> {
        let (sequences, names) = (sequences(), feature_names());
        ValidModel::new(
            model,
            TableLayout {
                sequences: &sequences,
                regions: &REGIONS,
                feature_names: &names,
            },
        )
    }

    #[test]
    fn model_evaluation_hand_values() {
        let model = LinearModel {
            intercept: -1.0,
            terms: vec![
                term("PET", "original_firstorder_Mean", 2.0, 4.0, 0.5),
                term("MR_T1", "original_shape_Sphericity", 0.5, 0.25, -2.0),
            ],
        };
        let rows = vec![
            row("A-1", 1, "PET", [10.0, 0.7]),
            row("A-1", 1, "MR_T1", [300.0, 0.75]),
            row("A-2", 0, "PET", [-2.0, 0.4]),
            row("A-2", 0, "MR_T1", [100.0, 0.25]),
            // A-3 lacks MR_T1 and is skipped; A-4 has no row at all.
            row("A-3", 1, "PET", [1.0, 0.5]),
        ];
        let patients: Vec<String> = ["A-1", "A-2", "A-3", "A-4"].map(String::from).to_vec();
        let evaluation = validate(&model)
            .expect("valid model")
            .evaluate(&patients, &rows)
            .expect("finite values");

        assert_eq!(evaluation.n_skipped, 2);
        assert_eq!(evaluation.patients.len(), 2);
        // A-1: z = ((10 − 2) / 4, (0.75 − 0.5) / 0.25) = (2, 1), so
        // η = −1 + 0.5·2 − 2·1 = −2. Every step is exact in binary.
        let first = &evaluation.patients[0];
        assert!(first.label);
        assert_eq!(first.standardized, vec![2.0, 1.0]);
        assert_eq!(first.linear_predictor, -2.0);
        // A-2: z = ((−2 − 2) / 4, (0.25 − 0.5) / 0.25) = (−1, −1), so
        // η = −1 − 0.5 + 2 = 0.5.
        let second = &evaluation.patients[1];
        assert!(!second.label);
        assert_eq!(second.standardized, vec![-1.0, -1.0]);
        assert_eq!(second.linear_predictor, 0.5);
        // σ(−2) = 1 / (1 + e²) = 0.11920292202211755 (Python math.exp).
        let pairs = evaluation.probabilities();
        assert!((pairs[0].0 - 0.11920292202211755).abs() < 1e-16);
        assert!(!pairs[1].1);
    }

    #[test]
    fn model_intercept_only_includes_patients_with_any_row() {
        let model = LinearModel {
            intercept: 0.0,
            terms: Vec::new(),
        };
        let rows = vec![row("A-1", 1, "PET", [1.0, 2.0])];
        let patients: Vec<String> = ["A-1", "A-2"].map(String::from).to_vec();
        let evaluation = validate(&model)
            .unwrap()
            .evaluate(&patients, &rows)
            .unwrap();
        assert_eq!(evaluation.patients.len(), 1);
        assert_eq!(evaluation.n_skipped, 1);
        // σ(0) is exactly 1/2.
        assert_eq!(evaluation.patients[0].probability(), 0.5);
    }

    #[test]
    fn model_invalid_terms_name_field() {
        let valid = term("PET", "original_firstorder_Mean", 0.0, 1.0, 1.0);
        let with_term = |term: ModelTerm| LinearModel {
            intercept: 0.0,
            terms: vec![valid.clone(), term],
        };
        let cases = [
            (
                with_term(term("CT", "original_firstorder_Mean", 0.0, 1.0, 1.0)),
                "model.terms.sequence",
                "\"CT\"",
            ),
            (
                with_term(ModelTerm {
                    region: "core".into(),
                    ..valid.clone()
                }),
                "model.terms.region",
                "\"core\"",
            ),
            (
                with_term(term("PET", "original_firstorder_Meen", 0.0, 1.0, 1.0)),
                "model.terms.feature",
                "\"original_firstorder_Meen\"",
            ),
            (
                with_term(term("PET", "original_firstorder_Mean", 0.0, 0.0, 1.0)),
                "model.terms.scale",
                "scale = 0",
            ),
            (
                with_term(term(
                    "PET",
                    "original_firstorder_Mean",
                    0.0,
                    f64::INFINITY,
                    1.0,
                )),
                "model.terms.scale",
                "scale = inf",
            ),
            (
                with_term(term("PET", "original_firstorder_Mean", f64::NAN, 1.0, 1.0)),
                "model.terms.mean",
                "mean = NaN",
            ),
            (
                with_term(term("PET", "original_firstorder_Mean", 0.0, 1.0, f64::NAN)),
                "model.terms.coefficient",
                "coefficient = NaN",
            ),
        ];
        for (model, field, value) in cases {
            let error = validate(&model).unwrap_err();
            assert_eq!(error.field(), field, "{error}");
            let message = error.to_string();
            assert!(message.starts_with("term 1"), "{message}");
            assert!(message.contains(value), "{message}");
        }
        let error = validate(&LinearModel {
            intercept: f64::INFINITY,
            terms: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(error.field(), "model.intercept");
    }

    #[test]
    fn model_overflowing_standardization_is_error() {
        // (1e300 − 0) / 1e-300 overflows to infinity.
        let model = LinearModel {
            intercept: 0.0,
            terms: vec![term("PET", "original_firstorder_Mean", 0.0, 1e-300, 1.0)],
        };
        let rows = vec![row("A-1", 1, "PET", [1e300, 0.0])];
        let error = validate(&model)
            .unwrap()
            .evaluate(&["A-1".to_string()], &rows)
            .unwrap_err();
        assert!(matches!(
            error,
            ModelError::NonFiniteStandardized { term: 0, .. }
        ));
    }

    #[test]
    fn logistic_and_softplus_extremes_stay_finite() {
        // σ(±800) must not overflow: e^800 is infinite in f64.
        assert_eq!(logistic(800.0), 1.0);
        assert_eq!(logistic(-800.0), 0.0);
        assert_eq!(logistic(0.0), 0.5);
        // log(1 + e^800) = 800 + log(1 + e^−800), and e^−800 underflows.
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(softplus(-800.0), 0.0);
        // log(1 + e^0) = ln 2.
        assert_eq!(softplus(0.0), std::f64::consts::LN_2);
        // σ(−40) = e^−40 / (1 + e^−40) ≈ 4.248354255291589e-18 keeps its
        // digits, where 1 − σ(40) would round to 0.
        assert!((logistic(-40.0) - 4.248354255291589e-18).abs() < 1e-30);
    }
}
