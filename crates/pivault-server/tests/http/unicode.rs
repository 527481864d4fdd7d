//! Issue 11 defect 4: identifiers typed with an input method's full-width forms are the same
//! identifiers as their ASCII spelling (NFKC before validation and before the blind index),
//! while zero-width and bidi control characters stay refused, and a value made only of them
//! is empty. Runs on both backends (`unicode::sqlite::…`, `unicode::postgres::…`).

use pivault_testkit::app::users;
use pivault_testkit::TestApp;
use serde_json::{json, Value};

on_both_backends!(
    a_full_width_mobile_is_the_ascii_mobile_for_create_and_lookup,
    zero_width_and_bidi_values_are_refused_without_echo,
);

/// Full-width form (U+FF01..U+FF5E) of every printable ASCII character, as Chinese input
/// methods type them.
fn full_width(ascii: &str) -> String {
    ascii
        .chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(u32::from(c) - 0x21 + 0xFF01).unwrap(),
            other => other,
        })
        .collect()
}

async fn lookup(app: &TestApp, by: &str, value: &str) -> Value {
    let r = app
        .post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": by, "value": value, "purpose": "service"}),
        )
        .await;
    assert_eq!(r.status(), 200, "lookup by {by}");
    r.json().await.unwrap()
}

pub async fn a_full_width_mobile_is_the_ascii_mobile_for_create_and_lookup(app: TestApp) {
    // Created with full-width identifiers, found by their ASCII spelling.
    assert_eq!(full_width("13900000071"), "１３９００００００７１");
    let body = json!({"purpose": "service", "fields": [
        {"category": "user.account.id", "value": "u999071"},
        {"category": "user.name", "value": "全角用户"},
        {"category": "user.contact.mobile", "value": full_width("13900000071")},
        {"category": "user.contact.email", "value": full_width("Wide.User@Example.COM")},
        {"category": "user.government_id.id_card", "value": full_width("11010519491231002x")},
    ]});
    let r = app.post("/v1/subjects", &app.app_key, body).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (by, ascii) in [
        ("mobile", "13900000071"),
        ("mobile", "+86 139-0000-0071"),
        ("email", "wide.user@example.com"),
        ("id_card", "11010519491231002X"),
    ] {
        let v = lookup(&app, by, ascii).await;
        assert_eq!(v["count"], 1, "{by}");
        assert_eq!(v["subjects"][0], id.as_str(), "{by}");
    }
    // Stored in canonical ASCII form.
    let (status, v) = app
        .read(&id, "service", "user.contact.mobile,user.contact.email")
        .await;
    assert_eq!(status, 200, "{v}");
    let vals: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["value"].as_str().unwrap())
        .collect();
    assert!(vals.contains(&"+8613900000071"), "{vals:?}");
    assert!(vals.contains(&"wide.user@example.com"), "{vals:?}");

    // And the other way: an imported (ASCII) subject, found by full-width spellings.
    let u = users()
        .into_iter()
        .find(|u| u["mobile"].len() == 11)
        .unwrap();
    let subject = app.subject_of(&u["account_id"]).await;
    for (by, raw) in [
        ("mobile", full_width(&u["mobile"])),
        ("id_card", full_width(&u["id_card_number"])),
        ("email", full_width(u["email"].trim())),
    ] {
        let v = lookup(&app, by, &raw).await;
        let found: Vec<&str> = v["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(found.contains(&subject.as_str()), "{by}: {v}");
    }
}

pub async fn zero_width_and_bidi_values_are_refused_without_echo(app: TestApp) {
    let s = app.subject_of(&users()[0]["account_id"]).await;
    let path = format!("/v1/subjects/{s}/fields");
    let cases = [
        (
            "user.contact.mobile",
            "139\u{200B}00000072",
            "mobile_bad_characters",
        ),
        (
            "user.contact.mobile",
            "\u{202E}13900000072",
            "mobile_bad_characters",
        ),
        (
            "user.contact.email",
            "wide\u{200D}@example.com",
            "email_malformed",
        ),
        (
            "user.government_id.id_card",
            "\u{FEFF}11010519491231002X",
            "id_card_length",
        ),
        ("user.name", "\u{200B}", "value_empty"),
        ("user.name", " \u{2066}\u{00AD}\u{2069} ", "value_empty"),
        // A bidi override makes a name read differently from what is stored; a control
        // character breaks the letter or page it is printed on.
        ("user.name", "陈\u{202E}鹏", "text_malformed"),
        ("user.name", "Chen\u{2067}Peng", "text_malformed"),
        (
            "user.contact.address",
            "北京市\u{7}朝阳区",
            "text_malformed",
        ),
        // Invisible format characters: reads 陈鹏, stored otherwise.
        ("user.name", "陈\u{200B}鹏", "text_malformed"),
        ("user.name", "陈\u{FEFF}鹏", "text_malformed"),
        (
            "user.contact.address",
            "北京市\u{2028}朝阳区",
            "text_malformed",
        ),
    ];
    for (category, value, code) in cases {
        let r = app
            .put(
                &path,
                &app.app_key,
                json!({"purpose": "service", "fields": [{"category": category, "value": value}]}),
            )
            .await;
        assert_eq!(r.status(), 422, "{category} {code}");
        let text = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], code, "{category}: {text}");
        assert_eq!(v["error"]["field"], "fields[0].value");
        let visible: String = value.chars().filter(char::is_ascii_alphanumeric).collect();
        assert!(
            visible.is_empty() || !text.contains(&visible),
            "error body echoes the value: {text}"
        );
    }
    // A record name holding a mobile number is refused: it is stored in clear.
    for record in ["18765195768", "m_187_6519_5768"] {
        let r = app
            .put(
                &path,
                &app.app_key,
                json!({"purpose": "service", "fields": [{"category": "user.name", "value": "陈鹏", "record": record}]}),
            )
            .await;
        assert_eq!(r.status(), 422, "{record}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("text_holds_pi") && !text.contains(record),
            "{text}"
        );
    }
    // An unpaired surrogate escape encodes no character: text_malformed, not a type error.
    let r = reqwest::Client::new()
        .put(format!("{}{path}", app.base))
        .bearer_auth(&app.app_key)
        .header("content-type", "application/json")
        .body(r#"{"purpose": "service", "fields": [{"category": "user.name", "value": "陈\ud800鹏"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "text_malformed", "{v}");
    // Lookups refuse them too, and never find anyone by them.
    let r = app
        .post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": "mobile", "value": "139\u{200B}00000072", "purpose": "service"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "mobile_bad_characters"
    );
}
