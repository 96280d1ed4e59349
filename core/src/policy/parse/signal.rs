//! `[dump] signal`: which names are accepted, and why the others are refused.
//!
//! Accepted: `SIGUSR1`, `SIGUSR2`, `SIGRTMIN`, `SIGRTMIN+N` (up to
//! `SIGRTMAX` on this system) and `none`. Case does not matter and the `SIG`
//! prefix may be left out (`usr2`, `RTMIN+3`), as with `kill -s`. Every other
//! signal already means something to the programs the shim is loaded into,
//! so taking it over would change how they behave.

use crate::policy::DumpSignal;

use super::suggest;

/// Signals refused as dump signals, by name without `SIG`, with the reason.
const REFUSED: &[(&[&str], &str)] = &[
    (&["KILL", "STOP"], "it cannot be caught"),
    (
        &["SEGV", "BUS", "FPE", "ILL", "ABRT", "TRAP", "SYS"],
        "would break programs: it reports a crash or a fault, which must reach the program's own handler or its default action",
    ),
    (&["CHLD", "CLD"], "would break programs: it tells a program that its child exited"),
    (&["PIPE"], "would break programs: it stops writers to closed pipes"),
    (&["ALRM"], "would break programs: alarm() and timers deliver it"),
    (
        &["TERM", "INT", "HUP", "QUIT"],
        "would break programs: it asks a program to stop or reload, and programs and supervisors rely on that",
    ),
    (&["CONT", "TSTP", "TTIN", "TTOU"], "would break programs: job control uses it"),
    (&["WINCH"], "would break programs: terminal programs learn their window size from it"),
    (&["PROF", "VTALRM"], "would break programs: profilers and interval timers deliver it"),
    (&["XCPU", "XFSZ"], "would break programs: it reports an exceeded resource limit"),
    (&["IO", "POLL", "URG"], "would break programs: asynchronous I/O and sockets deliver it"),
    (&["PWR"], "would break programs: garbage collectors and init systems use it"),
    (&["STKFLT"], "would break programs: the kernel reserves it for stack faults"),
];

/// The accepted spellings, for suggestions.
const ACCEPTED: &[&str] = &["SIGUSR1", "SIGUSR2", "SIGRTMIN", "SIGRTMIN+1", "none"];

/// Parses a `signal` value; the error is a complete message.
/// Accepted names allocate nothing: the preload library reads the signal at
/// every process start.
pub(super) fn parse_signal(text: &str) -> Result<DumpSignal, String> {
    if let Some(signal) = plain_signal(text.as_bytes()) {
        return Ok(signal);
    }
    let bare = strip_prefix_ignoring_case(text, "SIG").unwrap_or(text);
    if let Some(offset) = strip_prefix_ignoring_case(bare, "RTMIN") {
        return realtime(text, offset);
    }
    let refused = REFUSED
        .iter()
        .find(|(names, _)| names.iter().any(|name| name.eq_ignore_ascii_case(bare)));
    if let Some((_, reason)) = refused {
        return Err(format!(
            "signal `{text}` cannot be the dump signal: {reason}"
        ));
    }
    Err(suggest::unknown("signal", text, "", ACCEPTED))
}

/// The names accepted as they are, with no `+N`: `none`, `USR1`, `USR2`
/// and `RTMIN`, with or without `SIG`. On bytes, and inlined into the
/// start-up scan (`quick.rs`), which calls `parse_signal`, placed elsewhere
/// in the library, only for the rest.
#[inline(always)]
pub(super) fn plain_signal(name: &[u8]) -> Option<DumpSignal> {
    if name.eq_ignore_ascii_case(b"none") {
        return Some(DumpSignal::None);
    }
    let bare = match name.split_at_checked(3) {
        Some((head, rest)) if head.eq_ignore_ascii_case(b"SIG") => rest,
        _ => name,
    };
    [
        (&b"USR1"[..], DumpSignal::Usr1),
        (&b"USR2"[..], DumpSignal::Usr2),
        (&b"RTMIN"[..], DumpSignal::RtMin(0)),
    ]
    .into_iter()
    .find(|(accepted, _)| bare.eq_ignore_ascii_case(accepted))
    .map(|(_, signal)| signal)
}

fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `SIGRTMIN` followed by `offset`: empty, or `+N` within `SIGRTMAX`.
fn realtime(text: &str, offset: &str) -> Result<DumpSignal, String> {
    let max = libc::SIGRTMAX() - libc::SIGRTMIN();
    if offset.is_empty() {
        return Ok(DumpSignal::RtMin(0));
    }
    let digits = offset.strip_prefix('+').unwrap_or("");
    let value = if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()
    } else {
        None
    };
    match value {
        Some(n) if n <= max as u64 => Ok(DumpSignal::RtMin(n as u8)),
        Some(_) => Err(format!(
            "signal `{text}` is past SIGRTMAX: N in SIGRTMIN+N goes up to {max} on this system"
        )),
        None => Err(format!(
            "invalid signal `{text}`: write SIGRTMIN or SIGRTMIN+N with N from 0 to {max}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_user_and_realtime_signals_in_any_case() {
        assert_eq!(parse_signal("SIGUSR1"), Ok(DumpSignal::Usr1));
        assert_eq!(parse_signal("usr2"), Ok(DumpSignal::Usr2));
        assert_eq!(parse_signal("None"), Ok(DumpSignal::None));
        assert_eq!(parse_signal("SIGRTMIN"), Ok(DumpSignal::RtMin(0)));
        assert_eq!(parse_signal("rtmin+3"), Ok(DumpSignal::RtMin(3)));
        let max = libc::SIGRTMAX() - libc::SIGRTMIN();
        let last = format!("SIGRTMIN+{max}");
        assert_eq!(parse_signal(&last), Ok(DumpSignal::RtMin(max as u8)));
        assert_eq!(
            parse_signal(&last).unwrap().number(),
            Some(libc::SIGRTMAX())
        );
    }

    #[test]
    fn refuses_signals_programs_rely_on() {
        let max = libc::SIGRTMAX() - libc::SIGRTMIN();
        let past = parse_signal(&format!("SIGRTMIN+{}", max + 1)).unwrap_err();
        assert!(past.contains("past SIGRTMAX"), "{past}");
        assert!(parse_signal("SIGRTMIN+99999999999999999999").is_err());
        assert!(parse_signal("SIGRTMIN-1")
            .unwrap_err()
            .contains("invalid signal"));
        assert!(parse_signal("SIGRTMIN+").is_err());
        assert!(parse_signal("SIGKILL")
            .unwrap_err()
            .contains("cannot be caught"));
        assert!(parse_signal("stop")
            .unwrap_err()
            .contains("cannot be caught"));
        for name in [
            "SIGSEGV",
            "SIGTERM",
            "SIGCHLD",
            "SIGPIPE",
            "SIGPOLL",
            "SIGSTKFLT",
        ] {
            let message = parse_signal(name).unwrap_err();
            assert!(
                message.contains("would break programs"),
                "{name}: {message}"
            );
        }
        assert_eq!(
            parse_signal("SIGUSR3").unwrap_err(),
            "unknown signal `SIGUSR3`; did you mean `SIGUSR1`?"
        );
    }
}
