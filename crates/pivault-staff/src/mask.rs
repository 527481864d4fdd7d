//! Masking of PI values shown to an operator whose access is [`StaffAccess::Masked`]
//! (GB/T 35273-2020 §3.14 de-identification by display masking; policy §8.1).
//!
//! Invariants: works on `char`s, so CJK names and full-width text are never cut inside a
//! character; never panics; a non-empty value without `*` never comes back unchanged — a
//! value too short for its rule's "keep the first 6" is cut further rather than shown whole.
//!
//! [`StaffAccess::Masked`]: crate::StaffAccess::Masked

/// What every masked-out character is shown as.
const STAR: char = '*';
/// Shown for categories without a specific rule: no shape, no length.
const OPAQUE: &str = "***";

/// Masks `value`, a value of category `category` (a pivault category key such as
/// `user.contact.mobile`), for display to an operator who may only see it masked.
///
/// Rules, by category key:
/// - `*.mobile`: keeps the last 4 and everything before the 4 digits before them:
///   `+8615563170669` → `+86155****0669`, `15563170669` → `155****0669`;
/// - `*.email`: the first character of the local part, six stars, then the domain:
///   `foo.bar@example.com` → `f******@example.com` (the star count hides the length);
/// - `user.name`, `*.name`: the first character (the family name for Chinese names), then
///   one star for each further character: `陈鹏` → `陈*`, `王淑英` → `王**`;
/// - `user.government_id.*`, `user.financial.*`: the first 6 and the last 4, stars between:
///   `11010519491231002X` → `110105********002X` (the region code and check digits stay, as
///   on printed receipts);
/// - `*.address`: the first 6 characters then `***`;
/// - anything else: `***`.
///
/// An empty value stays empty (there is nothing to hide). A value too short for its rule
/// keeps at most a quarter of its characters at each end (`12345` as an ID number →
/// `1***5`), so the full value is never returned.
///
/// ```
/// use pivault_staff::mask;
/// assert_eq!(mask("user.contact.mobile", "+8615563170669"), "+86155****0669");
/// assert_eq!(mask("user.contact.email", "foo.bar@example.com"), "f******@example.com");
/// assert_eq!(mask("user.name", "王淑英"), "王**");
/// assert_eq!(mask("user.government_id.id_card", "11010519491231002X"), "110105********002X");
/// assert_eq!(mask("user.support.ticket", "anything"), "***");
/// ```
#[must_use]
pub fn mask(category: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let last = category.rsplit('.').next().unwrap_or(category);
    if category.starts_with("user.government_id.") || category.starts_with("user.financial.") {
        keep_ends(value, 6, 4)
    } else if last == "mobile" {
        let n = value.chars().count();
        keep_ends(value, n.saturating_sub(8), 4)
    } else if last == "email" {
        mask_email(value)
    } else if last == "name" {
        mask_name(value)
    } else if last == "address" {
        mask_address(value)
    } else {
        OPAQUE.to_owned()
    }
}

/// Keeps `head` chars at the start and `tail` at the end, a star for each char between.
/// If that would hide fewer than 4 chars (or nothing), keeps only `n / 4` at each end.
fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (head, tail) = if head + tail + 4 > n {
        (head.min(n / 4), tail.min(n / 4))
    } else {
        (head, tail)
    };
    let mut out = String::with_capacity(value.len());
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n(STAR, n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

fn mask_email(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((local, domain)) => {
            let mut out: String = local.chars().take(1).collect();
            out.extend(std::iter::repeat_n(STAR, 6));
            out.push('@');
            out.push_str(domain);
            out
        }
        None => OPAQUE.to_owned(),
    }
}

fn mask_name(value: &str) -> String {
    let n = value.chars().count();
    if n == 1 {
        return STAR.to_string();
    }
    let mut out: String = value.chars().take(1).collect();
    out.extend(std::iter::repeat_n(STAR, n - 1));
    out
}

fn mask_address(value: &str) -> String {
    let n = value.chars().count();
    // Keep 6, but never more than half of a short address.
    let keep = if n > 6 { 6 } else { n / 2 };
    let mut out: String = value.chars().take(keep).collect();
    out.push_str(OPAQUE);
    out
}

#[cfg(test)]
mod tests {
    use super::mask;
    use proptest::prelude::*;

    #[test]
    fn mobile_numbers_keep_country_code_prefix_and_last_four() {
        assert_eq!(
            mask("user.contact.mobile", "+8615563170669"),
            "+86155****0669"
        );
        assert_eq!(mask("user.contact.mobile", "15563170669"), "155****0669");
        assert_eq!(mask("user.guardian.mobile", "15563170669"), "155****0669");
    }

    #[test]
    fn emails_keep_first_letter_and_domain() {
        assert_eq!(
            mask("user.contact.email", "foo.bar@example.com"),
            "f******@example.com"
        );
        assert_eq!(
            mask("user.contact.email", "@example.com"),
            "******@example.com"
        );
        assert_eq!(mask("user.contact.email", "not-an-email"), "***");
    }

    #[test]
    fn chinese_names_keep_the_family_name_only() {
        assert_eq!(mask("user.name", "陈鹏"), "陈*");
        assert_eq!(mask("user.name", "王淑英"), "王**");
        assert_eq!(mask("user.name", "欧阳娜娜"), "欧***");
        assert_eq!(mask("user.guardian.name", "陈"), "*");
    }

    #[test]
    fn id_card_and_bank_card_keep_first_six_and_last_four() {
        assert_eq!(
            mask("user.government_id.id_card", "11010519491231002X"),
            "110105********002X"
        );
        assert_eq!(
            mask("user.financial.bank_card", "6222020200112233445"),
            "622202*********3445"
        );
    }

    #[test]
    fn addresses_keep_the_first_six_characters() {
        assert_eq!(
            mask("user.contact.address", "北京市海淀区中关村大街1号"),
            "北京市海淀区***"
        );
        assert_eq!(mask("user.contact.address", "北京"), "北***");
    }

    #[test]
    fn other_categories_are_fully_opaque() {
        assert_eq!(mask("user.support.ticket", "my id is 110105..."), "***");
        assert_eq!(mask("unknown", "x"), "***");
    }

    #[test]
    fn empty_and_short_values_never_panic_nor_show_whole() {
        for category in [
            "user.contact.mobile",
            "user.contact.email",
            "user.name",
            "user.government_id.id_card",
            "user.financial.bank_card",
            "user.contact.address",
            "user.device.os",
        ] {
            assert_eq!(mask(category, ""), "");
            for value in ["a", "ab", "abc", "陈鹏", "1234", "12345", "王淑英李"] {
                assert_ne!(mask(category, value), value, "{category} {value}");
            }
        }
        assert_eq!(mask("user.government_id.id_card", "12345"), "1***5");
        assert_eq!(mask("user.contact.mobile", "1234567"), "******7");
    }

    proptest! {
        #[test]
        fn mask_never_returns_a_value_of_four_or_more_chars_unchanged(
            category in prop::sample::select(vec![
                "user.contact.mobile", "user.contact.email", "user.name", "user.guardian.name",
                "user.government_id.id_card", "user.financial.bank_card",
                "user.contact.address", "user.support.ticket", "",
            ]),
            // Stars excluded: an already-masked value may legitimately mask to itself.
            value in "[^*]{4,40}",
        ) {
            prop_assert_ne!(mask(category, &value), value);
        }

        #[test]
        fn mask_never_panics_on_any_input(category in ".{0,40}", value in ".{0,40}") {
            let _ = mask(&category, &value);
        }
    }
}
