//! The engine the HTTP handlers talk to: one thread owns the batched model ([`Engine`]) and runs
//! [`crate::scheduler`]'s loop; handlers [`EngineHandle::submit`] jobs and read each job's tokens
//! from its own channel.
//!
//! Admission: at most `max_batch` sequences decode together and at most `max_queue` more wait
//! (first come, first served) for a slot; a request beyond that is refused at once
//! ([`Refusal::Busy`], HTTP 503), as is every request once shutdown has begun.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use rwkv_model::gpu::SamplerConfig;
use rwkv_model::ModelError;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::ServerError;
use crate::scheduler::Scheduler;

/// What the scheduler needs of a batched model: `rwkv_model::batch::Batch`, or a test double.
pub trait Engine: Send + 'static {
    /// A sequence's handle.
    type Seq: Copy + Eq + Hash + Debug + Send + 'static;
    /// The most sequences that may run together.
    fn max_batch(&self) -> usize;
    /// Sequences added and not removed.
    fn sequences(&self) -> usize;
    /// Starts a sequence continuing `prompt` (at least one token).
    fn add(&mut self, prompt: &[u32], config: &SamplerConfig) -> Result<Self::Seq, ModelError>;
    /// Ends a sequence (unknown ids are ignored).
    fn remove(&mut self, id: Self::Seq);
    /// One step of every running sequence: the tokens produced since the last call, in order.
    fn step(&mut self) -> Result<Vec<(Self::Seq, u32)>, ModelError>;
    /// The prefix-state cache's counters.
    fn cache(&self) -> CacheFigures;
}

/// The prefix-state cache's counters, as `/health` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheFigures {
    /// Prompts that started from a cached state.
    pub hits: u64,
    /// Prompts that found no cached state.
    pub misses: u64,
    /// States held now.
    pub entries: u64,
    /// GPU bytes they hold.
    pub bytes: u64,
    /// Prompt tokens not prefilled because a cached state already covered them.
    pub tokens_reused: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
}

/// One generation request, as the scheduler runs it.
pub struct Job {
    /// The tokens the sequence continues.
    pub prompt: Vec<u32>,
    /// How its tokens are picked.
    pub sampler: SamplerConfig,
    /// The sequence ends after this many tokens ([`Finish::Length`]).
    pub max_tokens: usize,
    /// The token that ends the text ([`Finish::EndOfText`]; not sent as a token).
    pub end_of_text: Option<u32>,
    /// Where its [`Event`]s go.
    pub events: mpsc::UnboundedSender<Event>,
}

/// What a job's channel receives, in order: tokens, then one `Finished` or `Failed`. A job whose
/// receiver is dropped is removed from the batch at the next step.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The next token.
    Token(u32),
    /// The sequence ended normally.
    Finished(Finish),
    /// The job ended without finishing.
    Failed(Failure),
}

/// Why a sequence ended on the engine's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// It produced `max_tokens` tokens.
    Length,
    /// It produced the end-of-text token.
    EndOfText,
}

/// Why a job could not run to its end.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Whose fault, and so which HTTP status.
    pub kind: FailureKind,
    /// What went wrong.
    pub message: String,
}

/// The kinds of [`Failure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The engine refused the job's input (an HTTP 400).
    Rejected,
    /// A step of the batch failed; every sequence running then got this (an HTTP 500).
    Engine,
    /// The server is shutting down (an HTTP 503).
    ShuttingDown,
}

/// Why [`EngineHandle::submit`] refused a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot and queue place is taken.
    Busy {
        max_batch: usize,
        max_queue: usize,
    },
    ShuttingDown,
}

/// The engine's figures, published by its thread after every step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Sequences in the batch.
    pub running: usize,
    /// Jobs waiting for a slot.
    pub queued: usize,
    /// The most sequences that have run together.
    pub peak_running: usize,
    /// The most sequences that may run together.
    pub max_batch: usize,
    /// The most jobs that may wait for a slot.
    pub max_queue: usize,
    /// Steps run since the start.
    pub steps: u64,
    /// Tokens produced since the start.
    pub tokens: u64,
    /// The prefix-state cache's counters.
    pub cache: CacheFigures,
}

pub(crate) enum Command {
    Run(Job),
    Shutdown,
}

/// The handlers' side of the engine thread; cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    commands: std_mpsc::Sender<Command>,
    stats: Arc<Mutex<EngineStats>>,
    /// Jobs submitted whose [`Submission`] is still alive.
    admitted: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    max_batch: usize,
    max_queue: usize,
}

/// A submitted job: its events, and its place (given back when this is dropped).
pub struct Submission {
    /// The job's events.
    pub events: mpsc::UnboundedReceiver<Event>,
    _place: Place,
}

struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The engine thread; [`EngineThread::join`] waits for it after [`EngineHandle::shutdown`].
pub struct EngineThread(JoinHandle<()>);

impl EngineThread {
    /// Waits for the thread to end (it ends once shut down, or when every handle is dropped).
    pub fn join(self) -> Result<(), ServerError> {
        self.0.join().map_err(|_| ServerError::EngineCrashed)
    }
}

impl EngineHandle {
    /// Starts the engine thread, which owns `engine` from now on; `max_queue` jobs may wait
    /// beyond the `engine.max_batch()` that run.
    pub(crate) fn spawn<E: Engine>(engine: E, max_queue: usize) -> Result<(EngineHandle, EngineThread), ServerError> {
        let max_batch = engine.max_batch();
        if max_batch == 0 {
            return Err(ServerError::Options("the engine's max batch is 0".into()));
        }
        let (commands, receiver) = std_mpsc::channel();
        let stats = Arc::new(Mutex::new(EngineStats { max_batch, max_queue, ..EngineStats::default() }));
        let scheduler = Scheduler::new(engine, receiver, stats.clone(), max_queue);
        let thread = std::thread::Builder::new()
            .name("rwkv-engine".into())
            .spawn(move || scheduler.run())
            .map_err(ServerError::EngineThread)?;
        let handle = EngineHandle {
            commands,
            stats,
            admitted: Arc::new(AtomicUsize::new(0)),
            closing: Arc::new(AtomicBool::new(false)),
            max_batch,
            max_queue,
        };
        Ok((handle, EngineThread(thread)))
    }

    /// Queues a job (its `events` sender is made here), or refuses it when the batch and the
    /// queue are full or shutdown has begun.
    pub(crate) fn submit(
        &self,
        prompt: Vec<u32>,
        sampler: SamplerConfig,
        max_tokens: usize,
        end_of_text: Option<u32>,
    ) -> Result<Submission, Refusal> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(Refusal::ShuttingDown);
        }
        let capacity = self.max_batch + self.max_queue;
        let taken = self.admitted.fetch_add(1, Ordering::SeqCst);
        let place = Place(self.admitted.clone());
        if taken >= capacity {
            return Err(Refusal::Busy { max_batch: self.max_batch, max_queue: self.max_queue });
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let job = Job { prompt, sampler, max_tokens, end_of_text, events };
        self.commands.send(Command::Run(job)).map_err(|_| Refusal::ShuttingDown)?;
        Ok(Submission { events: receiver, _place: place })
    }

    /// The figures of the last step.
    pub fn stats(&self) -> EngineStats {
        *self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Refuses new jobs from now on, ends every queued and running one with
    /// a shutdown failure and lets the thread end.
    pub fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        // The thread may already be gone; then there is nothing left to end.
        let _ = self.commands.send(Command::Shutdown);
    }

    /// Whether [`Self::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}
