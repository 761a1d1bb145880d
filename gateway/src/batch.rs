//! Group commit for request handlers: calls that arrive while earlier groups are being served are served
//! together, as one group, by one call of the work function (one SQL statement for many buyers).
//!
//! A group is whatever has arrived when one of the `in_flight` servers is free, up to `max_group`. At low
//! load a group is one call and nothing waits for company; under a rush the groups grow by themselves, so
//! the round trips per second stay few while the requests per second grow. The serving task ends when the
//! last [`Grouped`] handle is dropped.

use std::{future::Future, sync::Arc};

use tokio::sync::{Semaphore, mpsc, oneshot};

pub struct Grouped<I, O> {
    tx: mpsc::Sender<(I, oneshot::Sender<O>)>,
}

impl<I, O> Clone for Grouped<I, O> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<I: Send + 'static, O: Send + 'static> Grouped<I, O> {
    /// Starts the serving task. `work` gets a group and returns one output per input, in order; `name`
    /// labels the group-size histogram `batch_size{work=…}`.
    pub fn start<F, Fut>(name: &'static str, max_group: usize, in_flight: usize, work: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<(I, oneshot::Sender<O>)>(max_group * in_flight * 4);
        let work = Arc::new(work);
        tokio::spawn(async move {
            let servers = Arc::new(Semaphore::new(in_flight));
            loop {
                let server = servers.clone().acquire_owned().await.expect("never closed");
                let mut arrived = Vec::with_capacity(max_group);
                if rx.recv_many(&mut arrived, max_group).await == 0 {
                    return;
                }
                metrics::histogram!("batch_size", "work" => name).record(arrived.len() as f64);
                let work = work.clone();
                tokio::spawn(async move {
                    let (inputs, replies): (Vec<I>, Vec<_>) = arrived.into_iter().unzip();
                    let outputs = work(inputs).await;
                    debug_assert_eq!(outputs.len(), replies.len(), "one output per input");
                    for (output, reply) in outputs.into_iter().zip(replies) {
                        let _ = reply.send(output);
                    }
                    drop(server);
                });
            }
        });
        Self { tx }
    }

    /// Serves `input` in the next group; `None` when the serving task is gone (the gateway is stopping,
    /// or the work panicked).
    pub async fn call(&self, input: I) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((input, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn every_call_gets_its_own_answer_and_concurrent_calls_share_groups() {
        let groups = Arc::new(AtomicUsize::new(0));
        let counted = groups.clone();
        let doubler = Grouped::start("test", 64, 1, move |inputs: Vec<u32>| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                inputs.into_iter().map(|i| i * 2).collect::<Vec<_>>()
            }
        });
        let answers = futures::future::join_all((0..500).map(|i| {
            let d = doubler.clone();
            async move { d.call(i).await }
        }))
        .await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a, Some(i as u32 * 2));
        }
        let groups = groups.load(Ordering::Relaxed);
        assert!((500 / 64..500).contains(&groups), "{groups} groups for 500 calls");
    }

    #[tokio::test]
    async fn a_lone_call_does_not_wait_for_company() {
        let echo = Grouped::start("test", 64, 1, |inputs: Vec<u8>| async move { inputs });
        assert_eq!(echo.call(7).await, Some(7));
    }

    #[tokio::test]
    async fn calls_after_the_work_panicked_are_answered_none() {
        let broken = Grouped::start("test", 8, 1, |_: Vec<u8>| async move {
            panic!("work failed");
            #[allow(unreachable_code)]
            Vec::<u8>::new()
        });
        assert_eq!(broken.call(1).await, None);
    }
}
