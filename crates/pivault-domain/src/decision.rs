//! `decide()`: the one decision that sits in front of every collection, use, share, transfer,
//! public disclosure and cross-border transfer of PI.
//!
//! A decision is a pure function of (policy, the subject's facts, the request, the instant):
//! no IO, no parsing, no clock reads. That makes it fast, testable and explainable — every
//! outcome names a stable reason code, the policy clause and the PIPL article behind it.
//!
//! Order of checks (the first failing one decides):
//! 1. the purpose exists in the policy (PIPL Art. 6: explicit, specific purposes);
//! 2. the calling principal may use it (policy §8.1: only authorized personnel);
//! 3. share/transfer/cross-border name a declared recipient that serves the purpose
//!    (§5.1.3–5.1.4; Art. 21, 23); a destination outside the storage region makes it a
//!    cross-border transfer (§4.1, §8.5; Art. 38–39), and collection or use abroad is refused;
//! 4. an erased subject is readable only under a legal obligation, and only for categories
//!    under a legal retention period (Art. 47 para 2);
//! 5. the legal basis holds: a §5.4 exception (Art. 13(2)–(7)) with its reference and
//!    authorizing officer; else for consent, an active consent for the purpose (Art. 13(1), 14,
//!    15), given by a guardian for a subject under the minor age (Art. 31, §IX), and given
//!    under a policy version no older than the purpose's last material change (Art. 14
//!    para. 2, §X: `consent_outdated`; this holds for every consent relied on, named
//!    recipient or not); sharing with
//!    another handler and cross-border transfer need a separate consent naming the recipient
//!    (Art. 23, 39); public disclosure a separate consent (Art. 25);
//! 6. per category: only categories the purpose declares (minimum necessary, Art. 6, §8.2) and
//!    the recipient may receive; sensitive categories under consent need a separate consent
//!    (Art. 29), all PI of a minor being sensitive (Art. 28); business data never leaves the
//!    region its customer chose (§6.3). Non-personal categories (device model, OS) alone are
//!    not PI (§2.1.3); combined with an identifying category in one request they are PI.
//!
//! Any error while evaluating is a deny, never a skipped rule.

mod decide;
mod outcome;
mod reason;
mod request;

pub use decide::{age_on, decide};
pub use outcome::{Decision, OutdatedBy, Withheld};
pub use reason::{Obligation, Reason};
pub use request::{AccessRequest, Action, Exception, ExceptionKind, SubjectFacts};

#[cfg(test)]
mod tests;
