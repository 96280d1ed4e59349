//! The dump signal of a policy, found without parsing it.
//!
//! The preload library must install its dump signal at start-up, but a full
//! TOML parse costs every process on a host well over 100 µs when it is the
//! first thing its code does. Most policies say nothing about the signal,
//! or say it in the plain form `signal = "…"` under `[dump]`; this scan
//! recognises exactly those and answers `None` for anything else (a
//! multi-line string, an inline table, a dotted key, a second mention), so
//! that the caller falls back to the full parser.

use super::signal::{parse_signal, plain_signal};
use crate::policy::{DumpConfig, DumpSignal};

/// The dump signal `text` sets, when a line-by-line reading is sure of it.
pub fn quick_dump_signal(text: &[u8]) -> Option<DumpSignal> {
    let text = std::str::from_utf8(text).ok()?;
    // Allocates nothing, and past the UTF-8 check calls nothing that is not
    // inlined here: the preload library runs this at every process's
    // start-up, where each library function placed elsewhere in the
    // library's code costs a page fault, and `str::contains` with a string
    // pattern sets up a two-way searcher per call (the example policy's
    // scan cost 16 µs that way). Comment lines, most of a documented
    // policy, are passed over at their first character.
    let mut in_dump_table = false;
    let mut found = None;
    let mut rest = text;
    while !rest.is_empty() {
        let end = position(rest.as_bytes(), b'\n').unwrap_or(rest.len());
        let line = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        // A line that starts with `#` is a comment: it cannot be inside a
        // multi-line string, since the line that opened one returned.
        let start = trim(line);
        if start.is_empty() || start.starts_with('#') {
            continue;
        }
        let bytes = line.as_bytes();
        if contains(bytes, b"\"\"\"") || contains(bytes, b"'''") {
            return None;
        }
        let code = match position(bytes, b'#') {
            // A `#` after a quote may sit inside a string: not sure.
            Some(hash) if has_quote(&bytes[..hash]) && contains(bytes, b"signal") => return None,
            Some(hash) if !has_quote(&bytes[..hash]) => line.get(..hash).unwrap_or_default(),
            _ => line,
        };
        let code = trim(code);
        if code.starts_with('[') {
            in_dump_table = is_dump_header(code);
            continue;
        }
        if !contains(code.as_bytes(), b"signal") {
            continue;
        }
        match signal_value(code) {
            Some(name) if in_dump_table && found.is_none() && !has_quote_or_backslash(name) => {
                found = Some(plain_signal(name).or_else(|| parse_signal(name).ok())?);
            }
            _ => return None,
        }
    }
    Some(found.unwrap_or(DumpConfig::default().signal))
}

/// `NAME` of `signal = "NAME"` (blanks allowed around `=`).
fn signal_value(code: &str) -> Option<&str> {
    let value = trim(strip_prefix(trim(strip_prefix(code, "signal")?), "=")?);
    let quoted = strip_prefix(value, "\"")?;
    let name_length = quoted.len().checked_sub(1)?;
    quoted.ends_with('"').then(|| quoted.get(..name_length))?
}

/// `[dump]`, with blanks anywhere.
fn is_dump_header(code: &str) -> bool {
    let mut expected = "[dump]".chars();
    code.chars()
        .filter(|c| !c.is_whitespace())
        .all(|c| expected.next() == Some(c))
        && expected.next().is_none()
}

/// As `str::trim` (Unicode white space), in loops that stay inline.
#[inline(always)]
fn trim(text: &str) -> &str {
    let mut text = text;
    while let Some(c) = text.chars().next().filter(|c| c.is_whitespace()) {
        text = text.get(c.len_utf8()..).unwrap_or_default();
    }
    while let Some(c) = text.chars().next_back().filter(|c| c.is_whitespace()) {
        text = text.get(..text.len() - c.len_utf8()).unwrap_or_default();
    }
    text
}

fn strip_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.as_bytes()
        .starts_with(prefix.as_bytes())
        .then(|| text.get(prefix.len()..))?
}

fn position(bytes: &[u8], wanted: u8) -> Option<usize> {
    bytes.iter().position(|&byte| byte == wanted)
}

fn has_quote(bytes: &[u8]) -> bool {
    bytes.iter().any(|&byte| byte == b'"' || byte == b'\'')
}

fn has_quote_or_backslash(text: &str) -> bool {
    text.bytes().any(|byte| byte == b'"' || byte == b'\\')
}

/// Whether `needle` (a few bytes) occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
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
    fn reads_crlf_lines_and_passes_over_comments_whatever_they_hold() {
        for (text, signal) in [
            ("[dump]\r\nsignal = \"SIGUSR2\"\r\n", DumpSignal::Usr2),
            (
                "# a \"\"\" or a ''' in a comment\n[dump]\nsignal = \"usr2\"",
                DumpSignal::Usr2,
            ),
            (
                "\u{3000}[ dump ]\t\n\tsignal\t=\t\"SIGRTMIN\" \u{a0}\n",
                DumpSignal::RtMin(0),
            ),
            ("  # signal = \"SIGUSR2\"\n", DumpSignal::Usr1),
        ] {
            assert_eq!(quick_dump_signal(text.as_bytes()), Some(signal), "{text}");
        }
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
