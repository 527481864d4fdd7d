//! Printable letter batches (policy §8.3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_notify::{letter_batch_html, Letter};

fn letter(reference: &str, name: &str, body: &str) -> Letter {
    Letter {
        reference: reference.to_owned(),
        name: name.to_owned(),
        address: "北京市海淀区中关村大街 1 号\n100080".to_owned(),
        subject: "个人信息删除通知".to_owned(),
        body: body.to_owned(),
    }
}

#[test]
fn a_batch_is_one_printable_utf8_html5_document_with_a_page_per_letter() {
    let html = letter_batch_html(
        "2025-06 删除通知",
        &[
            letter("L-1", "张三", "您好：\n\n您的个人信息已删除。\n  此致"),
            letter("L-2", "李四", "第二封"),
        ],
    );
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<title>2025-06 删除通知</title>"));
    assert!(html.contains("size: A4"));
    assert!(html.contains("page-break-after: always"));
    assert!(html.contains("white-space: pre-wrap"));
    assert_eq!(html.matches("<section class=\"letter\">").count(), 2);
    // Chinese text and newlines survive as written, in order.
    let first = html.find("张三").unwrap();
    assert!(html.find("李四").unwrap() > first);
    assert!(html.contains("您好：\n\n您的个人信息已删除。\n  此致"));
    assert!(html.contains("北京市海淀区中关村大街 1 号\n100080"));
    // Self-contained: nothing to fetch.
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
}

#[test]
fn every_value_is_html_escaped() {
    let mut l = letter(
        "R&D<1>",
        "<script>alert(1)</script>",
        "a < b && c > \"d\" 'e'",
    );
    l.address = "<img src=x onerror=alert(1)>".to_owned();
    l.subject = "</h2><h1>".to_owned();
    let html = letter_batch_html("</title><script>x()</script>", &[l]);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<h1>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("R&amp;D&lt;1&gt;"));
    assert!(html.contains("a &lt; b &amp;&amp; c &gt; &quot;d&quot; &#39;e&#39;"));
    assert!(html.contains("<title>&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;</title>"));
}

#[test]
fn an_empty_batch_is_still_a_document() {
    let html = letter_batch_html("无", &[]);
    assert!(html.contains("<body>") && html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<section"));
}

#[test]
fn letter_debug_shows_only_the_reference() {
    let shown = format!("{:?}", letter("L-9", "王五", "秘密内容"));
    assert!(shown.contains("L-9"));
    for pi in ["王五", "北京", "秘密", "删除通知"] {
        assert!(!shown.contains(pi), "{shown}");
    }
}
