//! `pivault serve`: the HTTP(S) API, and its orderly stop.
//!
//! Lifecycle: the TLS files are loaded first (a bad path or key is a startup error before the
//! database is touched), then the vault is opened, the signal handlers are installed and the
//! listener bound. On SIGTERM or Ctrl-C the server stops accepting, drains requests in flight
//! for at most `shutdown_timeout_secs`, flushes the audit group commit (every entry handed to
//! it is committed and acknowledged) and closes the database, then exits 0.

use crate::vault_open::{open_vault, Ctx};
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use std::time::Duration;

/// Resolves on SIGTERM or SIGINT (Ctrl-C); the handlers are installed when this is called, so
/// a signal that arrives while the vault is still opening is not lost.
fn shutdown_signal() -> Result<impl std::future::Future<Output = &'static str> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        })
    }
}

/// Runs `pivault serve` until a shutdown signal; its exit status.
pub async fn run_serve(ctx: &Ctx) -> Result<i32> {
    let cfg = &ctx.cfg;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(
            pivault_server::load_tls(&cert.value, &key.value).map_err(|e| {
                anyhow!(
                    "{e} (tls_cert from {}, tls_key from {})",
                    cert.origin(),
                    key.origin()
                )
            })?,
        ),
        _ => None,
    };
    let signal = shutdown_signal()?;
    let vault = Arc::new(open_vault(ctx).await?);
    // Overdue and near-due requests are warned about in the log (dsr_scan_secs).
    let every = Duration::from_secs(cfg.dsr_scan_secs.value.max(1));
    let scan_vault = Arc::clone(&vault);
    let scan = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = scan_vault.dsr_due_scan().await {
                tracing::warn!(error = %e, "overdue request scan failed");
            }
        }
    });
    // Requests left part done by an instance that died mid-run resume by themselves: at start
    // every one (this instance runs none yet), then each minute those with no change for 5
    // minutes (another instance died). See `Vault::dsr_resume_stalled` for what is left alone.
    let resume_vault = Arc::clone(&vault);
    let resume = tokio::spawn(async move {
        let mut idle = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = resume_vault.dsr_resume_stalled("serve:resume", idle).await {
                tracing::warn!(error = %e, "scan for stalled requests failed");
            }
            idle = 300;
        }
    });
    // The scheduled retention sweep (sweep_interval_secs; 0: off). The lease makes another
    // instance's tick a no-op while one sweeps.
    let sweep = (cfg.sweep_interval_secs.value > 0).then(|| {
        let every = Duration::from_secs(cfg.sweep_interval_secs.value);
        let v = Arc::clone(&vault);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await; // the first tick is immediate: wait one period after start
            loop {
                tick.tick().await;
                let opts = pivault_core::SweepOptions {
                    actor: "serve:sweep".into(),
                    ..pivault_core::SweepOptions::default()
                };
                match v.sweep(&opts, &|_| {}).await {
                    Ok(r) => tracing::info!(
                        records = r.total(),
                        fields_deleted = r.fields_deleted,
                        "retention sweep done"
                    ),
                    Err(pivault_core::CoreError::Conflict("sweep_busy")) => {
                        tracing::debug!("retention sweep skipped: another instance sweeps");
                    }
                    Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
                }
            }
        })
    });
    // Signed checkpoints of the audit log (checkpoint_interval_secs; 0: off; issue 15): a tick
    // signs one when the log grew since the newest (the first tick, at start, too), so a proof
    // asked for later names a checkpoint at most one period old. Instances sharing a database
    // each sign; a checkpoint signed twice at one size is harmless.
    let checkpoints = (cfg.checkpoint_interval_secs.value > 0).then(|| {
        let every = Duration::from_secs(cfg.checkpoint_interval_secs.value);
        let v = Arc::clone(&vault);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = None;
            loop {
                tick.tick().await;
                match v.sign_checkpoint(true).await {
                    Ok(c) if last != Some(c.id) => {
                        last = Some(c.id);
                        tracing::debug!(
                            checkpoint = c.id,
                            size = c.size,
                            "audit checkpoint signed"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        code = crate::incident_cmd::code_of(&e),
                        error = %e,
                        "signing the audit checkpoint failed; retried at the next tick"
                    ),
                }
            }
        })
    });
    // Outbox delivery (outbox_workers tasks): each delivers what is due, then sleeps until a
    // commit enqueues something or half a second passes. Leases keep tasks (and instances)
    // from sending one message twice; a task stopped mid-batch leaves its lease to run out.
    let workers: Vec<_> = (0..cfg.outbox_workers.value)
        .map(|worker| {
            let v = Arc::clone(&vault);
            tokio::spawn(async move {
                loop {
                    match v.deliver_outbox(256).await {
                        // A run that settled something goes on at once; one that only left
                        // messages for a retry (or found none due) waits.
                        Ok(r) if r.processed > r.retrying => tracing::debug!(
                            worker,
                            processed = r.processed,
                            delivered = r.delivered,
                            retrying = r.retrying,
                            failed = r.failed,
                            "outbox delivery"
                        ),
                        Ok(_) => v.outbox_wait(Duration::from_millis(500)).await,
                        Err(e) => {
                            tracing::warn!(worker, code = crate::incident_cmd::code_of(&e), error = %e, "outbox delivery failed");
                            v.outbox_wait(Duration::from_millis(500)).await;
                        }
                    }
                }
            })
        })
        .collect();
    // Incidents past a reporting deadline and not reported (policy §8.4): a gauge and a warning
    // per incident id, every minute.
    let overdue_vault = Arc::clone(&vault);
    let overdue = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match overdue_vault.overdue_reports().await {
                Ok(ids) => {
                    overdue_vault.metrics().incident_reports_overdue(ids.len());
                    for id in &ids {
                        tracing::warn!(incident = %id, "incident report overdue: a reporting deadline has passed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "overdue incident report scan failed"),
            }
            // A running service cessation continues (its effective date came, notices went
            // out, or the instance that started it died).
            if let Err(e) = overdue_vault.cessation_tick().await {
                tracing::warn!(error = %e, "cessation: continuing it failed; retried in a minute");
            }
        }
    });
    let bind = &cfg.bind.value;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind} (bind from {})", cfg.bind.origin()))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, policy = vault.policy().version(), "pivault serving");
    eprintln!("pivault listening on {scheme}://{addr}");
    let (tx, rx) = tokio::sync::oneshot::channel::<&'static str>();
    let shutdown = async move {
        let _ = rx.await;
    };
    let signals = tokio::spawn(async move {
        let which = signal.await;
        let _ = tx.send(which);
        which
    });
    let opts = pivault_server::ServeOptions {
        tls,
        drain_timeout: Duration::from_secs(cfg.shutdown_timeout_secs.value),
    };
    let drained = pivault_server::serve_with(
        listener,
        pivault_server::AppState {
            vault: Arc::clone(&vault),
        },
        opts,
        shutdown,
    )
    .await?;
    let which = signals.await.unwrap_or("signal");
    scan.abort();
    resume.abort();
    overdue.abort();
    for w in &workers {
        w.abort();
    }
    if let Some(s) = sweep {
        s.abort();
    }
    if let Some(c) = checkpoints {
        c.abort();
    }
    vault.shutdown().await;
    tracing::info!(
        signal = which,
        connections_at_shutdown = drained.open_at_shutdown,
        drained = drained.complete,
        "pivault stopped: requests drained, audit log flushed, database closed"
    );
    eprintln!(
        "pivault stopped on {which}: {}",
        if drained.complete {
            "requests drained, audit log flushed"
        } else {
            "drain timeout reached (unfinished requests got no answer), audit log flushed"
        }
    );
    Ok(0)
}
