//! Facts: what a decision needs to know about a subject, with its cache.

use crate::error::CoreError;
pub(crate) use crate::services::facts_cache::LoadedFacts;
pub(crate) use crate::services::facts_cache::ReleaseFacts;
use crate::services::facts_cache::{CachedFacts, FactsCache};
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::services::sealer::SCOPE_RESTRICTED;
use crate::values::parse_date;
use crate::values::FieldValue;
use pivault_crypto::Dek;
use pivault_domain::consent::{ConsentAction, ConsentEvent, ConsentState, GivenBy};
use pivault_domain::identifiers::IdCardNumber;
use pivault_store::Store;
use pivault_store::{ConsentRow, FieldRow, WriteTx};
use std::sync::Arc;
use time::{Date, OffsetDateTime};

pub(crate) const DOB_CATEGORY: &str = "user.demographic.date_of_birth";

pub(crate) fn consent_event(r: &ConsentRow) -> Option<ConsentEvent> {
    Some(ConsentEvent {
        seq: r.seq,
        purpose: r.purpose.clone(),
        action: ConsentAction::parse(&r.action)?,
        at: OffsetDateTime::from_unix_timestamp(r.at).ok()?,
        given_by: GivenBy::parse(&r.given_by)?,
        separate: r.separate,
        policy_version: r.policy_version.clone(),
        recipient: r.recipient.clone(),
    })
}

/// What a decision needs to know about a subject (consent state, erased flag, region, birth
/// date, and for reads its sealed fields and DEK), loaded from the store, with the decision
/// API's facts cache.
pub(crate) struct Facts {
    cache: Arc<FactsCache>,
    store: Store,
    sealer: Arc<Sealer>,
}

impl Facts {
    /// Facts over `store`, opening fields through `sealer`; spawns the cache's epoch watcher.
    pub(crate) fn new(store: Store, sealer: Arc<Sealer>) -> Self {
        Self {
            cache: FactsCache::spawn(store.clone()),
            store,
            sealer,
        }
    }

    /// Birth date from the date-of-birth field, else from a resident ID number (GB 11643).
    pub(crate) fn birth_date_of(dek: Option<&Dek>, rows: &[FieldRow]) -> Option<Date> {
        let dek = dek?;
        let mut from_id = None;
        for r in rows {
            if r.restricted_until.is_some() {
                continue;
            }
            if r.category == DOB_CATEGORY {
                if let Ok(FieldValue::Text(s)) = Sealer::open_row(dek, r) {
                    if let Some(d) = parse_date(&s) {
                        return Some(d);
                    }
                }
            } else if r.category == "user.government_id.id_card" && from_id.is_none() {
                if let Ok(FieldValue::Text(s)) = Sealer::open_row(dek, r) {
                    from_id = IdCardNumber::parse(&s).ok().map(|i| i.birth_date());
                }
            }
        }
        from_id
    }

    pub(crate) async fn consent_state(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Vec<ConsentRow>, ConsentState), CoreError> {
        let rows = self.store.consent_events(subject_id).await?;
        Ok(Self::fold_consents(rows, now))
    }

    /// [`Facts::consent_state`] inside a write transaction: the ledger read through `tx`.
    pub(crate) async fn consent_state_in(
        tx: &mut WriteTx,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Vec<ConsentRow>, ConsentState), CoreError> {
        let rows = tx.consent_events(subject_id).await?;
        Ok(Self::fold_consents(rows, now))
    }

    pub(crate) fn fold_consents(
        rows: Vec<ConsentRow>,
        now: OffsetDateTime,
    ) -> (Vec<ConsentRow>, ConsentState) {
        let events: Vec<ConsentEvent> = rows.iter().filter_map(consent_event).collect();
        let state = ConsentState::fold(&events, now);
        (rows, state)
    }

    /// Decision facts of a subject, from the facts cache when it is current (see
    /// `facts_cache`), else loaded.
    pub(crate) async fn cached(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<CachedFacts>, CoreError> {
        let stamp = self.cache.stamp();
        if let Some(hit) = self.cache.get(subject_id, stamp, now.unix_timestamp()) {
            return Ok(hit);
        }
        let f = self.load(subject_id, now).await?;
        Ok(self
            .cache
            .insert(subject_id, stamp, now.unix_timestamp(), f))
    }

    /// What a door that releases PI needs about a subject, as strict as [`Facts::load`]: its
    /// sealed fields and the facts epoch are read by one statement
    /// ([`Store::fields_at_epoch`]); the decision facts come from the cache only if they were
    /// stamped with that epoch (nothing about the subject changed since they were loaded, in
    /// any process), else they are loaded (subject row and consent ledger) and cached.
    ///
    /// One statement instead of three for a subject decided on recently (issue 16).
    ///
    /// # Errors
    /// `NotFound` for an unknown subject; store failures.
    pub(crate) async fn for_release(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<ReleaseFacts, CoreError> {
        let nowu = now.unix_timestamp();
        let gen = self.cache.local_gen();
        let (epoch, fields) = self.store.fields_at_epoch(subject_id).await?;
        let facts = match self.cache.get_at(subject_id, epoch, gen, nowu) {
            Some(hit) => hit,
            None => {
                let loaded = self.load_with(subject_id, now, &fields).await?;
                self.cache.insert_at(subject_id, epoch, gen, nowu, loaded)
            }
        };
        let scope = if facts.erased {
            // Erased, possibly through another instance: drop this instance's copy of the
            // shredded DEK.
            self.sealer.forget_scope(subject_id, SCOPE_PRIMARY);
            SCOPE_RESTRICTED
        } else {
            SCOPE_PRIMARY
        };
        let dek = self.sealer.dek(subject_id, scope).await?;
        Ok(ReleaseFacts { facts, fields, dek })
    }

    /// Forgets cached decision facts of `subject_id` after a local change to them.
    pub(crate) fn changed(&self, subject_id: &str) {
        self.cache.invalidate(subject_id);
    }

    /// Everything a decision needs about a subject, loaded once: its row, consent state at
    /// `now`, the DEK of the scope its fields are under, and its birth date (from its fields).
    pub(crate) async fn load(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<LoadedFacts, CoreError> {
        let fields = self.store.fields(subject_id).await?;
        self.load_with(subject_id, now, &fields).await
    }

    /// [`Facts::load`] with the subject's fields already read.
    async fn load_with(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
        fields: &[FieldRow],
    ) -> Result<LoadedFacts, CoreError> {
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        let erased = subject.status == "erased";
        if erased {
            // Erased, possibly through another instance: drop this instance's copy of the
            // shredded DEK.
            self.sealer.forget_scope(subject_id, SCOPE_PRIMARY);
        }
        let (rows, consent) = self.consent_state(subject_id, now).await?;
        let next_consent_at = rows
            .iter()
            .map(|r| r.at)
            .filter(|&at| at > now.unix_timestamp())
            .min();
        let dek = self
            .sealer
            .dek(
                subject_id,
                if erased {
                    SCOPE_RESTRICTED
                } else {
                    SCOPE_PRIMARY
                },
            )
            .await?;
        let birth_date = if erased {
            None
        } else {
            Self::birth_date_of(dek.as_deref(), fields)
        };
        Ok(LoadedFacts {
            next_consent_at,
            erased,
            locked: subject.lock_case.is_some(),
            home_region: subject.home_region,
            consent,
            dek,
            birth_date,
        })
    }
}
