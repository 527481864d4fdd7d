use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;

use super::*;
use crate::testutil::dataset;

const LINE: &str = r#"29.46.159.63 - u106057 [02/Oct/2026:04:24:02 +0000] "GET /pricing HTTP/1.1" 200 23029 "-" "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/536.1 (KHTML, like Gecko) Chrome/44.0.896.0 Safari/536.1""#;

/// 2026-10-02T04:24:02Z.
const AT: i64 = 1_790_915_042;

fn line_with(target: &str) -> WebLogLine {
    parse_combined(&format!(
        r#"1.2.3.4 - - [02/Oct/2026:04:24:02 +0000] "GET {target} HTTP/1.1" 200 1 "-" "curl/8.0""#
    ))
    .unwrap()
}

fn reject(line: &str) -> &'static str {
    match parse_combined(line) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

// ---------------------------------------------------------------------------
// parse_combined

#[test]
fn parses_the_first_line_of_the_data_set() {
    let l = parse_combined(LINE).unwrap();
    assert_eq!(l.client, "29.46.159.63".parse::<IpAddr>().unwrap());
    assert_eq!(l.remote_user.as_deref(), Some("u106057"));
    assert_eq!(l.at, AT);
    assert_eq!(
        (l.method.as_str(), l.target.as_str(), l.protocol.as_str()),
        ("GET", "/pricing", "HTTP/1.1")
    );
    assert_eq!((l.status, l.bytes), (200, 23029));
    assert_eq!(l.referer, None);
    assert!(l.user_agent.starts_with("Mozilla/5.0 (Windows NT 6.1)"));
    assert!(l.user_agent.ends_with("Safari/536.1"));
}

#[test]
fn time_offsets_convert_to_utc() {
    for (time, expected) in [
        ("02/Oct/2026:04:24:02 +0000", AT),
        ("02/Oct/2026:12:24:02 +0800", AT),
        ("01/Oct/2026:22:54:02 -0530", AT),
        ("02/oct/2026:04:24:02 +0000", AT),
        ("29/Feb/2024:00:00:00 +0000", 1_709_164_800),
        ("01/Jan/1970:00:00:00 +0000", 0),
    ] {
        let line = LINE.replace("02/Oct/2026:04:24:02 +0000", time);
        assert_eq!(parse_combined(&line).unwrap().at, expected, "{time}");
    }
}

#[test]
fn dashes_are_absent_fields_and_ipv6_parses() {
    let l = parse_combined(
        r#"2001:db8::1 - - [02/Oct/2026:04:24:02 +0000] "POST /api/v1/x?y=1 HTTP/2.0" 201 - "https://example.com/a" "-""#,
    )
    .unwrap();
    assert_eq!(l.client, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(l.remote_user, None);
    assert_eq!(l.bytes, 0);
    assert_eq!(l.referer.as_deref(), Some("https://example.com/a"));
    assert_eq!(l.user_agent, "");
    assert_eq!(l.protocol, "HTTP/2.0");
}

#[test]
fn escapes_in_quoted_fields_are_decoded() {
    let l = parse_combined(
        r#"1.2.3.4 - - [02/Oct/2026:04:24:02 +0000] "GET /a HTTP/1.1" 200 5 "x\"y" "Agent \"quoted\" \\ back \xE4\xBA\x91 end""#,
    )
    .unwrap();
    assert_eq!(l.referer.as_deref(), Some("x\"y"));
    assert_eq!(l.user_agent, "Agent \"quoted\" \\ back 云 end");
}

#[test]
fn trailing_line_ends_are_tolerated() {
    for end in ["\r", "\n", "\r\n", " "] {
        assert_eq!(parse_combined(&format!("{LINE}{end}")).unwrap().at, AT);
    }
}

#[test]
fn malformed_lines_get_their_reject_codes() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("  \r\n".into(), "empty"),
        ("x".repeat(20 * 1024), "too_long"),
        (format!("{LINE}{}", " ".repeat(20 * 1024)), "too_long"),
        (LINE.replace("29.46.159.63", "999.46.159.63"), "bad_address"),
        (LINE.replace("29.46.159.63", "host.example"), "bad_address"),
        (LINE.replace("29.46.159.63", "[::1]"), "bad_address"),
        (LINE.replace(" - u106057", " x u106057"), "bad_layout"),
        (LINE.replace("02/Oct/2026", "32/Oct/2026"), "bad_time"),
        (LINE.replace("02/Oct/2026", "02/Foo/2026"), "bad_time"),
        (LINE.replace("04:24:02", "25:24:02"), "bad_time"),
        (LINE.replace("+0000", "+00000"), "bad_time"),
        (LINE.replace("+0000", "Z"), "bad_time"),
        (LINE.replace("+0000", "+0060"), "bad_time"),
        (LINE.replace("] \"GET", "]\"GET"), "bad_layout"),
        (
            LINE.replace("\"GET /pricing HTTP/1.1\"", "\"\\x16\\x03\\x01\\x00\""),
            "bad_request_line",
        ),
        (
            LINE.replace("\"GET /pricing HTTP/1.1\"", "\"-\""),
            "bad_request_line",
        ),
        (
            LINE.replace("GET /pricing HTTP/1.1", "GET /pri cing HTTP/1.1"),
            "bad_request_line",
        ),
        (
            LINE.replace("GET /pricing HTTP/1.1", "GET  /pricing HTTP/1.1"),
            "bad_request_line",
        ),
        (
            LINE.replace("GET /pricing HTTP/1.1", "GET /pricing FTP/1"),
            "bad_request_line",
        ),
        (LINE.replace(" 200 ", " 20x "), "bad_status"),
        (LINE.replace(" 200 ", " 600 "), "bad_status"),
        (LINE.replace(" 200 ", " 2000 "), "bad_status"),
        (LINE.replace(" 23029 ", " 23a29 "), "bad_bytes"),
        (
            LINE.replace(" 23029 ", " 99999999999999999999999 "),
            "bad_bytes",
        ),
        (LINE.replace(" 23029 ", " -5 "), "bad_bytes"),
        (
            LINE.replace("Safari/536.1\"", "Safari/536.1"),
            "unterminated_quote",
        ),
        // The referer's closing quote missing: its text runs on to the user agent's opening
        // quote, and what follows is not a quoted field.
        (LINE.replace("\"-\"", "\"-"), "bad_layout"),
        (format!("{LINE} \"extra\""), "trailing_data"),
        (LINE[..LINE.len() - 40].to_owned(), "unterminated_quote"),
        (LINE[..20].to_owned(), "truncated"),
        (LINE[..40].to_owned(), "truncated"),
        ("29.46.159.63".into(), "truncated"),
        (
            "29.46.159.63 - u106057 [02/Oct/2026:04:24:02 +0000] \"GET / HTTP/1.1\" 200".into(),
            "truncated",
        ),
        (
            "29.46.159.63 - u106057 [02/Oct/2026:04:24:02 +0000] \"GET / HTTP/1.1\" 200 5".into(),
            "truncated",
        ),
    ];
    let mut failures = Vec::new();
    for (line, code) in &cases {
        let got = reject(line);
        if got != *code {
            failures.push(format!("{:.60}…: want {code}, got {got}", line));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_strict_prefix_of_a_line_is_refused() {
    for end in 0..LINE.len() {
        if LINE.is_char_boundary(end) {
            let got = parse_combined(&LINE[..end]);
            assert!(got.is_err(), "prefix of {end} bytes parsed");
        }
    }
}

#[test]
fn rejects_carry_no_part_of_the_line() {
    let line = LINE.replace("02/Oct", "99/Oct");
    let e = parse_combined(&line).unwrap_err();
    let shown = format!("{e} {e:?} {}", e.code());
    for secret in ["29.46.159.63", "u106057", "pricing", "Mozilla", "99/Oct"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let codes: HashSet<&str> = WebLogReject::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), WebLogReject::ALL.len());
}

// ---------------------------------------------------------------------------
// linked_account

#[test]
fn linked_account_comes_from_user_then_path_then_query() {
    assert_eq!(
        linked_account(&parse_combined(LINE).unwrap()).as_deref(),
        Some("u106057")
    );
    for (target, expected) in [
        ("/users/u100001/orders", Some("u100001")),
        ("/users/%75100001", Some("u100001")),
        ("/console?acct=u100002&x=1", Some("u100002")),
        ("/console?x=1&acct=%EF%BD%95100003", Some("u100003")), // full-width ｕ
        ("/console?u100004", Some("u100004")),
        ("/console?acct=+U100005+", Some("u100005")),
        ("/pricing", None),
        ("/users/u12345", None),         // 5 digits: not the directory's form
        ("/users/u1000010x", None),      // not exactly an id
        ("/search?q=see+u100001", None), // inside a value, not exactly one
        ("/users/alice?name=bob", None),
    ] {
        assert_eq!(
            linked_account(&line_with(target)).as_deref(),
            expected,
            "{target}"
        );
    }
    let mut l = line_with("/x/u100009");
    l.remote_user = Some("admin".into());
    assert_eq!(linked_account(&l).as_deref(), Some("u100009"));
}

// ---------------------------------------------------------------------------
// Anonymization pieces

#[test]
fn client_networks_are_truncated() {
    for (ip, net) in [
        ("29.46.159.63", "29.46.159.0/24"),
        ("10.0.0.255", "10.0.0.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        (
            "2001:db8:1234:ffff:ffff:ffff:ffff:ffff",
            "2001:db8:1234::/48",
        ),
        ("::ffff:29.46.159.63", "29.46.159.0/24"),
        ("2002:1d2e:9f3f::1", "29.46.159.0/24"),
        ("::1", "::/48"),
        ("fe80::1", "fe80::/48"),
    ] {
        assert_eq!(client_net(ip.parse().unwrap()), net, "{ip}");
    }
}

#[test]
fn user_agents_reduce_to_family_and_major() {
    for (ua, family, major) in [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome", Some(120)),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/532.0 (KHTML, like Gecko) CriOS/63.0.853.0 Mobile/11T232 Safari/532.0", "Chrome", Some(63)),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", "Edge", Some(120)),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0 Safari/537.36 Edge/14.14393", "Edge", Some(14)),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36 OPR/105.0.0.0", "Opera", Some(105)),
        ("Opera/9.13.(Windows NT 4.0; fr-LU) Presto/2.9.180 Version/11.00", "Opera", Some(11)),
        ("Opera/9.80 (Windows NT 6.1)", "Opera", Some(9)),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; en) Opera 8.50", "Opera", Some(8)),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox", Some(121)),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/120.0 Mobile/15E148 Safari/605.1.15", "Firefox", Some(120)),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15", "Safari", Some(17)),
        ("Mozilla/5.0 (Windows; U; Windows NT 6.1) AppleWebKit/533.20.25 (KHTML, like Gecko) Version/5.0.4 Safari/533.20.27", "Safari", Some(5)),
        ("Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)", "IE", Some(9)),
        ("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", "IE", Some(11)),
        ("Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", "Android Browser", Some(4)),
        ("Mozilla/5.0 (Linux; Android 13; V2183A) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/107.0 Mobile Safari/537.36 MicroMessenger/8.0.43.2480", "WeChat", Some(8)),
        ("Mozilla/5.0 (Linux; U; Android 12; zh-cn) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/98.0 MQQBrowser/14.1 Mobile Safari/537.36", "QQ Browser", Some(14)),
        ("Mozilla/5.0 (Linux; U; Android 10; zh-CN) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0 UCBrowser/15.5.0.1181 Mobile Safari/537.36", "UC Browser", Some(15)),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Bot", None),
        ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "Bot", None),
        ("Mozilla/5.0 (Linux; Android 10) Bytespider", "Bot", None),
        ("curl/8.5.0", "curl", Some(8)),
        ("Wget/1.21.4", "Wget", Some(1)),
        ("python-requests/2.31.0", "python-requests", Some(2)),
        ("Go-http-client/1.1", "Go-http-client", Some(1)),
        ("", "Other", None),
        ("-", "Other", None),
        ("SomethingElse/1.0", "Other", None),
        ("Chrome/99999999999999999999", "Chrome", None),
    ] {
        assert_eq!(user_agent_family(ua), (family, major), "{ua}");
    }
}

#[test]
fn pi_is_found_inside_text() {
    for s in [
        "13816908250",
        "call 13816908250",
        "call13816908250now",
        "+86 155-6317-0669",
        " 86 155-6317-0669",
        "(+86)15563170669",
        "008615563170669",
        "tel:15563170669,13900001111",
        "１５５６３１７０６６９",
        "13816908250x",
        "mchang@example.net",
        "write to MChang@Example.NET.",
        "ＭＣＨＡＮＧ＠ＥＸＡＭＰＬＥ．ＮＥＴ",
        "张三@例子.中国",
        "130501196509157909",
        "id:11010519491231002x!",
        "u106057",
        "for u106057.",
        "ｕ１０６０５７",
        "+65 6123 4567",
    ] {
        assert!(contains_pi(s), "{s}");
    }
    for s in [
        "",
        "icp filing",
        "云服务器",
        "1234567",
        "/product/ecs",
        "12345678901234567890123",
        "110105194912310021", // wrong check digit
        "menu106057",
        "u12345",
        "a@b",
        "@example.com",
        "2026-10-02",
        "version 1.2.3.4",
    ] {
        assert!(!contains_pi(s), "{s}");
    }
}

#[test]
fn anonymized_targets_lose_account_segments_and_pi_params() {
    for (target, path) in [
        ("/pricing", "/pricing"),
        ("/", "/"),
        ("/search?q=13816908250", "/search"),
        ("/search?q=13816908250&page=2", "/search?page=2"),
        ("/search?page=2&q=call+13816908250&sort=asc", "/search?page=2&sort=asc"),
        ("/search?q=+86+155-6317-0669", "/search"),
        ("/search?q=%2B86%20155-6317-0669", "/search"),
        ("/search?q=%EF%BC%91%EF%BC%95%EF%BC%95%EF%BC%96%EF%BC%93%EF%BC%91%EF%BC%97%EF%BC%90%EF%BC%96%EF%BC%96%EF%BC%99", "/search"),
        ("/search?q=%25%33%31%33%38%31%36%39%30%38%32%35%30", "/search"), // double-encoded
        ("/search?q=mchang%40example.net", "/search"),
        ("/search?q=MChang@Example.NET", "/search"),
        ("/search?q=130501196509157909", "/search"),
        ("/search?q=u106057", "/search"),
        ("/search?13816908250", "/search"),
        ("/search?13816908250=1&a=b", "/search?a=b"),
        ("/search?q=%E4%BA%91%E6%9C%8D%E5%8A%A1%E5%99%A8", "/search?q=%E4%BA%91%E6%9C%8D%E5%8A%A1%E5%99%A8"),
        ("/search?q=icp+filing", "/search?q=icp+filing"),
        ("/users/u106057/orders", "/users/:account/orders"),
        ("/users/%75106057", "/users/:account"),
        ("/users/13816908250/profile", "/users/:pi/profile"),
        ("/u/mchang@example.net", "/u/:pi"),
        ("/users/u106057.json", "/users/:pi"),
    ] {
        assert_eq!(anonymize_target(target), path, "{target}");
    }
}

#[test]
fn anonymize_keeps_only_coarse_fields() {
    let l = parse_combined(
        r#"2001:db8:1234:5678::99 - u106057 [02/Oct/2026:04:24:02 +0000] "GET /users/u106057?q=13816908250&lang=zh HTTP/1.1" 404 77 "https://ref.example/u106057" "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0""#,
    )
    .unwrap();
    let a = anonymize(&l);
    assert_eq!(
        a,
        AnonWebLog {
            hour: 1_790_913_600,
            client_net: "2001:db8:1234::/48".into(),
            method: "GET".into(),
            path: "/users/:account?lang=zh".into(),
            status: 404,
            bytes: 77,
            ua_family: "Firefox".into(),
            ua_major: Some(121),
        }
    );
    let mut odd = l.clone();
    odd.method = "13816908250".into();
    assert_eq!(anonymize(&odd).method, "OTHER");
    let mut before_epoch = l.clone();
    before_epoch.at = -1;
    assert_eq!(anonymize(&before_epoch).hour, -3600);
}

#[test]
fn pathological_targets_stay_fast() {
    let started = std::time::Instant::now();
    for unit in [
        "1-",
        "1",
        "u1",
        "@",
        "@a.b",
        "%31",
        "+8",
        "1 2 3 4 5 6 7 8 9 ",
        "ｕ１",
    ] {
        let target = format!("/a/{}?q={}", unit.repeat(2_000), unit.repeat(2_000));
        let _ = anonymize_target(&target);
        let _ = contains_pi(&target);
    }
    // Generous: debug builds on a loaded 2-core machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// The data set

fn access_log() -> String {
    let path = dataset("access.log");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Identifiers of every user of `users.csv`, lower-cased: account id, mobile (as stored and
/// E.164), e-mail, ID number.
fn users_pi() -> Vec<String> {
    let path = dataset("users.csv");
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.unwrap();
        for col in [0, 2, 4, 5, 15] {
            let v = row[col].trim();
            if v.is_empty() {
                continue;
            }
            out.push(v.to_lowercase());
            if col == 4 || col == 15 {
                if let Ok(m) = Mobile::parse(v) {
                    out.push(m.e164().to_owned());
                }
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay` as a whole address (not inside a longer number).
fn occurs_as_address(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
        !joins(before) && !joins(after)
    })
}

#[test]
fn data_set_every_line_parses_and_anonymizes_without_pi() {
    let text = access_log();
    let mut parsed = Vec::new();
    let mut rejects: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        match parse_combined(line) {
            Ok(l) => parsed.push(l),
            Err(e) => *rejects.entry(e.code()).or_default() += 1,
        }
    }
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(parsed.len(), 50_000);

    let anon: Vec<AnonWebLog> = parsed.iter().map(anonymize).collect();

    // 1. Addresses: no output field but client_net holds the address; client_net is the
    //    address itself only for network addresses (host part 0), which name the /24.
    let mut network_addresses = 0;
    for (l, a) in parsed.iter().zip(&anon) {
        let ip = l.client.to_string();
        let others = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{:?}",
            a.hour, a.method, a.path, a.status, a.bytes, a.ua_family, a.ua_major
        );
        assert!(!occurs_as_address(&others, &ip), "address in output");
        if a.client_net.starts_with(&format!("{ip}/")) {
            assert!(ip.ends_with(".0"), "host address kept");
            network_addresses += 1;
        }
    }
    let all_ips: HashSet<String> = parsed.iter().map(|l| l.client.to_string()).collect();
    let net_addrs: HashSet<&str> = anon
        .iter()
        .filter_map(|a| a.client_net.split('/').next())
        .collect();
    let overlap: Vec<&&str> = net_addrs.iter().filter(|n| all_ips.contains(**n)).collect();
    assert!(overlap.iter().all(|n| n.ends_with(".0")));
    println!(
        "addresses: {} distinct, {} nets; {} lines whose address is a /24 network address",
        all_ips.len(),
        net_addrs.len(),
        network_addresses
    );

    // 2. No account id, mobile, e-mail or ID number of users.csv anywhere in the output
    //    (grep over every distinct output value, lower-cased; paths also decoded and with
    //    separators removed, so "+86 155-6317-0669" shapes are caught too).
    let mut values: HashSet<String> = HashSet::new();
    for a in &anon {
        values.insert(a.hour.to_string());
        values.insert(a.client_net.clone());
        values.insert(a.method.clone());
        values.insert(a.path.clone());
        values.insert(a.status.to_string());
        values.insert(a.bytes.to_string());
        values.insert(a.ua_family.clone());
        values.insert(format!("{:?}", a.ua_major));
        let decoded = nfkc(&percent_decode(&a.path, true)).into_owned();
        values.insert(
            decoded
                .chars()
                .filter(|&c| !is_digit_separator(c) && c != '+')
                .collect(),
        );
    }
    let hay = values
        .into_iter()
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let needles = users_pi();
    let lengths: HashSet<usize> = needles.iter().map(String::len).collect();
    let needle_set: HashSet<&[u8]> = needles.iter().map(|n| n.as_bytes()).collect();
    let hay_b = hay.as_bytes();
    let mut found = Vec::new();
    for &len in &lengths {
        for window in hay_b.windows(len) {
            if needle_set.contains(window) {
                found.push(String::from_utf8_lossy(window).into_owned());
            }
        }
    }
    assert!(found.is_empty(), "{} PI values in the output", found.len());
    assert!(anon.iter().all(|a| !contains_pi(&a.path)));
    assert!(anon.iter().all(|a| !a.path.contains('@')));

    // 3. Search lines: PI queries lose the parameter, the others keep it as logged.
    let (mut pi_queries, mut kept) = (0, 0);
    for (l, a) in parsed.iter().zip(&anon) {
        if let Some(q) = l.target.strip_prefix("/search?q=") {
            if contains_pi(&percent_decode(q, true)) || contains_pi(q) {
                assert_eq!(a.path, "/search");
                pi_queries += 1;
            } else {
                assert_eq!(a.path, l.target);
                kept += 1;
            }
        } else {
            assert_eq!(a.path, l.target, "a path without PI is kept as logged");
        }
    }
    assert!(pi_queries >= 300, "{pi_queries}");
    println!("search lines: {pi_queries} lost a PI parameter, {kept} kept theirs");

    // 4. Linked accounts: every line has one (remote_user), in the directory's form.
    let users: HashSet<String> = needles
        .iter()
        .filter(|n| n.starts_with('u'))
        .cloned()
        .collect();
    assert!(parsed
        .iter()
        .all(|l| linked_account(l).is_some_and(|id| users.contains(&id))));

    // 5. Browser families.
    let mut families: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &anon {
        *families.entry(a.ua_family.as_str()).or_default() += 1;
    }
    println!("ua families: {families:?}");
    assert_eq!(
        families.get("Other"),
        None,
        "every agent of the data set is a known browser"
    );
    assert!(anon.iter().all(|a| a.ua_major.is_some()));
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn parse_never_panics_on_any_string(s in any::<String>()) {
        if let Ok(l) = parse_combined(&s) {
            let _ = anonymize(&l);
            let _ = linked_account(&l);
        }
    }

    #[test]
    fn parse_never_panics_on_damaged_lines(at in 0..LINE.len(), cut in 0..40usize, insert in ".{0,8}") {
        let mut s: String = LINE.chars().take(at).collect();
        s.push_str(&insert);
        s.extend(LINE.chars().skip(at + cut));
        if let Ok(l) = parse_combined(&s) {
            let a = anonymize(&l);
            prop_assert!(!a.client_net.is_empty());
            prop_assert_eq!(a.hour.rem_euclid(3600), 0);
        }
    }

    #[test]
    fn any_valid_line_round_trips(
        ip in any::<std::net::IpAddr>(),
        user in proptest::option::of("[a-z0-9_]{1,12}"),
        secs in 0i64..4_102_444_800,
        path in "/[a-zA-Z0-9/_.~%?=&+-]{0,60}",
        status in 100u16..600,
        bytes in any::<u64>(),
        ua in "[ -~]{0,80}",
    ) {
        let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let fmt = time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        );
        let esc = ua.replace('\\', "\\\\").replace('"', "\\\"");
        let line = format!(
            "{ip} - {} [{}] \"GET {path} HTTP/1.1\" {status} {bytes} \"-\" \"{esc}\"",
            user.as_deref().unwrap_or("-"),
            t.format(&fmt).unwrap(),
        );
        let l = parse_combined(&line).unwrap();
        prop_assert_eq!(l.client, ip);
        prop_assert_eq!(l.at, secs);
        prop_assert_eq!(&l.target, &path);
        prop_assert_eq!((l.status, l.bytes), (status, bytes));
        prop_assert_eq!(l.user_agent, if ua == "-" { String::new() } else { ua });
        prop_assert_eq!(l.remote_user, user.filter(|u| u != "-"));
    }

    #[test]
    fn contains_pi_never_panics(s in any::<String>()) {
        let _ = contains_pi(&s);
        let _ = anonymize_target(&s);
    }
}
