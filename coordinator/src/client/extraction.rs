//! The extraction calls: `Describe`, the server-streamed `Extract` round
//! and `FetchFeatureTable`.

use std::time::Duration;

use radstudy_proto::v1::{
    DescribeRequest, DescribeResponse, ExtractRequest, FeatureRow, FetchFeatureTableRequest,
    RoundSummary, extract_event,
};

use super::{CenterClient, CenterError, ExclusionRecord};

/// The result of an extraction round at one center.
#[derive(Debug, Clone)]
pub struct RoundOutcome {
    /// Patients excluded, per sequence.
    pub exclusions: Vec<ExclusionRecord>,
    /// The worker's summary.
    pub summary: RoundSummary,
}

/// A center's feature table.
#[derive(Debug, Clone)]
pub struct CenterTable {
    /// Feature names, in value order.
    pub feature_names: Vec<String>,
    /// One row per patient, region and sequence.
    pub rows: Vec<FeatureRow>,
}

impl CenterClient {
    /// Asks the worker for its description.
    pub async fn describe(&mut self, study_id: &str) -> Result<DescribeResponse, CenterError> {
        let this = &*self;
        this.retried("Describe", this.call_timeout, |deadline| {
            let mut request = tonic::Request::new(DescribeRequest {
                study_id: study_id.to_string(),
            });
            request.set_timeout(deadline);
            let mut client = this.client.clone();
            async move {
                match tokio::time::timeout(deadline, client.describe(request)).await {
                    Ok(Ok(response)) => Ok(response.into_inner()),
                    Ok(Err(status)) => Err(this.status_error("Describe", status, deadline)),
                    Err(_) => Err(this.timeout_error("Describe", deadline)),
                }
            }
        })
        .await
    }

    /// Runs the extraction round `round`, calling `on_patient(index,
    /// total)` after each patient and sequence. A lost connection repeats
    /// the request with the same round id, so the worker replays the
    /// patients it finished and extracts the rest.
    pub async fn extract(
        &mut self,
        round: ExtractRequest,
        round_timeout: Duration,
        on_patient: impl FnMut(u32, u32),
    ) -> Result<RoundOutcome, CenterError> {
        // Every attempt reports progress through the same callback.
        let on_patient = std::sync::Mutex::new(on_patient);
        let this = &*self;
        this.retried("Extract", round_timeout, |deadline| {
            this.extract_once(round.clone(), deadline, &on_patient)
        })
        .await
    }

    async fn extract_once(
        &self,
        round: ExtractRequest,
        round_timeout: Duration,
        on_patient: &std::sync::Mutex<impl FnMut(u32, u32)>,
    ) -> Result<RoundOutcome, CenterError> {
        let mut request = tonic::Request::new(round);
        request.set_timeout(round_timeout);

        let center = self.center.clone();
        let mut client = self.client.clone();
        let consume = async move {
            let mut stream = client.extract(request).await?.into_inner();
            let mut exclusions = Vec::new();
            while let Some(event) = stream.message().await? {
                match event.event {
                    Some(extract_event::Event::Patient(patient)) => {
                        if let Ok(mut report) = on_patient.lock() {
                            report(patient.index, patient.total);
                        }
                        if let Some(error) = patient.error {
                            let kind = radstudy_proto::v1::ErrorKind::try_from(error.kind)
                                .map(|kind| {
                                    kind.as_str_name()
                                        .trim_start_matches("ERROR_KIND_")
                                        .to_lowercase()
                                })
                                .unwrap_or_else(|_| format!("unknown_{}", error.kind));
                            exclusions.push(ExclusionRecord {
                                center: center.clone(),
                                pseudonym: error.pseudonym,
                                sequence: error.sequence,
                                kind,
                                field: error.field,
                                reason: error.reason,
                            });
                        }
                    }
                    Some(extract_event::Event::Summary(summary)) => {
                        return Ok(Some(RoundOutcome {
                            exclusions,
                            summary,
                        }));
                    }
                    None => {}
                }
            }
            Ok::<_, tonic::Status>(None)
        };
        match tokio::time::timeout(round_timeout, consume).await {
            Ok(Ok(Some(outcome))) => Ok(outcome),
            Ok(Ok(None)) => Err(CenterError::Protocol {
                center: self.center.clone(),
                call: "Extract",
                message: "the stream ended without a round summary".into(),
            }),
            Ok(Err(status)) => Err(self.status_error("Extract", status, round_timeout)),
            Err(_) => Err(self.timeout_error("Extract", round_timeout)),
        }
    }

    /// Fetches the feature table of a finished round and checks its shape.
    pub async fn fetch_feature_table(
        &mut self,
        study_id: &str,
        round_id: &str,
    ) -> Result<CenterTable, CenterError> {
        let this = &*self;
        let chunks = this
            .retried("FetchFeatureTable", this.call_timeout, |deadline| {
                let mut request = tonic::Request::new(FetchFeatureTableRequest {
                    study_id: study_id.to_string(),
                    round_id: round_id.to_string(),
                    max_rows_per_chunk: 0,
                });
                request.set_timeout(deadline);
                let mut client = this.client.clone();
                let consume = async move {
                    let mut stream = client.fetch_feature_table(request).await?.into_inner();
                    let mut chunks = Vec::new();
                    while let Some(chunk) = stream.message().await? {
                        chunks.push(chunk);
                    }
                    Ok::<_, tonic::Status>(chunks)
                };
                async move {
                    match tokio::time::timeout(deadline, consume).await {
                        Ok(Ok(chunks)) => Ok(chunks),
                        Ok(Err(status)) => {
                            Err(this.status_error("FetchFeatureTable", status, deadline))
                        }
                        Err(_) => Err(this.timeout_error("FetchFeatureTable", deadline)),
                    }
                }
            })
            .await?;

        let protocol = |message: String| CenterError::Protocol {
            center: self.center.clone(),
            call: "FetchFeatureTable",
            message,
        };
        let first = chunks
            .first()
            .ok_or_else(|| protocol("no chunk received".into()))?;
        let feature_names = first.feature_names.clone();
        let chunk_count = first.chunk_count as usize;
        if chunks.len() != chunk_count {
            return Err(protocol(format!(
                "received {} chunks of {chunk_count}",
                chunks.len()
            )));
        }
        let mut rows = Vec::new();
        for (index, chunk) in chunks.into_iter().enumerate() {
            if chunk.chunk_index as usize != index {
                return Err(protocol(format!(
                    "chunk {} arrived at position {index}",
                    chunk.chunk_index
                )));
            }
            for row in chunk.rows {
                if row.values.len() != feature_names.len() {
                    return Err(protocol(format!(
                        "a row of {} has {} values for {} features",
                        row.pseudonym,
                        row.values.len(),
                        feature_names.len()
                    )));
                }
                if let Some(position) = row.values.iter().position(|v| !v.is_finite()) {
                    return Err(protocol(format!(
                        "feature {} of {} is not finite",
                        feature_names[position], row.pseudonym
                    )));
                }
                if row.label > 1 {
                    return Err(protocol(format!(
                        "label {} of {} is not 0 or 1",
                        row.label, row.pseudonym
                    )));
                }
                rows.push(row);
            }
        }
        Ok(CenterTable {
            feature_names,
            rows,
        })
    }
}
