//! The scheduler against a counting engine whose output is known in advance: sequence `s`
//! continuing prompt `p` produces `last(p) + 1, last(p) + 2, ...`; a prompt holding
//! [`POISON`] makes the next step fail. The engine records what the scheduler did to it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rwkv_model::gpu::SamplerConfig;
use rwkv_model::ModelError;

use crate::engine::{
    CacheFigures, Engine, EngineHandle, EngineThread, Event, FailureKind, Finish, Refusal, Submission,
};

const POISON: u32 = 999;

#[derive(Default)]
struct Record {
    /// The most sequences ever in the batch at once.
    peak: usize,
    removed: usize,
    steps: usize,
}

struct Counting {
    max_batch: usize,
    /// id → (next token, poisoned)
    seqs: BTreeMap<u64, (u32, bool)>,
    next_id: u64,
    record: Arc<Mutex<Record>>,
}

impl Engine for Counting {
    type Seq = u64;

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn sequences(&self) -> usize {
        self.seqs.len()
    }

    fn add(&mut self, prompt: &[u32], _config: &SamplerConfig) -> Result<u64, ModelError> {
        assert!(self.seqs.len() < self.max_batch, "add beyond max_batch");
        let &last = prompt.last().ok_or(ModelError::EmptyInput)?;
        self.next_id += 1;
        self.seqs.insert(self.next_id, (last + 1, prompt.contains(&POISON)));
        let mut record = self.record.lock().unwrap();
        record.peak = record.peak.max(self.seqs.len());
        Ok(self.next_id)
    }

    fn remove(&mut self, id: u64) {
        if self.seqs.remove(&id).is_some() {
            self.record.lock().unwrap().removed += 1;
        }
    }

    fn step(&mut self) -> Result<Vec<(u64, u32)>, ModelError> {
        assert!(!self.seqs.is_empty(), "a step with nothing running");
        self.record.lock().unwrap().steps += 1;
        if self.seqs.values().any(|&(_, poisoned)| poisoned) {
            return Err(ModelError::Unsupported { what: "a poisoned prompt".into() });
        }
        // Slow enough that jobs submitted together overlap.
        std::thread::sleep(Duration::from_millis(1));
        Ok(self
            .seqs
            .iter_mut()
            .map(|(&id, (next, _))| {
                *next += 1;
                (id, *next - 1)
            })
            .collect())
    }

    fn cache(&self) -> CacheFigures {
        CacheFigures::default()
    }
}

fn engine(max_batch: usize, max_queue: usize) -> (EngineHandle, EngineThread, Arc<Mutex<Record>>) {
    let record = Arc::new(Mutex::new(Record::default()));
    let counting = Counting { max_batch, seqs: BTreeMap::new(), next_id: 0, record: record.clone() };
    let (handle, thread) = EngineHandle::spawn(counting, max_queue).unwrap();
    (handle, thread, record)
}

fn submit(handle: &EngineHandle, prompt: &[u32], max_tokens: usize) -> Submission {
    handle.submit(prompt.to_vec(), SamplerConfig::GREEDY, max_tokens, Some(0)).unwrap()
}

/// Every event of a job, to its end.
fn events(mut submission: Submission) -> Vec<Event> {
    let mut all = Vec::new();
    while let Some(event) = submission.events.blocking_recv() {
        let last = !matches!(event, Event::Token(_));
        all.push(event);
        if last {
            break;
        }
    }
    all
}

fn tokens_then(first: u32, n: u32, end: Event) -> Vec<Event> {
    (first..first + n).map(Event::Token).chain([end]).collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn every_job_gets_exactly_its_tokens_and_the_batch_never_overflows() {
    let (handle, thread, record) = engine(2, 10);
    let jobs: Vec<Submission> = (0..5).map(|i| submit(&handle, &[7, 100 * (i + 1)], 3 + i as usize)).collect();
    for (i, job) in jobs.into_iter().enumerate() {
        let i = i as u32;
        assert_eq!(events(job), tokens_then(100 * (i + 1) + 1, 3 + i, Event::Finished(Finish::Length)));
    }
    // The figures are published after the last removal.
    wait_until("the figures", || handle.stats().running == 0);
    assert_eq!(handle.stats().tokens, 3 + 4 + 5 + 6 + 7);
    assert_eq!(handle.stats().peak_running, 2);
    let record = record.lock().unwrap();
    assert_eq!(record.peak, 2, "two slots, five jobs: both slots used, never more");
    assert_eq!(record.removed, 5);
    drop(record);
    handle.shutdown();
    thread.join().unwrap();
}

#[test]
fn the_end_of_text_token_ends_a_job_and_is_not_sent() {
    let (handle, thread, _) = engine(4, 4);
    let job = handle.submit(vec![9], SamplerConfig::GREEDY, 100, Some(12)).unwrap();
    assert_eq!(events(job), tokens_then(10, 2, Event::Finished(Finish::EndOfText)));
    handle.shutdown();
    thread.join().unwrap();
}

#[test]
fn a_dropped_receiver_frees_its_slot_at_the_next_step() {
    let (handle, thread, record) = engine(1, 4);
    let mut job = submit(&handle, &[1], 1_000_000);
    assert_eq!(job.events.blocking_recv(), Some(Event::Token(2)));
    assert_eq!(handle.stats().running, 1);
    drop(job);
    wait_until("the slot to be freed", || handle.stats().running == 0);
    assert_eq!(record.lock().unwrap().removed, 1);
    // The slot serves the next job.
    assert_eq!(events(submit(&handle, &[5], 2)), tokens_then(6, 2, Event::Finished(Finish::Length)));
    handle.shutdown();
    thread.join().unwrap();
}

#[test]
fn beyond_the_batch_and_the_queue_jobs_are_refused_until_a_place_frees() {
    let (handle, thread, _) = engine(1, 1);
    let first = submit(&handle, &[1], 1_000_000);
    let second = submit(&handle, &[2], 1_000_000);
    let refused = handle.submit(vec![3], SamplerConfig::GREEDY, 1, None).err();
    assert_eq!(refused, Some(Refusal::Busy { max_batch: 1, max_queue: 1 }));
    // Dropping a job gives its place back at once.
    drop(first);
    let third = submit(&handle, &[3], 1);
    // The third waits for the second's slot.
    drop(second);
    assert_eq!(events(third), tokens_then(4, 1, Event::Finished(Finish::Length)));
    handle.shutdown();
    thread.join().unwrap();
}

#[test]
fn shutdown_ends_running_and_queued_jobs_and_refuses_new_ones() {
    let (handle, thread, _) = engine(1, 4);
    let mut running = submit(&handle, &[1], 1_000_000);
    let queued = submit(&handle, &[2], 1_000_000);
    assert_eq!(running.events.blocking_recv(), Some(Event::Token(2)));
    handle.shutdown();
    let last = |s: Submission| events(s).pop().unwrap();
    for job in [running, queued] {
        match last(job) {
            Event::Failed(f) => assert_eq!(f.kind, FailureKind::ShuttingDown),
            other => panic!("expected a shutdown failure, got {other:?}"),
        }
    }
    assert_eq!(handle.submit(vec![1], SamplerConfig::GREEDY, 1, None).err(), Some(Refusal::ShuttingDown));
    thread.join().unwrap();
}

#[test]
fn a_failed_step_fails_the_running_jobs_and_the_engine_goes_on() {
    let (handle, thread, record) = engine(2, 4);
    let healthy = submit(&handle, &[1], 1_000_000);
    let poisoned = submit(&handle, &[POISON], 5);
    for job in [healthy, poisoned] {
        match events(job).pop().unwrap() {
            Event::Failed(f) => {
                assert_eq!(f.kind, FailureKind::Engine);
                assert!(f.message.contains("poisoned prompt"), "{}", f.message);
            }
            other => panic!("expected an engine failure, got {other:?}"),
        }
    }
    assert_eq!(events(submit(&handle, &[20], 2)), tokens_then(21, 2, Event::Finished(Finish::Length)));
    assert!(record.lock().unwrap().steps >= 2);
    handle.shutdown();
    thread.join().unwrap();
}

#[test]
fn a_job_the_engine_refuses_fails_alone() {
    let (handle, thread, _) = engine(2, 4);
    match events(submit(&handle, &[], 3)).pop().unwrap() {
        Event::Failed(f) => assert_eq!(f.kind, FailureKind::Rejected),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(events(submit(&handle, &[3], 1)), tokens_then(4, 1, Event::Finished(Finish::Length)));
    handle.shutdown();
    thread.join().unwrap();
}
