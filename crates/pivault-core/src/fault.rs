//! Fault injection into request execution, for tests and drills.

/// A fault injected into request execution, for tests and drills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The step fails (its transaction rolls back): the request becomes `failed(step)`.
    FailAt(String),
    /// Execution stops right after the step commits, as if the process died there: the
    /// request stays `in_progress`.
    HaltAfter(String),
    /// The process aborts right after the step commits (real crash).
    AbortAfter(String),
}

impl Fault {
    /// Parses `fail:STEP`, `halt:STEP` or `abort:STEP` (env `PIVAULT_DSR_FAULT`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (mode, step) = s.split_once(':')?;
        let step = step.to_string();
        match mode {
            "fail" => Some(Self::FailAt(step)),
            "halt" => Some(Self::HaltAfter(step)),
            "abort" => Some(Self::AbortAfter(step)),
            _ => None,
        }
    }
}
