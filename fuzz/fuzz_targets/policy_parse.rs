//! The policy parser (`Policy::parse`, TOML text) and, from the same bytes, the Cedar staff
//! policy loader (`StaffPolicy::load` against the default policy).
//!
//! First byte even: the input is a policy file; odd: a staff policy. Asserts: never panics; a
//! policy that parses has a stable hash and reparses from the same text to the same hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pivault_domain::policy::Policy;
use std::sync::OnceLock;

fn default_policy() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        let text = include_str!("../../policies/default.toml");
        Policy::parse(text).unwrap_or_else(|e| panic!("policies/default.toml: {e:?}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(p) = Policy::parse(text) {
            let again = Policy::parse(text).expect("a policy that parsed once parses again");
            assert_eq!(p.hash(), again.hash());
            for c in p.categories() {
                assert!(p.category(&c.key).is_some());
            }
        }
    } else {
        let _ = pivault_staff::StaffPolicy::load(text, "staff.cedar", default_policy());
    }
});
