//! The policy's version history (`[[policy_version]]`, policy §X "Updates to this Privacy
//! Policy"): each published version with its date, the text it was published with, and the
//! changes it made, each marked material or not. A material change of a purpose, or of a
//! category the purpose uses, is a change of the purpose or manner of processing: consent given
//! before it no longer covers the processing and must be given again (PIPL Art. 14 para. 2).

use sha2::{Digest, Sha256};
use time::Date;

use super::Policy;

/// One change a policy version made (`[[policy_version.change]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    /// One line saying what changed, shown to subjects in the policy-change notice.
    pub summary: String,
    /// Whether the change is material: it changes the purpose, manner or scope of processing
    /// of the purposes and categories it names, so consent given before it must be given again
    /// (PIPL Art. 14 para. 2; policy §X).
    pub material: bool,
    /// Purpose ids the change touches (each declared in the policy), in file order.
    pub purposes: Vec<String>,
    /// Category keys the change touches (each declared in the policy), in file order. A
    /// change touches every purpose that allows one of them.
    pub categories: Vec<String>,
}

/// One published version of the policy (`[[policy_version]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// The version label consents and audit entries record, e.g. `2024-12-04`.
    pub version: String,
    /// The day it was published (and took effect, policy §X: "effective immediately when it
    /// is published").
    pub published: Date,
    /// Where its text is, relative to the policy file (e.g. `text/2024-12-04.txt`); `None`
    /// when the text is not on file.
    pub text_path: Option<String>,
    /// Hex SHA-256 (64 lower-case characters) of the text's bytes; present exactly when
    /// `text_path` is.
    pub text_sha256: Option<String>,
    /// The text itself, when the caller attached it with [`Policy::with_version_text`]
    /// (parsing reads no files).
    pub text: Option<String>,
    /// The changes this version made against the one before, in file order.
    pub changes: Vec<PolicyChange>,
}

impl PolicyVersion {
    /// Hex SHA-256 of the version's record: its label, publication date, text hash and
    /// changes (length-prefixed, so no two records share an encoding). It does not depend on
    /// whether the text was attached, only on the hash the policy file pins, so a published
    /// version keeps its hash whoever loads it; the store refuses a version label whose hash
    /// changed (a published version is never rewritten, policy §X).
    #[must_use]
    pub fn record_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut put = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        put("pivault.policy-version/1");
        put(&self.version);
        put(&self.published.to_string());
        put(self.text_sha256.as_deref().unwrap_or("-"));
        for c in &self.changes {
            put("change");
            put(&c.summary);
            put(if c.material { "material" } else { "minor" });
            put(&c.purposes.join("\n"));
            put(&c.categories.join("\n"));
        }
        hex::encode(h.finalize())
    }

    /// Whether any change of this version is material.
    #[must_use]
    pub fn has_material_change(&self) -> bool {
        self.changes.iter().any(|c| c.material)
    }
}

/// Why [`Policy::diff`] gave no list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// The version is not in the policy's history.
    #[error("policy version `{0}` is not in the policy's history")]
    UnknownVersion(String),
    /// The first version is not older than the second.
    #[error("policy version `{old}` is not older than `{new}`")]
    NotOlder {
        /// The first version asked for.
        old: String,
        /// The second version asked for.
        new: String,
    },
}

/// A change with the version that made it.
pub type VersionChange<'p> = (&'p PolicyVersion, &'p PolicyChange);

impl Policy {
    /// The version history, oldest first (`[[policy_version]]`; empty when the file has
    /// none). When not empty, the last entry is [`Policy::version`] and publication dates
    /// strictly increase.
    #[must_use]
    pub fn versions(&self) -> &[PolicyVersion] {
        &self.versions
    }

    /// The history entry of `version`, if the history has it.
    #[must_use]
    pub fn policy_version(&self, version: &str) -> Option<&PolicyVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    fn version_index(&self, version: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.version == version)
    }

    /// Attaches the text of `version` (read by the caller from [`PolicyVersion::text_path`],
    /// relative to the policy file). Parsing reads no files.
    ///
    /// # Errors
    /// A sentence when the history has no such version, the version declares no text, or the
    /// text's SHA-256 is not the `text_sha256` the policy file pins (an edited text is a new
    /// version, policy §X).
    pub fn with_version_text(mut self, version: &str, text: String) -> Result<Policy, String> {
        let Some(v) = self.versions.iter_mut().find(|v| v.version == version) else {
            return Err(format!("policy version `{version}` is not in the history"));
        };
        let Some(want) = v.text_sha256.as_deref() else {
            return Err(format!("policy version `{version}` declares no text"));
        };
        let got = hex::encode(Sha256::digest(text.as_bytes()));
        if got != want {
            return Err(format!(
                "the text of policy version `{version}` has SHA-256 {got}, but the policy pins {want}: a published text is never edited (publish a new version)"
            ));
        }
        v.text = Some(text);
        Ok(self)
    }

    /// Whether `change` touches `purpose`: it names the purpose, or a category the purpose
    /// allows.
    #[must_use]
    pub fn change_touches(&self, change: &PolicyChange, purpose: &str) -> bool {
        if change.purposes.iter().any(|p| p == purpose) {
            return true;
        }
        self.purpose(purpose)
            .is_some_and(|p| change.categories.iter().any(|c| p.allows(c)))
    }

    /// The latest material change touching `purpose` (see [`Policy::change_touches`]), with
    /// its version; `None` when no version changed the purpose materially.
    #[must_use]
    pub fn last_material_change(&self, purpose: &str) -> Option<VersionChange<'_>> {
        self.versions.iter().rev().find_map(|v| {
            v.changes
                .iter()
                .rev()
                .find(|c| c.material && self.change_touches(c, purpose))
                .map(|c| (v, c))
        })
    }

    /// The material change that outdates a consent to `purpose` given under policy version
    /// `given_under`: the purpose's [last material change](Policy::last_material_change),
    /// when its version is later than `given_under`. A `given_under` the history does not
    /// know is treated as older than every version (it cannot be shown to cover the change).
    /// PIPL Art. 14 para. 2: a change of purpose or manner of processing needs consent again;
    /// policy §X.
    #[must_use]
    pub fn consent_outdated_by(
        &self,
        purpose: &str,
        given_under: &str,
    ) -> Option<VersionChange<'_>> {
        let (v, c) = self.last_material_change(purpose)?;
        let changed_at = self.version_index(&v.version)?;
        match self.version_index(given_under) {
            Some(i) if i >= changed_at => None,
            _ => Some((v, c)),
        }
    }

    /// The changes made after version `old` up to and including version `new`, oldest
    /// first; empty when `old == new`.
    ///
    /// # Errors
    /// [`DiffError::UnknownVersion`] when either is not in the history;
    /// [`DiffError::NotOlder`] when `old` comes after `new`.
    pub fn diff(&self, old: &str, new: &str) -> Result<Vec<VersionChange<'_>>, DiffError> {
        let i = self
            .version_index(old)
            .ok_or_else(|| DiffError::UnknownVersion(old.to_string()))?;
        let j = self
            .version_index(new)
            .ok_or_else(|| DiffError::UnknownVersion(new.to_string()))?;
        if i > j {
            return Err(DiffError::NotOlder {
                old: old.to_string(),
                new: new.to_string(),
            });
        }
        Ok(self.versions[i + 1..=j]
            .iter()
            .flat_map(|v| v.changes.iter().map(move |c| (v, c)))
            .collect())
    }

    /// Whether a consent given under `given_under` predates `version` (it is earlier in the
    /// history, or the history does not know it).
    #[must_use]
    pub fn is_older_version(&self, given_under: &str, version: &str) -> bool {
        match (self.version_index(given_under), self.version_index(version)) {
            (Some(a), Some(b)) => a < b,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}
