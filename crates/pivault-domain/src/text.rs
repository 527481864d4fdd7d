//! Unicode hygiene for typed input: NFKC folding and invisible characters.
//!
//! Input methods on Chinese systems type full-width forms (`１５６９８６９４１１１`,
//! `ＡＢＣ＠ｅｘａｍｐｌｅ．ｃｏｍ`); copy and paste brings zero-width and bidi control
//! characters along. Identifiers are folded with Unicode Normalization Form KC
//! (UAX #15) before they are checked, so a full-width spelling is the same identifier
//! (and the same blind-index key) as its ASCII one. Invisible characters are not folded
//! away: NFKC keeps them, and each identifier's character check then refuses them. A
//! free-text value made only of invisible characters and white space is blank.
//!
//! Invariants: [`nfkc`] is idempotent (UAX #15 §1.2, normal forms are closed under
//! normalization) and never panics; ASCII input is returned borrowed, unchanged.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization as _;

/// `raw` in Unicode Normalization Form KC (UAX #15): compatibility characters folded to
/// their canonical equivalents, e.g. full-width `１`→`1`, `Ｘ`→`X`, `＠`→`@`, `＋`→`+`,
/// ideographic space U+3000 → U+0020. ASCII input (always NFKC) is returned as is.
///
/// ```
/// use pivault_domain::text::nfkc;
/// assert_eq!(nfkc("１５６９８６９４１１１"), "15698694111");
/// assert_eq!(nfkc("plain"), "plain");
/// ```
#[must_use]
pub fn nfkc(raw: &str) -> Cow<'_, str> {
    if raw.is_ascii() {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.nfkc().collect())
    }
}

/// Whether `c` renders as nothing: a control character (`Cc`), or a default-ignorable
/// code point of Unicode (`DerivedCoreProperties.txt`, `Default_Ignorable_Code_Point`:
/// soft hyphen U+00AD, combining grapheme joiner U+034F, Arabic letter mark U+061C,
/// Hangul fillers, Khmer inherent vowels, Mongolian free variation selectors and vowel
/// separator, zero-width space/non-joiner/joiner U+200B–U+200D, the direction marks and
/// bidi embeddings, overrides and isolates U+200E–U+200F, U+202A–U+202E,
/// U+2066–U+2069, the invisible operators U+2060–U+206F, variation selectors, the
/// byte-order mark U+FEFF, U+FFF0–U+FFF8 and the tag characters U+E0000–U+E0FFF),
/// plus the blank Braille pattern U+2800, which also prints as nothing.
#[must_use]
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Whether `s` shows nothing: every character is white space or [`is_invisible`]. An
/// empty string is blank. A name, product or ticket text that is blank is refused like an
/// empty one (a name that is one U+200B names nobody).
///
/// ```
/// use pivault_domain::text::is_blank;
/// assert!(is_blank(" \u{200B}\u{FEFF} "));
/// assert!(!is_blank("陈\u{200D}鹏"));
/// ```
#[must_use]
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Whether `c` may not appear inside a stored text value: a control character (`Cc`) other
/// than tab, line feed and carriage return; a bidirectional formatting character (the Arabic
/// letter mark U+061C, the marks U+200E–U+200F, the embeddings and overrides U+202A–U+202E
/// and the isolates U+2066–U+2069); or an invisible format or separator character that no
/// script needs inside a name or an address (soft hyphen U+00AD, Mongolian vowel separator
/// U+180E, zero-width space U+200B, line and paragraph separators U+2028–U+2029, word joiner
/// and invisible operators U+2060–U+2064, a byte-order mark U+FEFF inside text, interlinear
/// annotation U+FFF9–U+FFFB). Such a value reads differently from what is stored (Unicode
/// TR #36 §2.1, "Trojan Source", CVE-2021-42574), and a control character breaks the letters,
/// messages and pages it is shown in. The joiners U+200C–U+200D and the variation selectors
/// are kept: scripts, emoji and ideographic variants of CJK names need them.
///
/// ```
/// use pivault_domain::text::is_forbidden_in_text;
/// assert!(is_forbidden_in_text('\u{202E}'));
/// assert!(is_forbidden_in_text('\u{0}'));
/// assert!(!is_forbidden_in_text('\n'));
/// assert!(!is_forbidden_in_text('\u{200D}')); // the joiner is part of some scripts and emoji
/// ```
#[must_use]
pub fn is_forbidden_in_text(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_width_forms_fold_to_ascii() {
        assert_eq!(nfkc("１５６９８６９４１１１"), "15698694111");
        assert_eq!(nfkc("ＭＦ＠Ｅｘａｍｐｌｅ．ｎｅｔ"), "MF@Example.net");
        assert_eq!(
            nfkc("１１０１０５１９４９１２３１００２ｘ"),
            "11010519491231002x"
        );
        assert_eq!(nfkc("＋８６\u{3000}１５５"), "+86 155");
    }

    #[test]
    fn invisible_characters_survive_folding_so_checks_see_them() {
        for c in [
            '\u{00AD}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}',
            '\u{202E}', '\u{2066}', '\u{2069}', '\u{FEFF}', '\u{2060}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", u32::from(c));
            assert!(
                nfkc(&format!("1{c}2")).contains(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
        for c in ['a', '陈', '１', ' ', '\u{3000}', '@'] {
            assert!(!is_invisible(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn blank_means_nothing_visible() {
        assert!(is_blank(""));
        assert!(is_blank("\u{200B}"));
        assert!(is_blank("\u{202E}\u{2066}\t\u{3000}\u{00AD}"));
        assert!(!is_blank("\u{200B}x"));
        assert!(!is_blank("👩\u{200D}💻"));
    }

    proptest! {
        #[test]
        fn nfkc_is_idempotent(raw in "\\PC{0,40}|[\u{FF01}-\u{FF5E}\u{3000}\u{200B}-\u{200F}]{0,20}") {
            let once = nfkc(&raw).into_owned();
            prop_assert_eq!(nfkc(&once), once.as_str());
        }

        #[test]
        fn nfkc_and_blank_never_panic(raw in any::<String>()) {
            let _ = is_blank(&nfkc(&raw));
        }
    }
}
