//! Group commit of request steps (issue 16, item 5).
//!
//! Each step of a data subject request commits its change, its progress and its audit entry
//! in one transaction (see `run`). With one transaction per step, concurrent erasures queue
//! one by one on the data writers' lock and pay a commit each (on PostgreSQL a WAL flush, on
//! SQLite the WAL pages of the request, audit and shard-head rows). Here the steps that are
//! waiting are staged one after another in ONE transaction and committed once:
//!
//! - Every step is answered only after the commit: a 2xx still means committed.
//! - Each step still writes its own durable record (`steps_done`, its results, its audit
//!   entry), so a crash resumes at the first step not committed, exactly as before.
//! - A step that fails stops the group, which is rolled back whole; that step is answered with
//!   its error (its request is then marked `failed(step)` as before) and the others are staged
//!   again without it. Failures are rare, so the common case pays no savepoint round trips.
//!   After [`MAX_RETRIES`] such failures the rest run one transaction each.
//! - A storage fault (disk full, I/O error, database unreachable) answers every step of the
//!   group with that fault; a commit that fails otherwise sends each step to a transaction of
//!   its own. Running a step again is safe: it re-reads its request under the write lock and
//!   does nothing when the step is already done.
//!
//! There is no writer task: the first waiting caller to take the leader's lock stages and
//! commits everything queued (up to [`MAX_GROUP`]), answers each, and lets the lock go; the
//! callers it answered find their answer when they get the lock. If a leader is cancelled (its
//! client went away) the steps it held get no answer; their callers queue them again.

use super::run::StagedStep;
use crate::error::CoreError;
use crate::vault::Vault;
use pivault_store::{DsrRow, WriteTx};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Most steps staged in one transaction. It bounds how long the group holds the data
/// writers' lock (and on SQLite the one write lock, which decisions' audit commits wait for).
pub(crate) const MAX_GROUP: usize = 64;

/// Steps that may fail in one group before the rest run one transaction each.
const MAX_RETRIES: usize = 3;

/// Until [`Uncommitted::committed`]: the subjects of steps staged in a transaction. Dropped
/// without it (the group failed, or the leader's future was dropped, perhaps with the commit
/// under way), it makes this process forget their DEKs and decision facts and wakes the
/// outbox. A step may have cached a key that another step of the group inserted and that was
/// never committed; and a commit that did go through gets no `step_committed`, because a
/// caller that queues its step again finds it done (`None`).
struct Uncommitted<'a> {
    vault: &'a Vault,
    subjects: Vec<String>,
    armed: bool,
}

impl<'a> Uncommitted<'a> {
    fn new(vault: &'a Vault) -> Self {
        Self {
            vault,
            subjects: Vec::new(),
            armed: true,
        }
    }

    fn committed(&mut self) {
        self.armed = false;
    }
}

impl Drop for Uncommitted<'_> {
    fn drop(&mut self) {
        if self.armed && !self.subjects.is_empty() {
            for s in &self.subjects {
                self.vault.shredded(s);
            }
            self.vault.outbox_kick.notify_waiters();
        }
    }
}

/// What stopped a group: one step's failure (its index), or the transaction's.
enum Stop {
    Step(usize, CoreError),
    Group(CoreError),
}

type Answer = Result<Option<DsrRow>, CoreError>;

/// One step waiting for a group commit.
struct Job {
    actor: String,
    id: String,
    step: &'static str,
    last: bool,
    reply: oneshot::Sender<Answer>,
}

/// The steps waiting for a group commit, and the leader's lock. Held by the [`Vault`].
#[derive(Debug, Default)]
pub(crate) struct StepQueue {
    waiting: Mutex<Vec<Job>>,
    leader: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl StepQueue {
    fn push(&self, job: Job) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(job);
    }

    /// The oldest waiting steps, at most [`MAX_GROUP`].
    fn take(&self) -> Vec<Job> {
        let mut w = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = w.len().min(MAX_GROUP);
        w.drain(..n).collect()
    }
}

impl Vault {
    /// Runs one step of request `id` as `actor`, committed in a group with the steps other
    /// requests are waiting to commit (see the module documentation). `Some(row)` is the
    /// request as the commit left it; `None` when the step was already done or the request
    /// no longer in progress (another run moved it).
    ///
    /// # Errors
    /// The step's failure, or the store's. Nothing of the step is committed then.
    pub(crate) async fn run_step(
        &self,
        actor: &str,
        id: &str,
        step: &'static str,
        last: bool,
    ) -> Result<Option<DsrRow>, CoreError> {
        let queue = |reply| Job {
            actor: actor.to_string(),
            id: id.to_string(),
            step,
            last,
            reply,
        };
        let (reply, mut answer) = oneshot::channel();
        self.steps.push(queue(reply));
        loop {
            let lead = self.steps.leader.lock().await;
            match answer.try_recv() {
                Ok(a) => return a,
                Err(oneshot::error::TryRecvError::Closed) => {
                    // The leader that took this step was cancelled before answering: the step
                    // may or may not have committed. Queue it again (see the module doc).
                    let (reply, again) = oneshot::channel();
                    answer = again;
                    self.steps.push(queue(reply));
                }
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Still waiting, so not taken yet: lead a group.
                    let jobs = self.steps.take();
                    self.commit_steps(jobs).await;
                    // Its own answer is usually in that group: return it without queueing
                    // behind the callers that arrived meanwhile.
                    if let Ok(a) = answer.try_recv() {
                        return a;
                    }
                }
            }
            drop(lead);
        }
    }

    /// Stages `jobs` in one transaction, commits, then answers each (see the module doc).
    async fn commit_steps(&self, mut jobs: Vec<Job>) {
        let mut failures = 0;
        while jobs.len() > 1 && failures < MAX_RETRIES {
            let now = self.now().unix_timestamp();
            match self.stage_group(&jobs, now).await {
                Ok(answers) => {
                    let committed = answers.iter().filter(|a| a.is_some()).count();
                    if committed > 0 {
                        self.metrics.step_group(committed);
                    }
                    for (job, a) in jobs.into_iter().zip(answers) {
                        let _ = job.reply.send(Ok(a.map(|s| self.step_committed(s))));
                    }
                    return;
                }
                Err(stop) => {
                    // Nothing of the group was kept; the guard in `stage_group` has already
                    // made this process forget what the staged steps may have cached.
                    match stop {
                        Stop::Step(i, e) => {
                            failures += 1;
                            let job = jobs.remove(i);
                            let _ = job.reply.send(Err(e));
                        }
                        Stop::Group(e) => {
                            if let Some(fault) = e.storage_fault() {
                                let detail = e.to_string();
                                for job in jobs {
                                    let _ = job.reply.send(Err(CoreError::Storage {
                                        fault,
                                        detail: detail.clone(),
                                    }));
                                }
                                return;
                            }
                            tracing::warn!(error = %e, steps = jobs.len(), "request step group failed; running its steps one by one");
                            break;
                        }
                    }
                }
            }
        }
        for job in jobs {
            let a = self.run_alone(&job).await;
            let _ = job.reply.send(a);
        }
    }

    /// One step in a transaction of its own.
    async fn run_alone(&self, job: &Job) -> Answer {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut guard = Uncommitted::new(self);
        let staged = self
            .stage_step(&mut tx, &job.actor, &job.id, job.step, job.last, now)
            .await?;
        if let Some(s) = &staged {
            guard.subjects.push(s.subject.clone());
        }
        tx.commit().await?;
        guard.committed();
        if staged.is_some() {
            self.metrics.step_group(1);
        }
        Ok(staged.map(|s| self.step_committed(s)))
    }

    /// Stages every job in one transaction, in order, and commits. Returns each job's staged
    /// step, or what stopped the group.
    async fn stage_group(&self, jobs: &[Job], now: i64) -> Result<Vec<Option<StagedStep>>, Stop> {
        let mut staged = Vec::with_capacity(jobs.len());
        let mut tx: WriteTx = self
            .store
            .begin(now)
            .await
            .map_err(|e| Stop::Group(e.into()))?;
        let mut guard = Uncommitted::new(self);
        for (i, job) in jobs.iter().enumerate() {
            match self
                .stage_step(&mut tx, &job.actor, &job.id, job.step, job.last, now)
                .await
            {
                Ok(s) => {
                    if let Some(s) = &s {
                        guard.subjects.push(s.subject.clone());
                    }
                    staged.push(s);
                }
                Err(e) if e.storage_fault().is_some() => return Err(Stop::Group(e)),
                Err(e) => return Err(Stop::Step(i, e)),
            }
        }
        tx.commit().await.map_err(|e| Stop::Group(e.into()))?;
        guard.committed();
        Ok(staged)
    }

    /// After the commit of a staged step: wakes the outbox and forgets what the step made
    /// stale in this process's caches. Returns the request as committed.
    fn step_committed(&self, s: StagedStep) -> DsrRow {
        self.outbox_kick.notify_waiters();
        if s.shredded {
            self.shredded(&s.subject);
        } else if s.facts_changed {
            self.facts.changed(&s.subject);
        }
        s.row
    }
}
