//! The study's feature table: one row per patient, one column per
//! sequence, region and feature.
//!
//! Column names follow `{sequence}_{region}_{imageType}_{class}_{feature}`,
//! for example `MR_T1_whole_original_firstorder_Mean`. A patient without a
//! usable image for a sequence has nulls in that sequence's columns.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::client::CenterTable;
use crate::split::Cohort;

/// One patient of the study.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRecord {
    /// The patient's center.
    pub center: String,
    /// The patient's pseudonym.
    pub pseudonym: String,
    /// Outcome.
    pub label: bool,
    /// Cohort, assigned by [`crate::split`].
    pub cohort: Cohort,
}

/// A feature column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureColumn {
    /// Full column name, `{sequence}_{region}_{feature}`.
    pub name: String,
    /// The sequence the column belongs to.
    pub sequence: String,
    /// The region the feature was extracted from, as the workers name it
    /// ("whole", or a habitat such as "inner").
    pub region: String,
    /// PyRadiomics feature name, for example `original_firstorder_Mean`.
    pub feature: String,
    /// One value per patient; `None` where the sequence is missing.
    pub values: Vec<Option<f64>>,
}

/// Patients and their feature columns.
#[derive(Debug, Clone, Default)]
pub struct StudyTable {
    /// Patients, sorted by center and pseudonym.
    pub patients: Vec<PatientRecord>,
    /// Feature columns, by sequence in study order, then region name, then
    /// feature order.
    pub columns: Vec<FeatureColumn>,
}

/// Errors while assembling the table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Two centers report different feature names for one sequence.
    #[error(
        "center {center} reports features {found:?}, other centers {expected:?}; all workers must use the same settings"
    )]
    FeatureMismatch {
        /// The center that differs.
        center: String,
        /// Its names.
        found: Vec<String>,
        /// The names of the first center.
        expected: Vec<String>,
    },
    /// A patient's rows disagree on its label.
    #[error("center {center}: patient {pseudonym} has rows with different labels")]
    LabelConflict {
        /// The center.
        center: String,
        /// The patient.
        pseudonym: String,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

impl StudyTable {
    /// Builds the wide table from the centers' tables; `cohorts` is filled
    /// in later, so every patient starts in training.
    pub fn assemble(
        tables: &[(String, CenterTable)],
        sequences: &[String],
    ) -> Result<Self, TableError> {
        let mut feature_names: Option<&Vec<String>> = None;
        for (center, table) in tables {
            match feature_names {
                None => feature_names = Some(&table.feature_names),
                Some(expected) if *expected != table.feature_names => {
                    return Err(TableError::FeatureMismatch {
                        center: center.clone(),
                        found: table.feature_names.clone(),
                        expected: expected.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        let Some(feature_names) = feature_names else {
            return Ok(StudyTable::default());
        };

        // (center, pseudonym) -> (label, sequence/region -> values)
        type Values<'a> = BTreeMap<(&'a str, &'a str), &'a [f64]>;
        let mut patients: BTreeMap<(&str, &str), (bool, Values<'_>)> = BTreeMap::new();
        let mut regions: Vec<&str> = Vec::new();
        for (center, table) in tables {
            for row in &table.rows {
                let label = row.label == 1;
                let entry = patients
                    .entry((center.as_str(), row.pseudonym.as_str()))
                    .or_insert_with(|| (label, BTreeMap::new()));
                if entry.0 != label {
                    return Err(TableError::LabelConflict {
                        center: center.clone(),
                        pseudonym: row.pseudonym.clone(),
                    });
                }
                entry
                    .1
                    .insert((row.sequence.as_str(), row.region.as_str()), &row.values);
                if !regions.contains(&row.region.as_str()) {
                    regions.push(row.region.as_str());
                }
            }
        }
        regions.sort_unstable();

        let records: Vec<PatientRecord> = patients
            .iter()
            .map(|((center, pseudonym), (label, _))| PatientRecord {
                center: center.to_string(),
                pseudonym: pseudonym.to_string(),
                label: *label,
                cohort: Cohort::Training,
            })
            .collect();
        let mut columns = Vec::new();
        for sequence in sequences {
            for region in &regions {
                for (index, feature) in feature_names.iter().enumerate() {
                    let values = patients
                        .values()
                        .map(|(_, values)| {
                            values.get(&(sequence.as_str(), *region)).map(|v| v[index])
                        })
                        .collect();
                    columns.push(FeatureColumn {
                        name: format!("{sequence}_{region}_{feature}"),
                        sequence: sequence.clone(),
                        region: region.to_string(),
                        feature: feature.clone(),
                        values,
                    });
                }
            }
        }
        Ok(StudyTable {
            patients: records,
            columns,
        })
    }

    /// Returns the table as a polars DataFrame: center, pseudonym, label,
    /// cohort, then the feature columns.
    pub fn to_dataframe(&self) -> PolarsResult<DataFrame> {
        let mut series: Vec<Column> = vec![
            Column::new(
                "center".into(),
                self.patients
                    .iter()
                    .map(|p| p.center.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "pseudonym".into(),
                self.patients
                    .iter()
                    .map(|p| p.pseudonym.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "label".into(),
                self.patients
                    .iter()
                    .map(|p| p.label as i32)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "cohort".into(),
                self.patients
                    .iter()
                    .map(|p| p.cohort.as_str())
                    .collect::<Vec<_>>(),
            ),
        ];
        for column in &self.columns {
            series.push(Column::new(
                column.name.as_str().into(),
                column.values.clone(),
            ));
        }
        DataFrame::new_infer_height(series)
    }

    /// Writes `features.parquet` and `features.csv` into `out_dir`.
    pub fn write(&self, out_dir: &Path) -> Result<(), TableError> {
        let mut frame = self.to_dataframe().map_err(|error| TableError::Write {
            path: "features".into(),
            message: error.to_string(),
        })?;
        write_csv(&mut frame, &out_dir.join("features.csv"))?;
        write_parquet(&mut frame, &out_dir.join("features.parquet"))?;
        Ok(())
    }
}

/// Writes a DataFrame as CSV with a header row.
pub fn write_csv(frame: &mut DataFrame, path: &Path) -> Result<(), TableError> {
    let error = |message: String| TableError::Write {
        path: path.display().to_string(),
        message,
    };
    let mut file = std::fs::File::create(path).map_err(|e| error(e.to_string()))?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(frame)
        .map_err(|e| error(e.to_string()))
}

/// Writes a DataFrame as Parquet.
pub fn write_parquet(frame: &mut DataFrame, path: &Path) -> Result<(), TableError> {
    let error = |message: String| TableError::Write {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::create(path).map_err(|e| error(e.to_string()))?;
    ParquetWriter::new(file)
        .finish(frame)
        .map(|_| ())
        .map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use radstudy_proto::v1::FeatureRow;

    fn row(pseudonym: &str, label: u32, sequence: &str, values: &[f64]) -> FeatureRow {
        region_row(pseudonym, label, sequence, "whole", values)
    }

    fn region_row(
        pseudonym: &str,
        label: u32,
        sequence: &str,
        region: &str,
        values: &[f64],
    ) -> FeatureRow {
        FeatureRow {
            pseudonym: pseudonym.into(),
            label,
            sequence: sequence.into(),
            region: region.into(),
            values: values.to_vec(),
        }
    }

    fn table(rows: Vec<FeatureRow>) -> CenterTable {
        CenterTable {
            feature_names: vec![
                "original_firstorder_Mean".into(),
                "original_firstorder_Median".into(),
            ],
            rows,
        }
    }

    #[test]
    fn table_pivots_sequences_into_columns_with_nulls() {
        let tables = vec![
            (
                "A".to_string(),
                table(vec![
                    row("A-1", 1, "T1", &[1.0, 2.0]),
                    row("A-1", 1, "PET", &[3.0, 4.0]),
                    row("A-2", 0, "PET", &[5.0, 6.0]),
                ]),
            ),
            (
                "B".to_string(),
                table(vec![row("B-1", 0, "T1", &[7.0, 8.0])]),
            ),
        ];
        let study =
            StudyTable::assemble(&tables, &["T1".into(), "PET".into()]).expect("consistent tables");
        assert_eq!(study.patients.len(), 3);
        assert_eq!(study.columns.len(), 4);
        assert_eq!(study.columns[0].name, "T1_whole_original_firstorder_Mean");
        assert_eq!(study.columns[0].values, vec![Some(1.0), None, Some(7.0)]);
        assert_eq!(study.columns[3].values, vec![Some(4.0), Some(6.0), None]);

        let frame = study.to_dataframe().expect("frame");
        assert_eq!(frame.shape(), (3, 8));
    }

    #[test]
    fn table_columns_carry_region_and_feature() {
        let tables = vec![(
            "A".to_string(),
            table(vec![
                region_row("A-1", 1, "T1", "whole", &[1.0, 2.0]),
                region_row("A-1", 1, "T1", "inner", &[3.0, 4.0]),
                region_row("A-2", 0, "T1", "whole", &[5.0, 6.0]),
            ]),
        )];
        let study = StudyTable::assemble(&tables, &["T1".into()]).expect("consistent tables");

        // Regions are sorted by name, so "inner" comes before "whole".
        let described: Vec<(&str, &str, &str)> = study
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.region.as_str(), c.feature.as_str()))
            .collect();
        assert_eq!(
            described,
            [
                (
                    "T1_inner_original_firstorder_Mean",
                    "inner",
                    "original_firstorder_Mean"
                ),
                (
                    "T1_inner_original_firstorder_Median",
                    "inner",
                    "original_firstorder_Median"
                ),
                (
                    "T1_whole_original_firstorder_Mean",
                    "whole",
                    "original_firstorder_Mean"
                ),
                (
                    "T1_whole_original_firstorder_Median",
                    "whole",
                    "original_firstorder_Median"
                ),
            ]
        );
        assert!(study.columns.iter().all(|c| c.sequence == "T1"));
        // A-2 sent no "inner" row, so its inner values are missing.
        assert_eq!(study.columns[0].values, vec![Some(3.0), None]);
        assert_eq!(study.columns[2].values, vec![Some(1.0), Some(5.0)]);
    }

    #[test]
    fn table_rejects_label_conflict() {
        let tables = vec![(
            "A".to_string(),
            table(vec![
                row("A-1", 1, "T1", &[1.0, 2.0]),
                row("A-1", 0, "PET", &[1.0, 2.0]),
            ]),
        )];
        assert!(matches!(
            StudyTable::assemble(&tables, &["T1".into(), "PET".into()]),
            Err(TableError::LabelConflict { .. })
        ));
    }

    #[test]
    fn table_rejects_feature_mismatch_between_centers() {
        let mut other = table(vec![]);
        other.feature_names.pop();
        let tables = vec![("A".to_string(), table(vec![])), ("B".to_string(), other)];
        assert!(matches!(
            StudyTable::assemble(&tables, &["T1".into()]),
            Err(TableError::FeatureMismatch { .. })
        ));
    }
}
