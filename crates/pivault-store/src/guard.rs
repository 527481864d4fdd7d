//! The nested-acquire guard: no task takes a pool connection while it holds a write
//! transaction.
//!
//! Why: a [`WriteTx`](crate::WriteTx) holds the audit-chain head lock from its first statement
//! to its commit, and every other writer — of this instance and of every other instance on the
//! same database — waits for that lock *while holding a pool connection*. If the holder then
//! asks the pool for a second connection, it can wait for a connection that is only released
//! after its own commit: the pool (and with it every instance) stalls until timeouts fire
//! (issue 9, defect 2). Inside a write transaction, every read goes through the transaction.
//!
//! How: [`GuardedPool`] is the only way to the pool. [`GuardedPool::begin_write`] registers
//! the calling *holder* as owning one more live write transaction; the returned
//! [`WriteRegistration`] lives inside the `WriteTx` and unregisters when the transaction is
//! committed or dropped. [`GuardedPool::get`] — which every `Store` method calls for each
//! statement — refuses with [`StoreError::NestedAcquire`] when the calling holder has a live
//! write transaction, whether or not the pool would have a connection free (so the bug shows
//! up in every test, not only under load). `begin_write` itself refuses the same way: a second
//! `begin` while one is open is the same self-deadlock (on SQLite the process write lock is
//! never released).
//!
//! The holder is the Tokio task (`tokio::task::try_id()`), or, outside any task — the future
//! driven by `Runtime::block_on`, which is what `#[tokio::test]` bodies and the CLI run in, and
//! which has no task id — the OS thread: such a future never leaves the thread that blocks on
//! it, and that thread polls nothing else of the same holder meanwhile.
//!
//! Limits, by design: a transaction is expected to stay in the task that began it (moving it
//! into another task keeps the registration on the first one); a task spawned while the
//! transaction is held is a different holder and is not checked (nothing in pivault spawns
//! there); concurrent branches of one task (`join!`) holding a transaction and reading beside it
//! are refused even though they need not deadlock — the conservative side.
//!
//! A refusal is a bug in the caller: debug builds (every test) panic with the message at the
//! offending call, release builds log an error and return the error (a 500, not a hang).

use crate::StoreError;
use sqlx::AnyPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Who holds a write transaction: a Tokio task, or a thread blocking on a future outside any
/// task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

impl Holder {
    fn current() -> Self {
        match tokio::task::try_id() {
            Some(id) => Self::Task(id),
            None => Self::Thread(std::thread::current().id()),
        }
    }
}

/// Live write transactions per holder.
#[derive(Debug, Default)]
struct Live {
    /// Sum of `by_holder`: lets the common case (no transaction anywhere) skip the map.
    total: AtomicUsize,
    by_holder: Mutex<HashMap<Holder, usize>>,
}

impl Live {
    fn holds(&self, h: Holder) -> bool {
        if self.total.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.map().get(&h).is_some_and(|n| *n > 0)
    }

    fn enter(&self, h: Holder) {
        *self.map().entry(h).or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
    }

    fn leave(&self, h: Holder) {
        let mut m = self.map();
        if let Some(n) = m.get_mut(&h) {
            *n -= 1;
            if *n == 0 {
                m.remove(&h);
            }
            self.total.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The map; nothing panics while holding it, and a poisoned lock still guards.
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Holder, usize>> {
        self.by_holder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The pool behind the nested-acquire guard. Clones share the registry.
#[derive(Debug, Clone)]
pub(crate) struct GuardedPool {
    pool: AnyPool,
    live: Arc<Live>,
}

/// Proof that the holder that began a write transaction has it registered; unregisters on
/// drop (commit or rollback).
#[derive(Debug)]
pub(crate) struct WriteRegistration {
    live: Arc<Live>,
    holder: Holder,
}

impl Drop for WriteRegistration {
    fn drop(&mut self) {
        self.live.leave(self.holder);
    }
}

impl GuardedPool {
    pub(crate) fn new(pool: AnyPool) -> Self {
        Self {
            pool,
            live: Arc::default(),
        }
    }

    /// The pool, for a statement outside any write transaction of the caller.
    ///
    /// # Errors
    /// [`StoreError::NestedAcquire`] when the calling task (or blocking thread) holds a live
    /// write transaction (debug builds panic instead).
    #[track_caller]
    pub(crate) fn get(&self) -> Result<&AnyPool, StoreError> {
        if self.live.holds(Holder::current()) {
            return Err(refuse());
        }
        Ok(&self.pool)
    }

    /// Registers a write transaction of the caller, then returns the pool to begin it on.
    ///
    /// # Errors
    /// [`StoreError::NestedAcquire`] when the caller already holds one (debug builds panic).
    #[track_caller]
    pub(crate) fn begin_write(&self) -> Result<(&AnyPool, WriteRegistration), StoreError> {
        let holder = Holder::current();
        if self.live.holds(holder) {
            return Err(refuse());
        }
        self.live.enter(holder);
        Ok((
            &self.pool,
            WriteRegistration {
                live: Arc::clone(&self.live),
                holder,
            },
        ))
    }
}

#[track_caller]
fn refuse() -> StoreError {
    let at = std::panic::Location::caller();
    if cfg!(debug_assertions) {
        panic!(
            "NestedAcquire at {at}: a pool connection was requested while this task holds a write \
             transaction; read through the WriteTx instead"
        );
    }
    tracing::error!(at = %at, "nested pool acquire refused: this task holds a write transaction");
    StoreError::NestedAcquire
}
