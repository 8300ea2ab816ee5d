//! The engine thread's loop: take in new jobs (blocking while there is nothing to do), fill free
//! slots of the batch from the queue in arrival order, step the batch, route each token to its
//! job's channel, and remove a sequence as soon as it has finished or its receiver is gone (a
//! client that disconnected, a handler that saw a stop string).

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use crate::engine::{Command, Engine, EngineStats, Event, Failure, FailureKind, Finish, Job};

/// A job in the batch.
struct Running {
    job: Job,
    generated: usize,
}

pub(crate) struct Scheduler<E: Engine> {
    engine: E,
    commands: std_mpsc::Receiver<Command>,
    stats: Arc<Mutex<EngineStats>>,
    queue: VecDeque<Job>,
    running: HashMap<E::Seq, Running>,
    max_queue: usize,
    peak_running: usize,
    steps: u64,
    tokens: u64,
}

impl<E: Engine> Scheduler<E> {
    pub(crate) fn new(
        engine: E,
        commands: std_mpsc::Receiver<Command>,
        stats: Arc<Mutex<EngineStats>>,
        max_queue: usize,
    ) -> Scheduler<E> {
        Scheduler {
            engine,
            commands,
            stats,
            queue: VecDeque::new(),
            running: HashMap::new(),
            max_queue,
            peak_running: 0,
            steps: 0,
            tokens: 0,
        }
    }

    /// Runs until shutdown (or until every handle is gone and nothing is left to do).
    pub(crate) fn run(mut self) {
        loop {
            if self.running.is_empty() && self.queue.is_empty() {
                self.publish();
                match self.commands.recv() {
                    Ok(command) => {
                        if !self.take(command) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            loop {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if !self.take(command) {
                            return;
                        }
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                    // No handle is left: finish what runs, then end.
                    Err(std_mpsc::TryRecvError::Disconnected) => break,
                }
            }
            self.drop_abandoned();
            self.admit();
            self.publish();
            if !self.running.is_empty() {
                self.step();
                self.publish();
            }
        }
    }

    /// Takes one command; false on shutdown (after ending every job).
    fn take(&mut self, command: Command) -> bool {
        match command {
            Command::Run(job) => {
                self.queue.push_back(job);
                true
            }
            Command::Shutdown => {
                let failure =
                    Failure { kind: FailureKind::ShuttingDown, message: "the server is shutting down".into() };
                for (id, running) in self.running.drain() {
                    self.engine.remove(id);
                    let _ = running.job.events.send(Event::Failed(failure.clone()));
                }
                for job in self.queue.drain(..) {
                    let _ = job.events.send(Event::Failed(failure.clone()));
                }
                self.publish();
                false
            }
        }
    }

    /// Forgets queued jobs and removes running sequences whose receivers are gone.
    fn drop_abandoned(&mut self) {
        self.queue.retain(|job| !job.events.is_closed());
        let gone: Vec<E::Seq> =
            self.running.iter().filter(|(_, r)| r.job.events.is_closed()).map(|(&id, _)| id).collect();
        for id in gone {
            self.engine.remove(id);
            self.running.remove(&id);
        }
    }

    /// Moves queued jobs into free slots, first come first served.
    fn admit(&mut self) {
        while self.engine.sequences() < self.engine.max_batch() {
            let Some(job) = self.queue.pop_front() else { break };
            match self.engine.add(&job.prompt, &job.sampler) {
                Ok(id) => {
                    self.running.insert(id, Running { job, generated: 0 });
                    self.peak_running = self.peak_running.max(self.running.len());
                }
                Err(e) => {
                    let failure = Failure { kind: FailureKind::Rejected, message: e.to_string() };
                    let _ = job.events.send(Event::Failed(failure));
                }
            }
        }
    }

    fn step(&mut self) {
        self.steps += 1;
        match self.engine.step() {
            Ok(tokens) => {
                for (id, token) in tokens {
                    self.route(id, token);
                }
            }
            Err(e) => {
                // The batch's state is unknown after a failed step: every sequence in it ends with
                // the error; the queue goes on in a fresh batch.
                let failure = Failure { kind: FailureKind::Engine, message: format!("the engine failed: {e}") };
                for (id, running) in self.running.drain() {
                    self.engine.remove(id);
                    let _ = running.job.events.send(Event::Failed(failure.clone()));
                }
            }
        }
    }

    /// Sends one token to its job; ends the sequence at end of text, at its token limit, or when
    /// its receiver is gone.
    fn route(&mut self, id: E::Seq, token: u32) {
        // Tokens of a sequence removed in this step are dropped.
        let Some(running) = self.running.get_mut(&id) else { return };
        self.tokens += 1;
        running.generated += 1;
        let end = if Some(token) == running.job.end_of_text {
            Some(Finish::EndOfText)
        } else if running.job.events.send(Event::Token(token)).is_err() {
            // The receiver is gone: nothing more to say.
            None
        } else if running.generated >= running.job.max_tokens {
            Some(Finish::Length)
        } else {
            return;
        };
        if let Some(finish) = end {
            let _ = running.job.events.send(Event::Finished(finish));
        }
        self.engine.remove(id);
        self.running.remove(&id);
    }

    fn publish(&self) {
        let stats = EngineStats {
            running: self.running.len(),
            queued: self.queue.len(),
            peak_running: self.peak_running,
            max_batch: self.engine.max_batch(),
            max_queue: self.max_queue,
            steps: self.steps,
            tokens: self.tokens,
            cache: self.engine.cache(),
        };
        *self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = stats;
    }
}

#[cfg(test)]
mod tests;
