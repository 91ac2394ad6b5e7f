//! Activity answers to a durable-emu sidecar, many to a message (and an episode's notes: what
//! the UI shows that the protocol's answer cannot carry): durable-emu's own `WorkerBatches`
//! stream (`proto/durable_emu_worker.proto` in the grpc crate), used only when the
//! backend says it serves it (`durable-emu-worker-batches: v1` on the work-item stream). Every
//! other backend gets the protocol's unary `CompleteActivityTask`, and so does an answer whose
//! batch went unacknowledged (a broken stream): sent again alone, it is either recorded or, if
//! the batch had recorded it after all, refused as stale, which changes nothing.
//!
//! Batching comes from the acknowledgements' pace: at most [`MESSAGES_AHEAD`] messages wait for
//! theirs, and answers that arrive meanwhile go together in the next one, so a busy fan-out
//! sends a few large messages (one core commit each on the sidecar) and a lone answer goes at once.
//!
//! Knows the proto and the connection's channel; knows nothing of plugins or work items.

use crate::Metadata;
use durable_emu_grpc::batches::worker_batches_client::WorkerBatchesClient;
use durable_emu_grpc::batches::{Acknowledgements, ActivityAnswers, EpisodeNotes};
use durable_emu_grpc::proto;
use prost::Message as _;
use std::collections::VecDeque;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Messages sent and not yet acknowledged before answers wait to go in the next one.
const MESSAGES_AHEAD: usize = 2;

/// Most answers in one message.
const MOST_PER_MESSAGE: usize = 4096;

type Reply = oneshot::Sender<Result<(), Status>>;

/// The sending end of one connection's answer stream; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AnswerBatches {
    /// Encoded answers (encoded by their senders, each on its own task) and where their
    /// outcome goes.
    queue: mpsc::UnboundedSender<(Vec<u8>, Reply)>,
    client: WorkerBatchesClient<InterceptedService<Channel, Metadata>>,
}

impl AnswerBatches {
    /// Opens the stream over `channel` (in the background: a backend that refuses it fails the
    /// first answers, which then go unary).
    pub(crate) fn open(channel: InterceptedService<Channel, Metadata>) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        let client = WorkerBatchesClient::new(channel);
        tokio::spawn(pump(client.clone(), queued));
        Self { queue, client }
    }

    /// Tells the sidecar what an episode's answer cannot carry, before the answer goes.
    pub(crate) async fn note_episode(&self, notes: EpisodeNotes) -> Result<(), Status> {
        self.client.clone().note_episode(notes).await.map(drop)
    }

    /// Sends one answer in a batch; `None` when the batch could not carry it (the stream is
    /// gone or refused), so the caller sends it alone.
    pub(crate) async fn complete(
        &self,
        answer: &proto::ActivityResponse,
    ) -> Option<Result<(), Status>> {
        let (reply, replied) = oneshot::channel();
        self.queue.send((answer.encode_to_vec(), reply)).ok()?;
        replied.await.ok()
    }
}

/// Moves queued answers into messages and acknowledgements back to their senders, until the
/// connection's answers stop coming or the stream breaks (then every waiting sender hears
/// nothing, and sends its answer alone).
async fn pump(
    mut client: WorkerBatchesClient<InterceptedService<Channel, Metadata>>,
    mut queued: mpsc::UnboundedReceiver<(Vec<u8>, Reply)>,
) {
    let (messages, outgoing) = mpsc::channel::<ActivityAnswers>(MESSAGES_AHEAD);
    let opened = client
        .complete_activity_tasks(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await;
    let Ok(response) = opened else {
        return;
    };
    let mut acknowledgements = response.into_inner();
    let mut waiting: VecDeque<Vec<Reply>> = VecDeque::new();
    loop {
        tokio::select! {
            first = queued.recv(), if waiting.len() < MESSAGES_AHEAD => {
                let Some(first) = first else { break };
                let mut responses = Vec::new();
                let mut replies = Vec::new();
                for (answer, reply) in std::iter::once(first)
                    .chain(std::iter::from_fn(|| queued.try_recv().ok()))
                    .take(MOST_PER_MESSAGE)
                {
                    responses.push(answer);
                    replies.push(reply);
                }
                if messages.send(ActivityAnswers { responses }).await.is_err() {
                    break;
                }
                waiting.push_back(replies);
            }
            acknowledged = acknowledgements.message() => match acknowledged {
                Ok(Some(Acknowledgements { outcomes })) => {
                    let Some(replies) = waiting.pop_front() else { break };
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let result = match tonic::Code::from(outcome.code) {
                            tonic::Code::Ok => Ok(()),
                            code => Err(Status::new(code, outcome.message)),
                        };
                        let _ = reply.send(result);
                    }
                }
                Ok(None) | Err(_) => break,
            },
        }
    }
    // Dropping the replies still waiting (and the queue) tells their senders to go unary.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_the_batch_stream_cannot_carry_is_left_to_the_unary_call() {
        // Nothing listens on the discard port: the stream is never opened.
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let metadata =
            crate::Metadata::from_config(&crate::WorkerConfig::new("http://127.0.0.1:9"))
                .expect("no metadata to refuse");
        let batches = AnswerBatches::open(InterceptedService::new(channel, metadata));
        let answer = proto::ActivityResponse {
            instance_id: "i".into(),
            completion_token: "t".into(),
            ..Default::default()
        };
        let carried = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            batches.complete(&answer),
        )
        .await
        .expect("the batch gives up");
        assert!(carried.is_none(), "{carried:?}");
        // And so does every later answer, at once.
        assert!(batches.complete(&answer).await.is_none());
    }
}
