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
    // Allocates nothing, and calls nothing that is not inlined here (it
    // works on bytes, as `str` methods are compiled elsewhere in the
    // library): the preload library runs this at every process's start-up,
    // where each function placed in another part of the library's code is a
    // page fault, and `str::contains` with a string pattern sets up a
    // two-way searcher per call (the example policy's scan cost 16 µs that
    // way). Comment lines, most of a documented policy, are passed over at
    // their first character.
    if !is_utf8(text) {
        return None;
    }
    let mut in_dump_table = false;
    let mut found = None;
    let mut rest = text;
    while !rest.is_empty() {
        let end = position(rest, b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        // A line that starts with `#` is a comment: it cannot be inside a
        // multi-line string, since the line that opened one returned.
        let start = trim(line);
        if start.is_empty() || start[0] == b'#' {
            continue;
        }
        if contains(line, b"\"\"\"") || contains(line, b"'''") {
            return None;
        }
        let code = match position(line, b'#') {
            // A `#` after a quote may sit inside a string: not sure.
            Some(hash) if has_quote(&line[..hash]) && contains(line, b"signal") => return None,
            Some(hash) if !has_quote(&line[..hash]) => &line[..hash],
            _ => line,
        };
        let code = trim(code);
        if code.first() == Some(&b'[') {
            in_dump_table = is_dump_header(code);
            continue;
        }
        if !contains(code, b"signal") {
            continue;
        }
        match signal_value(code) {
            Some(name) if in_dump_table && found.is_none() && !has_quote_or_backslash(name) => {
                let named = || parse_signal(std::str::from_utf8(name).ok()?).ok();
                found = Some(plain_signal(name).or_else(named)?);
            }
            _ => return None,
        }
    }
    Some(found.unwrap_or(DumpConfig::default().signal))
}

/// `NAME` of `signal = "NAME"` (blanks allowed around `=`).
fn signal_value(code: &[u8]) -> Option<&[u8]> {
    let value = trim(trim(code.strip_prefix(b"signal")?).strip_prefix(b"=")?);
    value.strip_prefix(b"\"")?.strip_suffix(b"\"")
}

/// `[dump]`, with blanks anywhere (ASCII ones: a header with others is not
/// recognised, and the scan is then unsure of a signal under it).
fn is_dump_header(code: &[u8]) -> bool {
    let mut expected = b"[dump]".iter();
    code.iter()
        .filter(|byte| !byte.is_ascii_whitespace())
        .all(|byte| expected.next() == Some(byte))
        && expected.next().is_none()
}

/// As `str::trim` (Unicode white space), on UTF-8 bytes.
#[inline(always)]
fn trim(text: &[u8]) -> &[u8] {
    let mut text = text;
    while let Some((c, length)) = first_char(text) {
        if !c.is_whitespace() {
            break;
        }
        text = text.get(length..).unwrap_or_default();
    }
    while let Some((c, length)) = last_char(text) {
        if !c.is_whitespace() {
            break;
        }
        text = text.get(..text.len() - length).unwrap_or_default();
    }
    text
}

/// The character valid UTF-8 `text` starts with, and its length in bytes.
#[inline(always)]
fn first_char(text: &[u8]) -> Option<(char, usize)> {
    let first = *text.first()?;
    let (length, bits) = match first {
        0x00..=0x7f => return Some((char::from(first), 1)),
        0xc0..=0xdf => (2, first & 0x1f),
        0xe0..=0xef => (3, first & 0x0f),
        _ => (4, first & 0x07),
    };
    let mut code = u32::from(bits);
    for byte in text.get(1..length)? {
        code = code << 6 | u32::from(byte & 0x3f);
    }
    Some((char::from_u32(code)?, length))
}

/// The character valid UTF-8 `text` ends with, and its length in bytes.
#[inline(always)]
fn last_char(text: &[u8]) -> Option<(char, usize)> {
    let start = (text.len().saturating_sub(4)..text.len())
        .rev()
        .find(|&index| text[index] & 0xc0 != 0x80)?;
    first_char(&text[start..]).filter(|&(_, length)| start + length == text.len())
}

/// As `std::str::from_utf8(bytes).is_ok()`, inline, ASCII 8 bytes at a time.
fn is_utf8(bytes: &[u8]) -> bool {
    let mut index = 0;
    while index < bytes.len() {
        if let Some(word) = word_at(bytes, index) {
            if word & HIGH_BITS == 0 {
                index += 8;
                continue;
            }
        }
        let (second, more) = match bytes[index] {
            0x00..=0x7f => {
                index += 1;
                continue;
            }
            0xc2..=0xdf => (0x80..=0xbf, 0),
            0xe0 => (0xa0..=0xbf, 1),
            0xe1..=0xec | 0xee..=0xef => (0x80..=0xbf, 1),
            0xed => (0x80..=0x9f, 1),
            0xf0 => (0x90..=0xbf, 2),
            0xf1..=0xf3 => (0x80..=0xbf, 2),
            0xf4 => (0x80..=0x8f, 2),
            _ => return false,
        };
        if !bytes
            .get(index + 1)
            .is_some_and(|byte| second.contains(byte))
        {
            return false;
        }
        let continuation = bytes.get(index + 2..index + 2 + more);
        if !continuation.is_some_and(|tail| tail.iter().all(|byte| byte & 0xc0 == 0x80)) {
            return false;
        }
        index += 2 + more;
    }
    true
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The 8 bytes at `index`, if there are that many.
#[inline(always)]
fn word_at(bytes: &[u8], index: usize) -> Option<u64> {
    let word: [u8; 8] = bytes.get(index..index.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(word))
}

/// The first `wanted` in `bytes`, looked for 8 bytes at a time.
fn position(bytes: &[u8], wanted: u8) -> Option<usize> {
    let mut index = 0;
    while let Some(word) = word_at(bytes, index) {
        // A byte of `word ^ pattern` is zero where `wanted` is.
        let matches = word ^ (LOW_BITS * u64::from(wanted));
        if matches.wrapping_sub(LOW_BITS) & !matches & HIGH_BITS != 0 {
            break;
        }
        index += 8;
    }
    Some(
        index
            + bytes
                .get(index..)?
                .iter()
                .position(|&byte| byte == wanted)?,
    )
}

fn has_quote(bytes: &[u8]) -> bool {
    bytes.iter().any(|&byte| byte == b'"' || byte == b'\'')
}

fn has_quote_or_backslash(bytes: &[u8]) -> bool {
    bytes.iter().any(|&byte| byte == b'"' || byte == b'\\')
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, failure_persistence: None, ..Default::default() })]
        #[test]
        fn checks_utf8_as_the_standard_library_does(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            text in "\\PC{0,20}",
        ) {
            proptest::prop_assert_eq!(is_utf8(&bytes), std::str::from_utf8(&bytes).is_ok());
            proptest::prop_assert!(is_utf8(text.as_bytes()));
            let trimmed = std::str::from_utf8(trim(text.as_bytes())).unwrap();
            proptest::prop_assert_eq!(trimmed, text.trim());
        }
    }
}
