//! `pivault incident …`, `pivault outbox …`, `pivault cessation …` and `pivault misuse …`:
//! security incidents (policy §8.3, §8.4; PIPL Art. 57), the outbox of every message pivault
//! sends, service cessation (§8.6) and misuse locks (§8.7). Issue 13.
//!
//! Every command runs as the CLI operator (who holds every role) and prints JSON on stdout.
//! A refused step prints `error: CODE: …` on stderr with the stable code: exit 2 for bad input
//! (`Invalid`: a malformed time, an unknown category…), 3 for a conflict with the state
//! (`incident_closed`, `cessation_already_started`, `service_ceased`…), 1 for the rest
//! (`incident_not_found`, `role_required`, storage).

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use pivault_core::{CoreError, DeliveryReport, IncidentInput, IncidentScope, Principal, Vault};
use pivault_domain::notice::Lang;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// An instant: RFC 3339 (`2024-05-01T08:00:00Z`) or unix seconds.
fn parse_time(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map_err(|_| format!("{s:?}: unix seconds out of range"));
    }
    pivault_core::values::parse_timestamp(t)
        .map_err(|_| format!("{s:?} is neither RFC 3339 nor unix seconds"))
}

/// The `incident` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum IncidentCmd {
    /// Open an incident from the facts known (free text must hold no PI).
    Open {
        /// The IncidentInput as JSON (times in unix seconds) instead of the flags.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["severity", "what", "occurred_at", "discovered_at"])]
        from_file: Option<PathBuf>,
        /// especially_major, major, relatively_major or general.
        #[arg(long, required_unless_present = "from_file")]
        severity: Option<String>,
        /// What happened.
        #[arg(long, required_unless_present = "from_file")]
        what: Option<String>,
        /// When it happened: RFC 3339 or unix seconds.
        #[arg(long, value_parser = parse_time, required_unless_present = "from_file")]
        occurred_at: Option<i64>,
        /// When it was discovered: RFC 3339 or unix seconds.
        #[arg(long, value_parser = parse_time, required_unless_present = "from_file")]
        discovered_at: Option<i64>,
        /// A category key affected (repeatable).
        #[arg(long = "category")]
        categories: Vec<String>,
        /// A system affected (repeatable).
        #[arg(long = "system")]
        systems: Vec<String>,
        /// The cause.
        #[arg(long, default_value = "")]
        cause: String,
        /// Possible impact.
        #[arg(long, default_value = "")]
        impact: String,
        /// Measures taken.
        #[arg(long, default_value = "")]
        measures_taken: String,
        /// Measures planned.
        #[arg(long, default_value = "")]
        measures_planned: String,
        /// What people can do themselves.
        #[arg(long, default_value = "")]
        self_help: String,
        /// Remedies offered.
        #[arg(long, default_value = "")]
        remedies: String,
    },
    /// Compute the affected subjects from the audit log (and the store with --store).
    Scope {
        /// Incident id.
        id: String,
        /// Window start: RFC 3339 or unix seconds.
        #[arg(long, value_parser = parse_time)]
        from: i64,
        /// Window end: RFC 3339 or unix seconds.
        #[arg(long, value_parser = parse_time)]
        to: i64,
        /// A compromised API key id (repeatable).
        #[arg(long = "key")]
        keys: Vec<String>,
        /// A compromised principal (repeatable).
        #[arg(long = "principal")]
        principals: Vec<String>,
        /// Only this category counts (repeatable).
        #[arg(long = "category")]
        categories: Vec<String>,
        /// The store itself was exposed: every holder of the categories is affected.
        #[arg(long)]
        store: bool,
    },
    /// Queue one notice per affected subject (or publish only the announcement above the
    /// policy's threshold). Idempotent.
    Notify {
        /// Incident id.
        id: String,
    },
    /// The regulator report.
    Report {
        /// Incident id.
        id: String,
        /// json or html (printable).
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// Language of the HTML report: zh-CN or en.
        #[arg(long, default_value = "zh-CN")]
        lang: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Record that the report was made (first report time, timeline entry).
        #[arg(long)]
        mark: bool,
    },
    /// Close an incident (notices already queued are still delivered).
    Close {
        /// Incident id.
        id: String,
    },
    /// Every incident, newest first.
    List,
    /// One incident with its counts.
    Show {
        /// Incident id.
        id: String,
    },
    /// The affected subjects' ids, in id order.
    Subjects {
        /// Incident id.
        id: String,
        /// Start after this subject id.
        #[arg(long, default_value = "")]
        after: String,
        /// At most this many (1-10000).
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
}

/// Format of `incident report`.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ReportFormat {
    /// The machine form.
    Json,
    /// A self-contained printable HTML document.
    Html,
}

/// The `outbox` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum OutboxCmd {
    /// Deliver every message due, with concurrent workers, until none is due; print the
    /// summed report.
    Deliver {
        /// Messages per worker run.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        max: u64,
        /// Concurrent workers (1-64).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
        workers: u64,
    },
    /// Messages counted by state.
    Status,
    /// One message and its attempts (no address, no text).
    Show {
        /// Outbox id.
        id: String,
    },
    /// Render the letters waiting to be printed into one HTML file and mark them printed.
    /// The file holds names and postal addresses.
    Letters {
        /// The HTML file.
        #[arg(long)]
        out: PathBuf,
        /// At most this many letters.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
    },
}

/// The `cessation` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum CessationCmd {
    /// Stop collection now, announce it, notify everyone and erase (resumable).
    Start {
        /// When the service ends: RFC 3339 or unix seconds (default: now).
        #[arg(long, value_parser = parse_time)]
        effective_at: Option<i64>,
    },
    /// Where the cessation stands.
    Status,
    /// Continue a running cessation (after a crash).
    Resume,
}

/// The `misuse` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum MisuseCmd {
    /// Security cases, newest first (open ones unless --all).
    Cases {
        /// Include released cases.
        #[arg(long)]
        all: bool,
    },
    /// One case with its access history.
    Show {
        /// Case id.
        case: String,
    },
    /// Release a case: its subject is unlocked.
    Release {
        /// Case id.
        case: String,
    },
}

/// The stable code of a core error (as the API names it), for stderr and logs.
pub(crate) fn code_of(e: &CoreError) -> String {
    match e {
        CoreError::Forbidden { code, .. }
        | CoreError::KeyRefused { code, .. }
        | CoreError::Invalid { code, .. }
        | CoreError::KeyRejected { code, .. } => (*code).to_string(),
        CoreError::Conflict(code) => (*code).to_string(),
        CoreError::NotFound(what) => format!("{what}_not_found"),
        CoreError::Denied(d) => d.code.to_string(),
        CoreError::Unauthenticated => "unauthenticated".into(),
        CoreError::RateLimited { .. } => "rate_limited".into(),
        _ => "internal".into(),
    }
}

/// Prints a refused step as `error: CODE: message`; its exit status (see the module doc).
fn refused(e: CoreError) -> Result<i32> {
    let code = code_of(&e);
    let status = match &e {
        CoreError::Invalid { field, reason, .. } => {
            eprintln!("error: {code}: {field}: {reason}");
            return Ok(2);
        }
        CoreError::Conflict(_) => 3,
        CoreError::Forbidden { message, .. } => {
            eprintln!("error: {code}: {message}");
            return Ok(1);
        }
        CoreError::NotFound(_) => 1,
        _ => return Err(e.into()),
    };
    let sentence = pivault_domain::Code::parse(&code)
        .map_or_else(|| e.to_string(), |c| c.description().to_string());
    eprintln!("error: {code}: {sentence}");
    Ok(status)
}

fn print_json<T: Serialize>(v: &T) -> Result<i32> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(0)
}

/// `Ok(value)` printed as JSON, or the refusal.
fn out<T: Serialize>(r: Result<T, CoreError>) -> Result<i32> {
    match r {
        Ok(v) => print_json(&v),
        Err(e) => refused(e),
    }
}

/// Runs one `incident` subcommand.
pub(crate) async fn run_incident(vault: Vault, cmd: IncidentCmd) -> Result<i32> {
    let p = Principal::operator("incident", vault.policy());
    match cmd {
        IncidentCmd::Open {
            from_file,
            severity,
            what,
            occurred_at,
            discovered_at,
            categories,
            systems,
            cause,
            impact,
            measures_taken,
            measures_planned,
            self_help,
            remedies,
        } => {
            let input = match from_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    match serde_json::from_str::<IncidentInput>(&text) {
                        Ok(i) => i,
                        Err(e) => {
                            eprintln!("error: incident_input_malformed: {}: {e}", path.display());
                            return Ok(2);
                        }
                    }
                }
                None => IncidentInput {
                    severity: severity.unwrap_or_default(),
                    what_happened: what.unwrap_or_default(),
                    occurred_at: occurred_at.unwrap_or_default(),
                    discovered_at: discovered_at.unwrap_or_default(),
                    categories,
                    systems,
                    cause,
                    possible_impact: impact,
                    measures_taken,
                    measures_planned,
                    self_help,
                    remedies,
                },
            };
            out(vault.open_incident(&p, &input).await)
        }
        IncidentCmd::Scope {
            id,
            from,
            to,
            keys,
            principals,
            categories,
            store,
        } => {
            let scope = IncidentScope {
                from,
                to,
                keys,
                principals,
                categories,
                store,
            };
            out(vault.scope_incident(&p, &id, &scope).await)
        }
        IncidentCmd::Notify { id } => out(vault.notify_incident(&p, &id).await),
        IncidentCmd::Report {
            id,
            format,
            lang,
            out: file,
            mark,
        } => {
            let Some(lang) = Lang::parse(&lang) else {
                eprintln!("error: lang_unknown: --lang is zh-CN or en");
                return Ok(2);
            };
            let r = match vault.report_incident(&p, &id, mark).await {
                Ok(r) => r,
                Err(e) => return refused(e),
            };
            let text = match format {
                ReportFormat::Json => {
                    let mut s = serde_json::to_string_pretty(&r)?;
                    s.push('\n');
                    s
                }
                ReportFormat::Html => pivault_domain::incident::render_report_html(&r, lang),
            };
            match file {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("report of {id} written to {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(0)
        }
        IncidentCmd::Close { id } => out(vault.close_incident(&p, &id).await),
        IncidentCmd::List => out(vault.incidents(&p).await),
        IncidentCmd::Show { id } => out(vault.incident(&p, &id).await),
        IncidentCmd::Subjects { id, after, limit } => out(vault
            .incident_subjects(&p, &id, &after, limit)
            .await
            .map(|rows| {
                rows.into_iter()
                    .map(|r| r.subject_id)
                    .collect::<Vec<String>>()
            })),
    }
}

fn add(sum: &mut DeliveryReport, r: &DeliveryReport) {
    sum.processed += r.processed;
    sum.delivered += r.delivered;
    sum.letters += r.letters;
    sum.announced += r.announced;
    sum.failed += r.failed;
    sum.retrying += r.retrying;
}

/// `outbox deliver`: `workers` concurrent loops, each until a run processes nothing.
async fn deliver(vault: Arc<Vault>, max: u64, workers: u64) -> Result<i32> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let v = Arc::clone(&vault);
        tasks.spawn(async move {
            let mut sum = DeliveryReport::default();
            loop {
                let r = v.deliver_outbox(max).await?;
                add(&mut sum, &r);
                // Done when nothing is due, or when a run settled nothing (every message it
                // took was left for a retry): those wait for their backoff, not for this loop.
                if r.processed == r.retrying {
                    return Ok::<_, CoreError>(sum);
                }
            }
        });
    }
    let mut total = DeliveryReport::default();
    let mut first_err = None;
    while let Some(done) = tasks.join_next().await {
        match done.context("an outbox worker panicked")? {
            Ok(r) => add(&mut total, &r),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        print_json(&total)?;
        return refused(e);
    }
    print_json(&total)
}

/// Runs one `outbox` subcommand.
pub(crate) async fn run_outbox(vault: Vault, cmd: OutboxCmd) -> Result<i32> {
    let p = Principal::operator("outbox", vault.policy());
    match cmd {
        OutboxCmd::Deliver { max, workers } => deliver(Arc::new(vault), max, workers).await,
        OutboxCmd::Status => out(vault.outbox_totals(&p).await.map(|c| {
            serde_json::json!({
                "pending": c.pending,
                "delivered": c.delivered,
                "letter": c.letter,
                "announced": c.announced,
                "failed": c.failed,
            })
        })),
        OutboxCmd::Show { id } => out(vault.outbox_item(&p, &id).await),
        OutboxCmd::Letters { out: file, limit } => {
            let letters = match vault.print_letters(&p, limit).await {
                Ok(l) => l,
                Err(e) => return refused(e),
            };
            let letters: Vec<pivault_notify::Letter> = letters
                .into_iter()
                .map(|l| pivault_notify::Letter {
                    reference: l.reference,
                    name: l.name,
                    address: l.address,
                    subject: l.subject,
                    body: l.body,
                })
                .collect();
            let html = pivault_notify::letter_batch_html("pivault letters", &letters);
            std::fs::write(&file, html).with_context(|| format!("writing {}", file.display()))?;
            print_json(&serde_json::json!({
                "letters": letters.len(),
                "out": file.display().to_string(),
            }))
        }
    }
}

/// Runs one `cessation` subcommand.
pub(crate) async fn run_cessation(vault: Vault, cmd: CessationCmd) -> Result<i32> {
    let p = Principal::operator("cessation", vault.policy());
    match cmd {
        CessationCmd::Start { effective_at } => {
            // A bad time is refused before anything is said to have started.
            if let Err(e) = vault.check_cessation_time(effective_at) {
                return refused(e);
            }
            eprintln!("starting the service cessation: collection stops now; notifying every active subject, erasing from the effective date…");
            unfinished(
                out(vault.cessation_start(&p, effective_at).await),
                &vault,
                &p,
            )
            .await
        }
        CessationCmd::Status => out(vault.cessation_status(&p).await),
        CessationCmd::Resume => {
            eprintln!("resuming the service cessation…");
            unfinished(out(vault.cessation_resume(&p).await), &vault, &p).await
        }
    }
}

/// A start or resume that returned with the cessation still running exits 3 and says why
/// (erasure waits for the effective date, or notices are still on their way).
async fn unfinished(code: Result<i32>, vault: &Vault, p: &Principal) -> Result<i32> {
    let code = code?;
    if code != 0 {
        return Ok(code);
    }
    match vault.cessation_status(p).await {
        Ok(st) if st.state == "running" => {
            eprintln!(
                "error: cessation_unfinished: not finished ({} active subjects left, {} waiting for their notice, effective at {}); run `pivault cessation resume` again later",
                st.active_left,
                st.waiting_notice,
                st.effective_at.unwrap_or(0)
            );
            Ok(3)
        }
        _ => Ok(0),
    }
}

/// Runs one `misuse` subcommand.
pub(crate) async fn run_misuse(vault: Vault, cmd: MisuseCmd) -> Result<i32> {
    let p = Principal::operator("misuse", vault.policy());
    match cmd {
        MisuseCmd::Cases { all } => out(vault.security_cases(&p, !all).await),
        MisuseCmd::Show { case } => out(vault.security_case(&p, &case).await),
        MisuseCmd::Release { case } => out(vault.release_case(&p, &case).await),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Ok(60));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_time("99999999999999999999999").is_err());
    }
}
