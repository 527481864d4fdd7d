//! Paper letters (policy §8.3 lists letters among the channels for notices): a batch of
//! letters rendered as one printable HTML document that an operator prints and posts.

use std::fmt;

/// One letter to one PI subject. Every field but `reference` holds PI; `Debug` shows only
/// the reference.
#[derive(Clone, PartialEq, Eq)]
pub struct Letter {
    /// The operator's reference for this letter (e.g. the outbox or DSR id), printed in
    /// the letter's top corner so a returned letter can be matched. Not PI.
    pub reference: String,
    /// Addressee name, UTF-8, one line.
    pub name: String,
    /// Postal address, UTF-8; line breaks are kept.
    pub address: String,
    /// Subject line, UTF-8, one line.
    pub subject: String,
    /// Plain-text body, UTF-8; line breaks and runs of spaces are kept.
    pub body: String,
}

impl fmt::Debug for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Letter")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// Print styles: A4 pages (ISO 216, 210 × 297 mm) with 20 mm margins, one letter per
/// page (`page-break-after: always`, CSS 2.1 §13.3.1, and its CSS Fragmentation 3 form
/// `break-after: page`), text kept as written (`white-space: pre-wrap`).
const STYLE: &str = "\
@page { size: A4; margin: 20mm; }
html { font-family: \"Noto Serif CJK SC\", \"Source Han Serif SC\", \"SimSun\", serif; font-size: 11pt; line-height: 1.6; }
body { margin: 0; }
section.letter { page-break-after: always; break-after: page; }
section.letter:last-of-type { page-break-after: auto; break-after: auto; }
.reference { text-align: right; font-size: 9pt; color: #444; }
.address { white-space: pre-wrap; margin: 10mm 0 12mm; }
h2 { font-size: 13pt; margin: 0 0 6mm; }
.body { white-space: pre-wrap; }
@media screen { section.letter { max-width: 170mm; margin: 10mm auto; padding-bottom: 10mm; border-bottom: 1px dashed #999; } }
";

/// Renders `letters` as one self-contained HTML5 document (no external resources) for
/// printing: `<!DOCTYPE html>`, `<html lang="zh-CN">`, `<meta charset="utf-8">`, `title`
/// as the document title, then one `<section class="letter">` per letter in order, each on
/// its own A4 page (reference, name, address, subject, body).
///
/// Every caller value (title and all letter fields) is HTML-escaped (`&`, `<`, `>`, `"`,
/// `'`; HTML Living Standard §13.1.2 / §13.5), so names or bodies cannot inject markup.
/// Text is UTF-8 throughout, so Chinese survives as written. An empty slice gives a
/// document with no letters.
pub fn letter_batch_html(title: &str, letters: &[Letter]) -> String {
    let size: usize = letters
        .iter()
        .map(|l| l.name.len() + l.address.len() + l.subject.len() + l.body.len() + 300)
        .sum();
    let mut out = String::with_capacity(STYLE.len() + size + 300);
    out.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<title>");
    escape_into(&mut out, title);
    out.push_str("</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
    for l in letters {
        out.push_str("<section class=\"letter\">\n<p class=\"reference\">");
        escape_into(&mut out, &l.reference);
        out.push_str("</p>\n<p class=\"address\"><strong class=\"name\">");
        escape_into(&mut out, &l.name);
        out.push_str("</strong>\n");
        escape_into(&mut out, &l.address);
        out.push_str("</p>\n<h2>");
        escape_into(&mut out, &l.subject);
        out.push_str("</h2>\n<div class=\"body\">");
        escape_into(&mut out, &l.body);
        out.push_str("</div>\n</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Appends `s` with the five HTML-significant characters replaced by character references:
/// `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, `"` → `&quot;`, `'` → `&#39;`. Safe in text
/// and in quoted attribute values.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    #[test]
    fn escape_replaces_the_five_significant_characters_only() {
        let mut out = String::new();
        escape_into(&mut out, "a<b>&\"c\" 'd' 张三");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&quot; &#39;d&#39; 张三");
    }
}
