//! The dump signal of a policy, found without parsing it.
//!
//! The preload library must install its dump signal at start-up, but a full
//! TOML parse costs every process on a host well over 100 µs when it is the
//! first thing its code does. Most policies say nothing about the signal,
//! or say it in the plain form `signal = "…"` under `[dump]`; this scan
//! recognises exactly those and answers `None` for anything else (a
//! multi-line string, an inline table, a dotted key, a second mention), so
//! that the caller falls back to the full parser.

use super::signal::parse_signal;
use crate::policy::{DumpConfig, DumpSignal};

/// The dump signal `text` sets, when a line-by-line reading is sure of it.
pub fn quick_dump_signal(text: &[u8]) -> Option<DumpSignal> {
    let text = std::str::from_utf8(text).ok()?;
    // Allocates nothing: the preload library runs this at start-up.
    let mut in_dump_table = false;
    let mut found = None;
    for line in text.lines() {
        if line.contains("\"\"\"") || line.contains("'''") {
            return None;
        }
        let code = match line.split_once('#') {
            // A `#` after a quote may sit inside a string: not sure.
            Some((code, _)) if code.contains(['"', '\'']) && line.contains("signal") => {
                return None
            }
            Some((code, _)) if !code.contains(['"', '\'']) => code,
            _ => line,
        }
        .trim();
        if code.starts_with('[') {
            let header = code.chars().filter(|c| !c.is_whitespace());
            in_dump_table = header.eq("[dump]".chars());
            continue;
        }
        if !code.contains("signal") {
            continue;
        }
        let value = code
            .strip_prefix("signal")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::trim)
            .and_then(|value| value.strip_prefix('"')?.strip_suffix('"'));
        match value {
            Some(name) if in_dump_table && found.is_none() && !name.contains(['"', '\\']) => {
                found = Some(parse_signal(name).ok()?);
            }
            _ => return None,
        }
    }
    Some(found.unwrap_or(DumpConfig::default().signal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy;

    #[test]
    fn agrees_with_the_parser_where_it_answers() {
        let policies = [
            "",
            "# signal = \"SIGUSR2\"\n",
            "[dump]\nsignal = \"SIGUSR2\"\n",
            "[dump]\nsignal=\"none\" # no dumps\non_exit = true\n",
            "[ dump ]\n  signal = \"rtmin+3\"\n[[rule]]\ncall = \"fsync\"\naction = \"drop\"\n",
            "[[rule]]\nname = \"signal-free\"\ncall = \"*\"\naction = \"drop\"\n",
            include_str!("../../../../policy.example.toml"),
        ];
        for text in policies {
            let quick = quick_dump_signal(text.as_bytes());
            let parsed = parse_policy(text).map(|policy| policy.dump.signal).ok();
            if quick.is_some() {
                assert_eq!(quick, parsed, "{text}");
            }
        }
        assert_eq!(quick_dump_signal(b""), Some(DumpSignal::Usr1));
        let example = include_bytes!("../../../../policy.example.toml");
        assert_eq!(
            quick_dump_signal(example),
            Some(DumpSignal::Usr1),
            "the example is read quickly"
        );
        assert_eq!(
            quick_dump_signal(b"[dump]\nsignal = \"SIGUSR2\"\n"),
            Some(DumpSignal::Usr2)
        );
    }

    #[test]
    fn is_unsure_of_every_other_form() {
        for text in [
            "dump = { signal = \"SIGUSR2\" }\n",
            "dump.signal = \"SIGUSR2\"\n",
            "[rule]\nsignal = \"SIGUSR2\"\n",
            "[dump]\nsignal = \"SIGUSR2\"\nsignal = \"SIGUSR1\"\n",
            "[dump]\nsignal = 'SIGUSR2'\n",
            "[dump]\nsignal = \"SIGKILL\"\n",
            "x = \"\"\"\n[dump]\nsignal = \"SIGUSR2\"\n\"\"\"\n",
            "[dump]\nsignal = \"SIGUSR2\" # \"quoted\"\n",
            "[[rule]]\nname = \"a # signal\"\n",
        ] {
            assert_eq!(quick_dump_signal(text.as_bytes()), None, "{text}");
        }
        assert_eq!(quick_dump_signal(b"\xff"), None);
    }
}
