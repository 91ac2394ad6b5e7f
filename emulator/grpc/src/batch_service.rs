//! durable-emu's own `WorkerBatches` service (`proto/durable_emu_worker.proto`): activity answers
//! from `durable-emu worker`, many to a message over one stream, each message recorded in one
//! core call and acknowledged, in order, with one outcome per answer; and an episode's notes
//! (awaited events, log lines), kept until its answer arrives. The sidecar protocol's
//! unary `CompleteActivityTask` stays what every other worker uses; an answer means the same
//! either way (the same checks, the same refusals, the same codes).
//!
//! Knows the worker side's completion path (`WorkerSide::complete_activities`); knows nothing of
//! sockets or of how the engine records work.

use crate::batches::worker_batches_server::WorkerBatches;
use crate::batches::{
    Acknowledgement, Acknowledgements, ActivityAnswers, EpisodeNoted, EpisodeNotes,
};
use crate::proto;
use crate::worker::WorkerSide;
use prost::Message as _;
use std::pin::Pin;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// Acknowledgements not yet read by the worker before the service waits for it to read them.
const ACKNOWLEDGEMENTS_AHEAD: usize = 16;

/// The service, over the same worker side as the sidecar it is mounted with.
#[derive(Debug, Clone)]
pub struct Batches {
    pub(crate) worker: WorkerSide,
}

type AcknowledgementStream = Pin<Box<dyn Stream<Item = Result<Acknowledgements, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerBatches for Batches {
    type CompleteActivityTasksStream = AcknowledgementStream;

    async fn complete_activity_tasks(
        &self,
        request: Request<Streaming<ActivityAnswers>>,
    ) -> Result<Response<Self::CompleteActivityTasksStream>, Status> {
        let mut answers = request.into_inner();
        let worker = self.worker.clone();
        let (acknowledge, acknowledgements) = tokio::sync::mpsc::channel(ACKNOWLEDGEMENTS_AHEAD);
        tokio::spawn(async move {
            // Ends when the worker closes its side or goes away; what it had not sent yet is
            // unanswered work the hub redelivers like any other.
            while let Ok(Some(message)) = answers.message().await {
                let outcomes = record(&worker, message).await;
                if acknowledge.send(Ok(outcomes)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(
            acknowledgements,
        ))))
    }

    async fn note_episode(
        &self,
        request: Request<EpisodeNotes>,
    ) -> Result<Response<EpisodeNoted>, Status> {
        let notes = request.into_inner();
        let logs = if notes.logs_json.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&notes.logs_json).map_err(|error| {
                Status::invalid_argument(format!(
                    "EpisodeNotes.logsJson is not a JSON array of log lines: {error}"
                ))
            })?
        };
        self.worker.note_episode(
            &notes.completion_token,
            crate::worker::EpisodeNotes {
                awaited_events: notes.awaited_events,
                logs,
                warnings: notes.warnings,
            },
        )?;
        Ok(Response::new(EpisodeNoted {}))
    }
}

/// Records one message's answers; an answer that does not decode is refused alone.
async fn record(worker: &WorkerSide, message: ActivityAnswers) -> Acknowledgements {
    let mut outcomes: Vec<Option<Acknowledgement>> = Vec::with_capacity(message.responses.len());
    let mut readable = Vec::with_capacity(message.responses.len());
    for bytes in &message.responses {
        match proto::ActivityResponse::decode(bytes.as_slice()) {
            Ok(response) => {
                outcomes.push(None);
                readable.push(response);
            }
            Err(error) => outcomes.push(Some(Acknowledgement {
                code: tonic::Code::InvalidArgument as i32,
                message: format!("an ActivityResponse in the batch does not decode: {error}"),
            })),
        }
    }
    let mut recorded = worker.complete_activities(readable).await.into_iter();
    Acknowledgements {
        outcomes: outcomes
            .into_iter()
            .map(|refused| {
                refused.unwrap_or_else(|| match recorded.next() {
                    Some(Ok(())) => Acknowledgement {
                        code: tonic::Code::Ok as i32,
                        message: String::new(),
                    },
                    Some(Err(status)) => Acknowledgement {
                        code: status.code() as i32,
                        message: status.message().to_string(),
                    },
                    None => Acknowledgement {
                        code: tonic::Code::Internal as i32,
                        message: "the batch lost an answer's outcome".to_string(),
                    },
                })
            })
            .collect(),
    }
}
