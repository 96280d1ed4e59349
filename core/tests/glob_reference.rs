//! Our glob matcher against globset (with `*` stopping at `/`), the crate it
//! replaced in the policy: random patterns over a small alphabet, matched
//! against random paths, must get the same answer from both. Slashes are
//! kept out of `[...]`, where the two differ on purpose (ours never lets a
//! class match `/`, as a shell would not), and patterns ending in `/` are
//! left out: the policy refuses them, since no file's path ends so. Empty
//! alternatives (`{,.bak}`) and braces that end or start beside `**`
//! (`{a,b/}**`) are ours alone: we expand braces first, as a shell does;
//! globset drops empty alternatives and reads `}**` as `*`.

use fadvise_shim_core::policy::Glob;
use globset::GlobBuilder;
use proptest::prelude::*;

fn pattern_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop_oneof![Just("a"), Just("b"), Just("/"), Just(".")].prop_map(str::to_owned),
        2 => Just("*".to_owned()),
        1 => Just("?".to_owned()),
        2 => Just("**".to_owned()),
        1 => Just("**/".to_owned()),
        1 => Just("/**".to_owned()),
        1 => prop_oneof![Just("[ab]"), Just("[!a]"), Just("[a-c]"), Just("[[:alpha:]]")].prop_map(str::to_owned),
        1 => Just("{a,b/c}".to_owned()),
        1 => Just("{a*b,.c}".to_owned()),
    ]
}

fn path_piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just("/"),
        Just("."),
        Just("ab")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_globset(
        pattern in prop::collection::vec(pattern_piece(), 1..7)
            .prop_map(|p| p.concat())
            .prop_filter("ends in /", |p| !p.ends_with('/')),
        path in prop::collection::vec(path_piece(), 1..9).prop_map(|p| p.concat()),
    ) {
        let reference = GlobBuilder::new(&pattern).literal_separator(true).build();
        let ours = Glob::new(&pattern);
        prop_assert_eq!(ours.is_ok(), reference.is_ok(), "pattern {}", pattern);
        if let (Ok(ours), Ok(reference)) = (ours, reference) {
            let expected = reference.compile_matcher().is_match(&path);
            prop_assert_eq!(ours.is_match(path.as_bytes()), expected, "pattern {} path {}", pattern, path);
        }
    }
}
