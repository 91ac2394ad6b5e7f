//! Where episodes run in the worker: a few long-lived threads ("lanes"), each instance always on
//! the same one. A plugin keeps an orchestration's session (its suspended code, so the next
//! episode resumes instead of replaying the whole history) in a thread-local cache, so an
//! episode finds its session only on the thread that ran the previous one; the emulator runs
//! episodes on one thread for the same reason. Several lanes keep one slow orchestrator from
//! holding up every other instance.
//!
//! Knows nothing of the wire, the plugin or what an episode is: it runs closures.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Sender, channel};

type Job = Box<dyn FnOnce() + Send>;

/// The episode threads; dropping them ends the threads once their queued jobs ran.
pub(crate) struct EpisodeLanes {
    lanes: Vec<Sender<Job>>,
}

/// A lane that could not take a job: its thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("the episode thread for this instance has stopped")]
pub(crate) struct LaneGone;

impl EpisodeLanes {
    /// `count` lanes (at least one).
    pub(crate) fn new(count: usize) -> Self {
        let lanes = (0..count.max(1))
            .filter_map(|index| {
                let (jobs, inbox) = channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("durable-emu-episodes-{index}"))
                    .spawn(move || {
                        for job in inbox {
                            // A panic outside the plugin boundary (which catches the user's)
                            // loses that job's answer (its caller hears `LaneGone`), not the lane.
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                        }
                    })
                    .ok()
                    .map(|_| jobs)
            })
            .collect();
        Self { lanes }
    }

    /// Runs `job` on the lane of `instance_id`; its result arrives when it has run.
    pub(crate) fn run<T, F>(
        &self,
        instance_id: &str,
        job: F,
    ) -> impl Future<Output = Result<T, LaneGone>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let sent = self.lane(instance_id).is_some_and(|lane| {
            lane.send(Box::new(move || {
                let _ = answer.send(job());
            }))
            .is_ok()
        });
        async move {
            if !sent {
                return Err(LaneGone);
            }
            answered.await.map_err(|_| LaneGone)
        }
    }

    fn lane(&self, instance_id: &str) -> Option<&Sender<Job>> {
        let mut hasher = DefaultHasher::new();
        instance_id.hash(&mut hasher);
        let count = self.lanes.len() as u64;
        if count == 0 {
            return None;
        }
        self.lanes.get((hasher.finish() % count) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_instance_always_runs_on_the_same_lane_and_a_panic_keeps_the_lane() {
        let lanes = EpisodeLanes::new(3);
        let thread_of = |id: &'static str| lanes.run(id, || std::thread::current().id());
        let first = thread_of("order-1").await.expect("the lane runs");
        for _ in 0..10 {
            assert_eq!(thread_of("order-1").await.expect("the lane runs"), first);
        }
        let panicked = lanes.run("order-1", || -> u32 { panic!("outside the boundary") });
        assert!(panicked.await.is_err());
        assert_eq!(
            thread_of("order-1").await.expect("the lane survives"),
            first
        );
    }
}
