use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;
use serde::Deserialize;
use time::macros::{date, datetime, offset};

use super::*;

fn serde_name<T: Serialize>(value: T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn from_name<'de, T: Deserialize<'de>>(name: &'de str) -> T {
    let d = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name);
    match T::deserialize(d) {
        Ok(v) => v,
        Err(e) => panic!("{name}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Kinds and states

#[test]
fn kinds_round_trip_through_their_names_and_serde() {
    let names: Vec<&str> = DsrKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "access",
            "copy",
            "correction",
            "deletion",
            "withdrawal",
            "cancellation",
            "explanation",
            "misuse_report",
            "inquiry",
            "sign_in"
        ]
    );
    for kind in DsrKind::ALL {
        assert_eq!(kind.as_str().parse::<DsrKind>(), Ok(kind));
        assert_eq!(serde_name(kind), kind.as_str());
        assert_eq!(from_name::<DsrKind>(kind.as_str()), kind);
        assert_eq!(kind.to_string(), kind.as_str());
    }
}

#[test]
fn an_unknown_kind_is_an_error_with_a_stable_code() {
    let err = "erasure".parse::<DsrKind>().unwrap_err();
    assert_eq!(err.code, "dsr_kind_unknown");
    assert!(!err.to_string().contains("erasure"));
    assert_eq!(
        "Access".parse::<DsrKind>().unwrap_err().code,
        "dsr_kind_unknown"
    );
}

#[test]
fn kinds_cite_their_pipl_article_and_policy_clause() {
    let expect = [
        (DsrKind::Access, "PIPL Art. 45", "§XI"),
        (DsrKind::Copy, "PIPL Art. 45 paras. 1 and 3", "§XI"),
        (DsrKind::Correction, "PIPL Art. 46", "§XI"),
        (DsrKind::Deletion, "PIPL Art. 47", "§7.1"),
        (DsrKind::Withdrawal, "PIPL Art. 15", "§7.2"),
        (DsrKind::Cancellation, "PIPL Art. 47", "§XI"),
        (DsrKind::Explanation, "PIPL Art. 48", "§XI"),
        (DsrKind::MisuseReport, "PIPL Art. 51", "§8.7"),
        (DsrKind::Inquiry, "PIPL Art. 50", "§XI"),
        (DsrKind::SignIn, "PIPL Art. 50", "§XI"),
    ];
    for (kind, article, section) in expect {
        assert_eq!(kind.article(), article, "{kind}");
        assert_eq!(kind.policy_section(), section, "{kind}");
    }
}

#[test]
fn states_round_trip_through_their_names_and_serde() {
    let names: Vec<&str> = DsrState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "received",
            "identity_unverified",
            "verified",
            "in_progress",
            "completed",
            "rejected",
            "failed",
            "expired"
        ]
    );
    for state in DsrState::ALL {
        assert_eq!(state.as_str().parse::<DsrState>(), Ok(state));
        assert_eq!(serde_name(state), state.as_str());
        assert_eq!(from_name::<DsrState>(state.as_str()), state);
    }
    assert_eq!(
        "done".parse::<DsrState>().unwrap_err().code,
        "dsr_state_unknown"
    );
}

#[test]
fn only_completed_rejected_and_expired_are_terminal() {
    let terminal: Vec<DsrState> = DsrState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [DsrState::Completed, DsrState::Rejected, DsrState::Expired]
    );
}

#[test]
fn transitions_are_exactly_the_documented_table() {
    use DsrState::*;
    let allowed = [
        (Received, IdentityUnverified),
        (Received, Rejected),
        (IdentityUnverified, Verified),
        (IdentityUnverified, Rejected),
        (IdentityUnverified, Expired),
        (Verified, InProgress),
        (Verified, Rejected),
        (InProgress, Completed),
        (InProgress, Failed),
        (Failed, InProgress),
        (Failed, Rejected),
    ];
    for from in DsrState::ALL {
        for to in DsrState::ALL {
            assert_eq!(
                can_transition(from, to),
                allowed.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
}

fn reachable_from(start: DsrState) -> BTreeSet<DsrState> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(state) = queue.pop_front() {
        for next in DsrState::ALL {
            if can_transition(state, next) && seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    seen
}

#[test]
fn every_state_is_reachable_from_received_and_nothing_from_a_terminal_state() {
    let mut from_received = reachable_from(DsrState::Received);
    from_received.insert(DsrState::Received);
    assert_eq!(from_received, DsrState::ALL.into_iter().collect());
    for state in DsrState::ALL.into_iter().filter(|s| s.is_terminal()) {
        assert!(reachable_from(state).is_empty(), "{state}");
    }
}

fn any_state() -> impl Strategy<Value = DsrState> {
    prop::sample::select(DsrState::ALL.to_vec())
}

proptest! {
    #[test]
    fn no_allowed_path_continues_past_a_terminal_state(path in prop::collection::vec(any_state(), 2..12)) {
        let allowed = path.windows(2).all(|w| can_transition(w[0], w[1]));
        if allowed {
            for state in &path[..path.len() - 1] {
                prop_assert!(!state.is_terminal(), "{path:?}");
            }
        }
    }

    #[test]
    fn a_random_walk_from_received_only_stops_in_a_terminal_state(choices in prop::collection::vec(any::<prop::sample::Index>(), 1..30)) {
        let mut state = DsrState::Received;
        for choice in choices {
            let next: Vec<DsrState> = DsrState::ALL.into_iter().filter(|&to| can_transition(state, to)).collect();
            if next.is_empty() {
                prop_assert!(state.is_terminal(), "stuck in {state}");
                break;
            }
            state = *choice.get(&next);
        }
    }
}

// ---------------------------------------------------------------------------
// Deadlines

fn jurisdiction(deadline: Period, day_kind: DayKind, utc_offset: UtcOffset) -> Jurisdiction {
    Jurisdiction {
        key: "test".to_owned(),
        deadline,
        extension: None,
        day_kind,
        holidays: BTreeSet::new(),
        extra_workdays: BTreeSet::new(),
        utc_offset,
        clause: "§XI".to_owned(),
    }
}

fn days(from: Date, to: Date) -> BTreeSet<Date> {
    let mut out = BTreeSet::new();
    let mut d = from;
    while d <= to {
        out.insert(d);
        d = d.next_day().unwrap();
    }
    out
}

/// The 2025 National Day and Mid-Autumn holiday: 1–8 October off, Sunday 28
/// September and Saturday 11 October worked (State Council notice of
/// 2024-11-12).
fn cn_working_2025() -> Jurisdiction {
    let mut j = jurisdiction(Period::Days(10), DayKind::Working, offset!(+8));
    j.holidays = days(date!(2025 - 10 - 01), date!(2025 - 10 - 08));
    j.extra_workdays = [date!(2025 - 09 - 28), date!(2025 - 10 - 11)].into();
    j
}

#[test]
fn ten_calendar_days_end_at_local_midnight_of_the_tenth_day() {
    let cn = jurisdiction(Period::Days(10), DayKind::Calendar, offset!(+8));
    let due = cn.due(datetime!(2026-03-02 09:30 +8));
    assert_eq!(due, datetime!(2026-03-12 23:59:59 +8));
    assert_eq!(due.offset(), UtcOffset::UTC);
    assert_eq!(due, datetime!(2026-03-12 15:59:59 UTC));
}

#[test]
fn the_local_date_decides_when_the_utc_date_differs() {
    let cn = jurisdiction(Period::Days(10), DayKind::Calendar, offset!(+8));
    // 23:59:59 on 1 March in Beijing.
    assert_eq!(
        cn.due(datetime!(2026-03-01 15:59:59 UTC)),
        datetime!(2026-03-11 15:59:59 UTC)
    );
    // One second later it is 2 March in Beijing, still 1 March in UTC.
    assert_eq!(
        cn.due(datetime!(2026-03-01 16:00 UTC)),
        datetime!(2026-03-12 15:59:59 UTC)
    );

    // West of Greenwich the local date lags: 03:00 UTC on 2 March is 1 March in New York.
    let us = jurisdiction(Period::Days(10), DayKind::Calendar, offset!(-5));
    assert_eq!(
        us.due(datetime!(2026-03-02 03:00 UTC)),
        datetime!(2026-03-12 04:59:59 UTC)
    );
}

#[test]
fn working_days_skip_the_national_day_week_and_count_the_adjusted_saturday() {
    let cn = cn_working_2025();
    // Thursday 25 September 2025. Working days after it: 26 (Fri), 28 (Sun, 调休), 29, 30,
    // then 1–8 October off, 9, 10, 11 (Sat, 调休), 13, 14, 15.
    let received = datetime!(2025-09-25 10:00 +8);
    assert_eq!(cn.due(received), datetime!(2025-10-15 23:59:59 +8));

    // Without the adjusted Saturday the deadline is one working day later.
    let mut no_tiaoxiu = cn.clone();
    no_tiaoxiu.extra_workdays.remove(&date!(2025 - 10 - 11));
    assert_eq!(no_tiaoxiu.due(received), datetime!(2025-10-16 23:59:59 +8));
}

#[test]
fn working_day_rules_follow_the_listed_holidays_and_workdays() {
    let cn = cn_working_2025();
    assert!(!cn.is_working_day(date!(2025 - 10 - 01)));
    assert!(!cn.is_working_day(date!(2025 - 10 - 12)));
    assert!(cn.is_working_day(date!(2025 - 10 - 11)));
    assert!(cn.is_working_day(date!(2025 - 09 - 28)));
    assert!(cn.is_working_day(date!(2025 - 10 - 09)));
    // A request received on a holiday counts from the next working day.
    let mut one = cn.clone();
    one.deadline = Period::Days(1);
    assert_eq!(
        one.due(datetime!(2025-10-03 12:00 +8)),
        datetime!(2025-10-09 23:59:59 +8)
    );
    // Zero working days: the end of the day of receipt.
    one.deadline = Period::Days(0);
    assert_eq!(
        one.due(datetime!(2025-10-03 12:00 +8)),
        datetime!(2025-10-03 23:59:59 +8)
    );
}

#[test]
fn a_month_from_the_31st_of_january_is_the_end_of_february() {
    let eu = jurisdiction(Period::Months(1), DayKind::Calendar, offset!(+1));
    assert_eq!(
        eu.due(datetime!(2026-01-31 10:00 UTC)),
        datetime!(2026-02-28 22:59:59 UTC)
    );
    // 2028 is a leap year.
    assert_eq!(
        eu.due(datetime!(2028-01-31 10:00 UTC)),
        datetime!(2028-02-29 22:59:59 UTC)
    );
    // 23:30 UTC on 30 January is already 31 January in Brussels.
    assert_eq!(
        eu.due(datetime!(2026-01-30 23:30 UTC)),
        datetime!(2026-02-28 22:59:59 UTC)
    );
    // Across the year end.
    let two = jurisdiction(Period::Months(2), DayKind::Calendar, offset!(+1));
    assert_eq!(
        two.due(datetime!(2025-12-31 12:00 +1)),
        datetime!(2026-02-28 23:59:59 +1)
    );
    // Mid-month dates keep their day.
    assert_eq!(
        eu.due(datetime!(2026-04-15 12:00 +1)),
        datetime!(2026-05-15 23:59:59 +1)
    );
}

#[test]
fn a_month_deadline_on_a_day_off_moves_to_the_next_working_day() {
    let mut cn = jurisdiction(Period::Months(1), DayKind::Working, offset!(+8));
    // Spring Festival 2026: 15–23 February off (State Council notice of 2025-11-04).
    cn.holidays = days(date!(2026 - 02 - 15), date!(2026 - 02 - 23));
    assert_eq!(
        cn.due(datetime!(2026-01-15 09:00 +8)),
        datetime!(2026-02-24 23:59:59 +8)
    );
    // On a calendar the same deadline is simply 15 February.
    cn.day_kind = DayKind::Calendar;
    assert_eq!(
        cn.due(datetime!(2026-01-15 09:00 +8)),
        datetime!(2026-02-15 23:59:59 +8)
    );
}

#[test]
fn the_extension_is_counted_from_the_receipt() {
    let mut eu = jurisdiction(Period::Months(1), DayKind::Calendar, offset!(+1));
    assert_eq!(eu.extended_due(datetime!(2026-01-31 10:00 UTC)), None);
    eu.extension = Some(Period::Months(2));
    // Three months from 31 January is 30 April, not 28 February + 2 months.
    assert_eq!(
        eu.extended_due(datetime!(2026-01-31 10:00 UTC)),
        Some(datetime!(2026-04-30 22:59:59 UTC))
    );

    let mut cn = cn_working_2025();
    cn.extension = Some(Period::Days(1));
    assert_eq!(
        cn.extended_due(datetime!(2025-09-25 10:00 +8)),
        Some(datetime!(2025-10-16 23:59:59 +8))
    );

    // Mixed units apply one after the other: 10 days, then a month.
    let mut mixed = jurisdiction(Period::Days(10), DayKind::Calendar, offset!(+8));
    mixed.extension = Some(Period::Months(1));
    assert_eq!(
        mixed.extended_due(datetime!(2026-01-21 12:00 +8)),
        Some(datetime!(2026-02-28 23:59:59 +8))
    );
}

#[test]
fn deadlines_past_the_end_of_the_calendar_saturate_instead_of_panicking() {
    let far = datetime!(9999-12-30 12:00 UTC);
    for kind in DayKind::ALL {
        for period in [Period::Days(u32::MAX), Period::Months(u32::MAX)] {
            let mut j = jurisdiction(period, kind, offset!(+14));
            j.extension = Some(period);
            assert!(j.due(far) >= far);
            assert!(j.extended_due(far).is_some_and(|d| d >= far));
        }
    }
}

#[test]
fn settings_default_to_cn_30_2_600_3() {
    let s = DsrSettings::default();
    assert_eq!(s.default_jurisdiction, "cn");
    assert_eq!(
        (
            s.duplicate_window_days,
            s.near_due_days,
            s.code_ttl_seconds,
            s.code_attempts
        ),
        (30, 2, 600, 3)
    );
}

fn any_period() -> impl Strategy<Value = Period> {
    prop_oneof![
        (0u32..400).prop_map(Period::Days),
        (0u32..30).prop_map(Period::Months)
    ]
}

fn any_date() -> impl Strategy<Value = Date> {
    // 2024-01-01 .. 2028-12-31, where the generated instants fall.
    (0i64..1_827).prop_map(|d| date!(2024 - 01 - 01) + Duration::days(d))
}

fn any_jurisdiction() -> impl Strategy<Value = Jurisdiction> {
    (
        any_period(),
        prop::option::of(any_period()),
        prop::sample::select(DayKind::ALL.to_vec()),
        prop::collection::btree_set(any_date(), 0..200),
        prop::collection::btree_set(any_date(), 0..20),
        -(12 * 60)..=(14 * 60i32),
    )
        .prop_map(
            |(deadline, extension, day_kind, holidays, extra_workdays, minutes)| Jurisdiction {
                key: "p".to_owned(),
                deadline,
                extension,
                day_kind,
                holidays,
                extra_workdays,
                utc_offset: UtcOffset::from_whole_seconds(minutes * 60).unwrap(),
                clause: "§XI".to_owned(),
            },
        )
}

fn any_instant() -> impl Strategy<Value = OffsetDateTime> {
    // 2024-01-01T00:00Z .. 2028-12-31T00:00Z, whole seconds.
    (1_704_067_200i64..1_861_833_600).prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap())
}

proptest! {
    #[test]
    fn due_is_never_before_the_receipt_and_ends_a_local_day(j in any_jurisdiction(), received in any_instant()) {
        let due = j.due(received);
        prop_assert!(due >= received);
        prop_assert_eq!(due.offset(), UtcOffset::UTC);
        let local = due.to_offset(j.utc_offset);
        prop_assert_eq!((local.hour(), local.minute(), local.second()), (23, 59, 59));
        if let Some(extended) = j.extended_due(received) {
            prop_assert!(extended >= due);
        }
    }

    #[test]
    fn due_is_monotone_in_the_receipt(j in any_jurisdiction(), a in any_instant(), b in any_instant()) {
        let (early, late) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(j.due(early) <= j.due(late));
        prop_assert!(j.extended_due(early) <= j.extended_due(late));
    }
}

#[test]
fn steps_round_trip_through_their_names_and_serde() {
    let names: Vec<&str> = DsrStep::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "package",
            "explain",
            "correct",
            "withdraw",
            "restrict_retained",
            "shred",
            "notify_recipients",
            "receipt",
            "lock"
        ]
    );
    for step in DsrStep::ALL {
        assert_eq!(DsrStep::parse(step.as_str()), Some(step));
        assert_eq!(step.as_str().parse::<DsrStep>(), Ok(step));
        assert_eq!(step.to_string(), step.as_str());
        assert_eq!(serde_name(step), step.as_str());
        assert_eq!(from_name::<DsrStep>(step.as_str()), step);
    }
    for s in ["", "Shred", "restrict", "notify", "step.shred", "shred "] {
        assert_eq!(DsrStep::parse(s), None, "{s:?}");
        assert_eq!(s.parse::<DsrStep>().unwrap_err().code, "dsr_step_unknown");
    }
}

/// pivault-core's `steps_of`, copied as text: the order decides resumption.
#[test]
fn steps_of_each_kind_match_core() {
    let expected: [(DsrKind, &[&str]); 10] = [
        (DsrKind::Access, &["package"]),
        (DsrKind::Copy, &["package"]),
        (DsrKind::Explanation, &["explain"]),
        (DsrKind::Correction, &["correct"]),
        (DsrKind::Withdrawal, &["withdraw"]),
        (
            DsrKind::Deletion,
            &["restrict_retained", "shred", "notify_recipients", "receipt"],
        ),
        (
            DsrKind::Cancellation,
            &[
                "withdraw",
                "restrict_retained",
                "shred",
                "notify_recipients",
                "receipt",
            ],
        ),
        (DsrKind::MisuseReport, &["lock"]),
        (DsrKind::Inquiry, &[]),
        (DsrKind::SignIn, &[]),
    ];
    for (kind, names) in expected {
        let got: Vec<&str> = DsrStep::steps(kind).iter().map(|s| s.as_str()).collect();
        assert_eq!(got, names, "{kind}");
    }
    // Every step is used by some kind.
    for step in DsrStep::ALL {
        assert!(
            DsrKind::ALL
                .iter()
                .any(|&k| DsrStep::steps(k).contains(&step)),
            "{step}"
        );
    }
}
