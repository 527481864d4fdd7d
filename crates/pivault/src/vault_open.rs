//! Opening the vault from the configuration: the policy, the staff policy, the database and
//! the master key (refused with exit status 4 when it is not the database's).

use crate::config::Config;
use anyhow::{bail, Context, Result};
#[cfg(feature = "testing")]
use pivault_core::dsr::Fault;
use pivault_core::keycheck::{self, KeyState};
use pivault_core::{CoreError, Vault};
use pivault_crypto::{KeyRing, MasterSecret};
use pivault_domain::clock::SystemClock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::path::Path;
use std::sync::Arc;

/// What a command runs with: the effective configuration (and, in test builds, the injected
/// fault).
pub struct Ctx {
    /// The effective configuration.
    pub cfg: Config,
    /// `--dsr-fault` / `PIVAULT_DSR_FAULT` (builds with the `testing` feature only).
    #[cfg(feature = "testing")]
    pub dsr_fault: Option<String>,
    /// `PIVAULT_FAKE_NOW`: the clock stopped at this unix time (testing builds only).
    #[cfg(feature = "testing")]
    pub fake_now: Option<i64>,
}

/// Opens the database named by `database_url`, applying migrations, and asks it for
/// `audit_shards` audit shards when that is set (the vault makes them when it opens; unset,
/// the store's default: 1).
///
/// # Errors
/// Connection or migration failure, naming where the URL was set.
pub async fn open_store(cfg: &Config) -> Result<Store> {
    let store = Store::connect(&cfg.database_url.value)
        .await
        .with_context(|| {
            format!(
                "opening the database {} (database_url from {})",
                crate::config::redact_url_password(&cfg.database_url.value),
                cfg.database_url.origin()
            )
        })?;
    if let Some(n) = &cfg.audit_shards {
        // 1..=1024, checked by the configuration.
        store.want_audit_shards(u32::try_from(n.value).unwrap_or(1_024));
    }
    Ok(store)
}

/// Reads, parses and validates the policy file at `path`, with the texts of its published
/// versions (see [`attach_texts`]).
///
/// # Errors
/// The file cannot be read, is invalid (every problem, as `file:line:col`), or a version's
/// text cannot be read or is not the one the policy pins.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let src = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy {}", path.display()))?;
    match Policy::parse(&src) {
        Ok(p) => attach_texts(p, path),
        Err(e) => bail!(
            "policy {} is invalid:\n{}",
            path.display(),
            e.render(&path.display().to_string())
        ),
    }
}

/// Attaches the text of every `[[policy_version]]` that names one (`text`, a path relative to
/// the policy file at `path`; policy §X).
///
/// # Errors
/// A text file cannot be read, or its SHA-256 is not the `text_sha256` the policy pins.
pub fn attach_texts(mut policy: Policy, path: &Path) -> Result<Policy> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let texts: Vec<(String, String)> = policy
        .versions()
        .iter()
        .filter_map(|v| v.text_path.clone().map(|t| (v.version.clone(), t)))
        .collect();
    for (version, rel) in texts {
        let file = dir.join(&rel);
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "reading the text of policy version {version} ({})",
                file.display()
            )
        })?;
        policy = policy
            .with_version_text(&version, text)
            .map_err(|e| anyhow::anyhow!("policy {}: {e}", path.display()))?;
    }
    Ok(policy)
}

/// Exit status of a command refused because of its master key (nothing was written).
pub const EXIT_KEY_REFUSED: u8 = 4;

fn key_refused(code: &'static str, message: String) -> anyhow::Error {
    CoreError::KeyRefused { code, message }.into()
}

/// Warns (log and stderr) when the master key file can be read or written by its group or by
/// others: whoever reads it reads every field (GB/T 35273 §6.3; policy §8). Not a refusal: a
/// deployment may hand the file over through a group on purpose.
fn warn_if_shared(path: &Path, m: &std::fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
                "the master key file is open to its group or others; chmod 600 it");
            eprintln!(
                "WARNING: the master key file {} has mode {mode:o}: its group or others can read it. Run chmod 600 on it.",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, m);
}

/// Loads the master key. A missing key file is generated (development only) when the
/// database is new and empty; on any other database it is refused (`master_key_missing`).
/// A key file its group or others can read is warned about ([`warn_if_shared`]).
fn load_keys(cfg: &Config, state: KeyState) -> Result<KeyRing> {
    let suite = cfg.suite.value;
    let path = &cfg.master_key_file.value;
    let exists = match std::fs::metadata(path) {
        Ok(m) => {
            warn_if_shared(path, &m);
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(key_refused(
                keycheck::MASTER_KEY_UNREADABLE,
                format!("master key file {}: {e}", path.display()),
            ))
        }
    };
    if exists {
        let master = MasterSecret::load(path)
            .map_err(|e| key_refused(keycheck::MASTER_KEY_UNREADABLE, e.to_string()))?;
        return Ok(KeyRing::new(master, suite));
    }
    if state != KeyState::New {
        return Err(key_refused(
            keycheck::MASTER_KEY_MISSING,
            format!(
                "no master key file at {}, and this database is not new (it holds data{}); a \
                 development key is made only for a new, empty database. Refusing to open it, \
                 nothing was written. Point PIVAULT_MASTER_KEY_FILE at the database's key",
                path.display(),
                if state == KeyState::Checked {
                    " and records its key's check value"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (master, created) = MasterSecret::load_or_create(path)
        .with_context(|| format!("master key file {}", path.display()))?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "generated a DEVELOPMENT master key (mode 0600). It is for development only: in \
             production provision the key file from a KMS/HSM and set PIVAULT_MASTER_KEY_FILE. \
             Losing it makes every field unreadable."
        );
        eprintln!(
            "WARNING: generated a development-only master key at {} (mode 0600). Do not use it in production.",
            path.display()
        );
    }
    Ok(KeyRing::new(master, suite))
}

/// Opens the database, then the master key: refused (exit 4) when it is missing on a
/// database that is not new, or does not match (checked in [`Vault::new`] before any write).
pub async fn open_vault(ctx: &Ctx) -> Result<Vault> {
    let cfg = &ctx.cfg;
    let policy = load_policy(&cfg.policy.value)?;
    // Checked before the database is touched: a webhook for a recipient the policy does not
    // declare is a configuration error.
    for (id, url) in &cfg.recipient_webhooks {
        if policy.recipient(id).is_none() {
            bail!(
                "configuration: recipient_webhooks: unknown recipient id {id:?} (from {}): \
                 the policy {} declares no [[recipient]] with this id",
                url.origin(),
                cfg.policy.value.display()
            );
        }
    }
    let staff_path = &cfg.staff_policy.value;
    let staff_src = std::fs::read_to_string(staff_path)
        .with_context(|| format!("reading staff policy {}", staff_path.display()))?;
    let staff = match pivault_staff::StaffPolicy::load(
        &staff_src,
        &staff_path.display().to_string(),
        &policy,
    ) {
        Ok(s) => s,
        Err(e) => bail!("staff policy {} is invalid:\n{e}", staff_path.display()),
    };
    let store = open_store(cfg).await?;
    let keys = load_keys(cfg, keycheck::key_state(&store).await?)?;
    #[allow(unused_mut)]
    let mut clock: Arc<dyn pivault_domain::clock::Clock> = Arc::new(SystemClock);
    #[cfg(feature = "testing")]
    if let Some(at) = ctx.fake_now {
        let at = time::OffsetDateTime::from_unix_timestamp(at)
            .context("PIVAULT_FAKE_NOW is not a unix time")?;
        clock = Arc::new(pivault_domain::clock::FixedClock::new(at));
    }
    let mut vault = Vault::new(store, keys, policy, clock)
        .await?
        .with_staff_policy(staff);
    let email = cfg
        .smtp_url
        .as_ref()
        .map(|u| {
            pivault_notify::SmtpConfig::from_url(&u.value)
                .and_then(pivault_notify::SmtpNotifier::new)
                .map_err(|e| anyhow::anyhow!("smtp_url (from {}): {e}", u.origin()))
        })
        .transpose()?;
    let sms = cfg
        .sms_webhook_url
        .as_ref()
        .map(|u| {
            pivault_notify::SmsWebhook::new(pivault_notify::SmsConfig {
                url: u.value.clone(),
                bearer_token: cfg.sms_webhook_token.as_ref().map(|t| t.value.clone()),
                timeout: std::time::Duration::from_secs(10),
            })
            .map_err(|e| anyhow::anyhow!("sms_webhook_url (from {}): {e}", u.origin()))
        })
        .transpose()?;
    let push = cfg
        .push_webhook_url
        .as_ref()
        .map(|u| {
            pivault_notify::PushWebhook::new(pivault_notify::PushConfig {
                url: u.value.clone(),
                bearer_token: cfg.push_webhook_token.as_ref().map(|t| t.value.clone()),
                timeout: std::time::Duration::from_secs(10),
            })
            .map_err(|e| anyhow::anyhow!("push_webhook_url (from {}): {e}", u.origin()))
        })
        .transpose()?;
    let any_channel = email.is_some() || sms.is_some() || push.is_some();
    let mut notifiers = pivault_notify::Notifiers::new(email, sms);
    if let Some(push) = push {
        notifiers = notifiers.with_push(push);
    }
    let mut sender = pivault_server::dsr::NotifySender::new(notifiers);
    for (id, url) in &cfg.recipient_webhooks {
        let hook =
            pivault_notify::SignedWebhook::new(&url.value, std::time::Duration::from_secs(10))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "configuration: recipient_webhooks.{id} (from {}): {e}",
                        url.origin()
                    )
                })?;
        sender = sender.with_recipient_webhook(id, hook);
    }
    if any_channel || !cfg.recipient_webhooks.is_empty() {
        vault = vault.with_code_sender(Arc::new(sender));
    }
    #[cfg(feature = "testing")]
    if let Some(f) = &ctx.dsr_fault {
        let fault = Fault::parse(f).with_context(|| {
            format!("PIVAULT_DSR_FAULT {f:?}: use fail:STEP, halt:STEP or abort:STEP")
        })?;
        tracing::warn!(fault = %f, "a fault is injected into data subject request execution");
        vault.inject_fault(Some(fault));
    }
    Ok(vault)
}
