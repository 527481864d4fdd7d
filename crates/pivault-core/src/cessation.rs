//! Service cessation (policy §8.6; PIPL Art. 47 para. 1(2)): when the products or services
//! stop, collection stops at once, everyone is told, and PI is deleted or anonymized except
//! what the law requires us to keep (or a legal hold keeps).
//!
//! `cessation_start` commits, in one transaction, the `running` state (from then on every
//! create, put and import is refused with `service_ceased`; reads and DSRs still work), the
//! public announcement and an audit entry. `cessation_resume` then does the rest, page by page,
//! each page its own transaction, and records progress, so that after a crash it continues:
//! 1. one `cessation_notice` per active subject into the outbox (its uniqueness leaves out those
//!    already queued; a subject no channel reaches is covered by the announcement);
//! 2. every active subject is erased on ground `service_ended` through the one erasure path
//!    (`erase_subject`: categories under a legal minimum or a hold are kept restricted until
//!    their period ends, when the retention sweep deletes them; everything else is shredded,
//!    recipients are notified, a receipt is signed);
//! 3. `done`.

use pivault_domain::erasure::ErasureGround;
use pivault_domain::notice::{self, CessationNotice, Lang};
use pivault_domain::policy::Policy;
use pivault_store::{AnnouncementRow, CessationRow, WriteTx};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::warn;

use crate::error::CoreError;
use crate::messages::{kind, Enqueue};
use crate::services::principals::Principals;
use crate::{Principal, Vault, ROLE_ADMIN};

/// Subjects per notice page.
const PAGE: i64 = 2_000;

/// Where a cessation stands.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CessationStatus {
    /// `none`, `running`, `done`.
    pub state: String,
    /// The cessation's id.
    pub id: Option<String>,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds: when the service ends.
    pub effective_at: Option<i64>,
    /// Notices queued.
    pub notices_queued: u64,
    /// Subjects erased.
    pub erased: u64,
    /// Subjects whose erasure failed (left for the next resume).
    pub erase_failed: u64,
    /// Active subjects left.
    pub active_left: u64,
    /// Subjects whose notice has not reached them yet (erased once it has).
    pub waiting_notice: u64,
    /// The phase: `notify`, `erase`, `done`.
    pub phase: String,
}

/// The notice contents of a cessation (policy §8.6).
pub(crate) fn notice_of(c: &CessationRow, contact: &str, _policy: &Policy) -> CessationNotice {
    CessationNotice {
        cessation_id: c.cessation_id.clone().unwrap_or_default(),
        effective_at: c.effective_at.unwrap_or(0),
        deletion_from: c.effective_at.unwrap_or(0),
        contact: contact.to_string(),
    }
}

fn progress(c: &CessationRow) -> Value {
    serde_json::from_str(&c.progress).unwrap_or_else(|_| json!({}))
}

impl Vault {
    fn require_cessation_role(p: &Principal) -> Result<(), CoreError> {
        if p.has_role("dpo") {
            Ok(())
        } else {
            Principals::require_role(p, ROLE_ADMIN)
        }
    }

    /// Starts a cessation effective at `effective_at` (unix seconds; now if `None`): refuses
    /// collection from this commit on and publishes the announcement. Then runs
    /// [`Vault::cessation_resume`].
    ///
    /// # Errors
    /// `Forbidden` without the admin or dpo role; `Conflict` (`cessation_already_started`);
    /// store failure.
    pub async fn cessation_start(
        &self,
        p: &Principal,
        effective_at: Option<i64>,
    ) -> Result<CessationStatus, CoreError> {
        self.cessation_begin(p, effective_at).await?;
        self.cessation_resume(p).await
    }

    /// Checks a cessation's effective time (unix seconds; `None`: now) before anything is
    /// started or announced: now (a minute of clock skew allowed) or later, at most ten years
    /// ahead (policy §8.6).
    ///
    /// # Errors
    /// `Invalid` (`cessation_time_invalid`).
    pub fn check_cessation_time(&self, effective_at: Option<i64>) -> Result<(), CoreError> {
        let now = self.now().unix_timestamp();
        if effective_at.is_some_and(|t| t < now - 60 || t > now + 10 * 366 * 86_400) {
            return Err(CoreError::invalid(
                "effective_at",
                "cessation_time_invalid",
                "effective_at is now or later, at most ten years ahead",
            ));
        }
        Ok(())
    }

    /// The first, immediate part of [`Vault::cessation_start`]: commits `running` (collection
    /// refused from here on) and the announcement, and returns. The rest is
    /// [`Vault::cessation_resume`] (`serve` continues a running cessation every minute).
    ///
    /// # Errors
    /// As [`Vault::cessation_start`].
    pub async fn cessation_begin(
        &self,
        p: &Principal,
        effective_at: Option<i64>,
    ) -> Result<CessationStatus, CoreError> {
        Self::require_cessation_role(p)?;
        let now = self.now().unix_timestamp();
        self.check_cessation_time(effective_at)?;
        let mut tx = self.store.begin(now).await?;
        let mut c = tx.cessation().await?;
        if c.state != "none" {
            return Err(CoreError::Conflict("cessation_already_started"));
        }
        c.state = "running".into();
        c.cessation_id = Some(format!("cess-{}", uuid::Uuid::new_v4().simple()));
        c.started_by = Some(p.name.clone());
        c.started_at = Some(now);
        c.effective_at = Some(effective_at.unwrap_or(now).max(now));
        c.progress = json!({"phase": "notify", "cursor": "", "notices_queued": 0, "erased": 0, "erase_failed": 0}).to_string();
        c.updated_at = now;
        tx.put_cessation(&c).await?;
        self.publish_cessation_announcement(&mut tx, &c, now)
            .await?;
        let mut rec = self.auditor.base(&p.name, "cessation.start", now, None);
        rec.detail = Some(format!(
            "cessation={} effective_at={}",
            c.cessation_id.as_deref().unwrap_or("-"),
            c.effective_at.unwrap_or(now)
        ));
        tx.audit(rec);
        tx.commit().await?;
        self.cessation_status(p).await
    }

    /// Continues a running cessation, if one is running (`serve`'s minute tick): `None` when
    /// none is.
    ///
    /// # Errors
    /// As [`Vault::cessation_resume`].
    pub async fn cessation_tick(&self) -> Result<Option<CessationStatus>, CoreError> {
        if self.store.cessation().await?.state != "running" {
            return Ok(None);
        }
        let op = Principal::operator("cessation", self.policy());
        self.cessation_resume(&op).await.map(Some)
    }

    /// Continues a running cessation from its recorded progress (after a crash, too).
    ///
    /// # Errors
    /// `Forbidden`; `Conflict` (`cessation_not_started`); store failure.
    pub async fn cessation_resume(&self, p: &Principal) -> Result<CessationStatus, CoreError> {
        Self::require_cessation_role(p)?;
        let c = self.store.cessation().await?;
        match c.state.as_str() {
            "none" => return Err(CoreError::Conflict("cessation_not_started")),
            "done" => return self.cessation_status(p).await,
            _ => {}
        }
        let cid = c.cessation_id.clone().unwrap_or_default();
        // 1. Notices, page by page; the cursor and count commit with each page.
        loop {
            let now = self.now().unix_timestamp();
            // The page is read before the write transaction (no pool connection may be taken
            // while one is held), then the cursor is checked again under the lock.
            let seen = progress(&self.store.cessation().await?);
            if seen["phase"] != "notify" {
                break;
            }
            let cursor = seen["cursor"].as_str().unwrap_or("").to_string();
            let page = self.store.active_subjects_after(&cursor, PAGE).await?;
            let mut tx = self.store.begin(now).await?;
            let mut c = tx.cessation().await?;
            let mut prog = progress(&c);
            if prog["phase"] != "notify" || prog["cursor"] != seen["cursor"] {
                continue;
            }
            if let Some(last) = page.last() {
                let msgs: Vec<Enqueue> = page
                    .iter()
                    .map(|(s, lang)| Enqueue::to_subject(kind::CESSATION, s, &cid, lang.as_deref()))
                    .collect();
                let rows = msgs
                    .iter()
                    .map(|m| self.outbox_row(m, now))
                    .collect::<Result<Vec<_>, _>>()?;
                let added = tx.enqueue(&rows).await?;
                prog["cursor"] = json!(last.0);
                prog["notices_queued"] =
                    json!(prog["notices_queued"].as_u64().unwrap_or(0) + added);
            } else {
                prog["phase"] = json!("erase");
                prog["cursor"] = json!("");
            }
            c.progress = prog.to_string();
            c.updated_at = now;
            tx.put_cessation(&c).await?;
            tx.commit().await?;
        }
        // 2. Erasure of every active subject on ground `service_ended`, one at a time through
        // the one erasure path. Subjects are taken from the start each page: those erased
        // drop out, those that failed are skipped past with the cursor.
        let ground =
            ErasureGround::parse("service_ended").ok_or(CoreError::Conflict("internal"))?;
        let eraser = Principal::operator("cessation", self.policy());
        // The notices go out before the data they are sent with (the addresses) is erased: a
        // subject whose notice is still waiting for a retry is skipped now and erased on a
        // later resume.
        self.deliver_outbox(u64::MAX).await?;
        let mut waiting = 0u64;
        // Nothing is erased before the date the notices announced (policy §8.6): until then
        // the cessation stays `running` and `resume` (or the next call) continues it.
        let effective = self.store.cessation().await?.effective_at.unwrap_or(0);
        if self.now().unix_timestamp() < effective {
            return self.cessation_status(p).await;
        }
        loop {
            let c = self.store.cessation().await?;
            let prog = progress(&c);
            if prog["phase"] != "erase" {
                break;
            }
            let cursor = prog["cursor"].as_str().unwrap_or("").to_string();
            let page = self.store.active_subjects_after(&cursor, 200).await?;
            let mut erased = 0u64;
            let mut failed = 0u64;
            for (s, _) in &page {
                if self
                    .store
                    .outbox_unsettled(&format!("{}|subject|{s}|{cid}", kind::CESSATION))
                    .await?
                {
                    waiting += 1;
                    continue;
                }
                match self.erase_subject(&eraser, s, ground, None).await {
                    Ok(_) => erased += 1,
                    Err(CoreError::Conflict("already_erased")) => {}
                    Err(e) if e.storage_fault().is_some() => return Err(e),
                    Err(e) => {
                        warn!(error = %e, "cessation: a subject's erasure failed; it is left for resume");
                        failed += 1;
                    }
                }
            }
            let now = self.now().unix_timestamp();
            let mut tx = self.store.begin(now).await?;
            let mut c = tx.cessation().await?;
            let mut prog = progress(&c);
            prog["erased"] = json!(prog["erased"].as_u64().unwrap_or(0) + erased);
            prog["erase_failed"] = json!(prog["erase_failed"].as_u64().unwrap_or(0) + failed);
            match page.last() {
                Some(last) => prog["cursor"] = json!(last.0),
                None if waiting > 0 || prog["erase_failed"].as_u64().unwrap_or(0) > 0 => {
                    // Some are left: the next resume starts over (failures are counted anew).
                    prog["cursor"] = json!("");
                    prog["waiting_notice"] = json!(waiting);
                    prog["erase_failed"] = json!(0);
                    c.progress = prog.to_string();
                    c.updated_at = now;
                    tx.put_cessation(&c).await?;
                    tx.commit().await?;
                    break;
                }
                None => {
                    prog["phase"] = json!("done");
                    prog["waiting_notice"] = json!(0);
                    c.state = "done".into();
                    let mut rec = self.auditor.base(&p.name, "cessation.done", now, None);
                    rec.detail = Some(format!(
                        "cessation={cid} erased={} erase_failed={}",
                        prog["erased"], prog["erase_failed"]
                    ));
                    tx.audit(rec);
                }
            }
            c.progress = prog.to_string();
            c.updated_at = now;
            tx.put_cessation(&c).await?;
            tx.commit().await?;
        }
        self.cessation_status(p).await
    }

    /// Where the cessation stands.
    ///
    /// # Errors
    /// `Forbidden` without the admin, dpo or security role; store failure.
    pub async fn cessation_status(&self, p: &Principal) -> Result<CessationStatus, CoreError> {
        Self::require_office(p)?;
        let c = self.store.cessation().await?;
        let prog = progress(&c);
        let active_left = self.store.count_active_subjects().await?;
        Ok(CessationStatus {
            state: c.state.clone(),
            id: c.cessation_id.clone(),
            started_at: c.started_at,
            effective_at: c.effective_at,
            notices_queued: prog["notices_queued"].as_u64().unwrap_or(0),
            erased: prog["erased"].as_u64().unwrap_or(0),
            erase_failed: prog["erase_failed"].as_u64().unwrap_or(0),
            active_left,
            waiting_notice: prog["waiting_notice"].as_u64().unwrap_or(0),
            phase: prog["phase"].as_str().unwrap_or("none").to_string(),
        })
    }

    /// Publishes the cessation announcement (once) in `tx`.
    pub(crate) async fn publish_cessation_announcement(
        &self,
        tx: &mut WriteTx,
        c: &CessationRow,
        now: i64,
    ) -> Result<(), CoreError> {
        let contact = self.policy().incident().contact.clone();
        let n = notice_of(c, &contact, self.policy());
        let zh = notice::cessation_announcement(Lang::ZhCn, &n);
        let en = notice::cessation_announcement(Lang::En, &n);
        tx.publish_announcement(&AnnouncementRow {
            id: format!("ann-{}", uuid::Uuid::new_v4().simple()),
            kind: "cessation".into(),
            cause: c.cessation_id.clone().unwrap_or_default(),
            published_at: now,
            title_zh: zh.subject,
            body_zh: zh.body,
            title_en: en.subject,
            body_en: en.body,
        })
        .await?;
        Ok(())
    }

    /// `Err(service_ceased)` once a cessation has started (checked inside the write
    /// transaction, under the audit-head lock, so no instance collects after the start
    /// commits).
    pub(crate) async fn refuse_if_ceased(tx: &mut WriteTx) -> Result<(), CoreError> {
        if tx.collection_ceased().await? {
            Err(CoreError::Conflict("service_ceased"))
        } else {
            Ok(())
        }
    }
}
