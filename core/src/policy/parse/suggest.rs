//! "Did you mean" suggestions for misspelt keys and names.
//!
//! A suggestion is offered only when it is close: a small edit distance, or
//! one name containing the other (`fadvise` → `posix_fadvise`,
//! `POSIX_FADV_DONTNEED` → `dontneed`). Case is ignored.

/// The candidate nearest to `input`, if one is close enough to suggest.
pub(super) fn nearest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let input = input.trim().to_ascii_lowercase();
    candidates
        .iter()
        .copied()
        .filter_map(|candidate| {
            let lower = candidate.to_ascii_lowercase();
            let edits = strsim::damerau_levenshtein(&input, &lower);
            let contained = input.len() >= 3 && (lower.contains(&input) || input.contains(&lower));
            let close = edits <= lower.chars().count().div_ceil(3);
            // Rank containment first, then by edits, so that `fdatasync2`
            // suggests `fdatasync` rather than `sync`.
            (contained || close).then_some(((!contained, edits), candidate))
        })
        .min_by_key(|&(rank, _)| rank)
        .map(|(_, candidate)| candidate)
}

/// "unknown KIND `INPUT` PLACE; did you mean `X`?", or the list of valid
/// names when none is close.
pub(super) fn unknown(kind: &str, input: &str, place: &str, candidates: &[&str]) -> String {
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(" {place}")
    };
    match nearest(input, candidates) {
        Some(nearest) => format!("unknown {kind} `{input}`{place}; did you mean `{nearest}`?"),
        None => format!(
            "unknown {kind} `{input}`{place}; expected one of: {}",
            candidates.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLS: &[&str] = &["posix_fadvise", "readahead", "fsync", "fdatasync", "sync"];

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(nearest("acton", &["action", "name"]), Some("action"));
        assert_eq!(nearest("fadvise", CALLS), Some("posix_fadvise"));
        assert_eq!(nearest("posix_fadvise64", CALLS), Some("posix_fadvise"));
        assert_eq!(nearest("fdatasync2", CALLS), Some("fdatasync"));
        assert_eq!(nearest("FSYNC", CALLS), Some("fsync"));
        assert_eq!(
            nearest("dontneed", &["POSIX_FADV_DONTNEED"]),
            Some("POSIX_FADV_DONTNEED")
        );
        assert_eq!(nearest("write", CALLS), None);
    }

    #[test]
    fn lists_names_when_nothing_is_close() {
        assert_eq!(
            unknown("action", "explode", "", &["pass", "drop", "limit"]),
            "unknown action `explode`; expected one of: pass, drop, limit"
        );
        assert_eq!(
            unknown("key", "acton", "in [[rule]]", &["action"]),
            "unknown key `acton` in [[rule]]; did you mean `action`?"
        );
    }
}
