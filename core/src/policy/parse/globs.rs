//! `exe`, `path` and `caller` globs: compiled so that `*` stops at `/` and `**`
//! crosses it, with the patterns that can never match refused.
//!
//! The paths they meet are always absolute (`/proc/self/exe`, and the file
//! behind a descriptor), so a pattern with a `/` that starts with neither
//! `/` nor `*` nor `{` cannot match, nor can a `path` pattern without any
//! `/`. An `exe` or `caller` pattern without `/` is matched against the
//! file name too (`caller` meets the calling object's path as the loader
//! has it: absolute for the executable and libraries found by search).

use crate::policy::{Glob, Globs};

use super::fields::Errors;

/// Which key the globs come from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum GlobKind {
    Exe,
    Path,
    Caller,
}

/// Compiles `patterns` (each with its offset), reporting every bad one.
pub(super) fn compile(
    kind: GlobKind,
    patterns: &[(&str, usize)],
    errors: &mut Errors,
) -> Option<Globs> {
    let before = errors.count();
    let mut globs = Vec::new();
    for &(pattern, at) in patterns {
        if let Err(message) = reachable(kind, pattern) {
            errors.at(at, message);
            continue;
        }
        match Glob::new(pattern) {
            Ok(glob) => globs.push(glob),
            Err(error) => errors.at(at, format!("invalid glob: {error}")),
        }
    }
    if errors.count() != before {
        return None;
    }
    let patterns = patterns
        .iter()
        .map(|&(pattern, _)| pattern.to_owned())
        .collect();
    Some(Globs::new(patterns, globs))
}

/// Refuses patterns that no absolute path can match.
fn reachable(kind: GlobKind, pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("empty glob: it matches nothing".into());
    }
    let key = match kind {
        GlobKind::Exe => "exe",
        GlobKind::Path => "path",
        GlobKind::Caller => "caller",
    };
    if pattern.len() > 1 && pattern.ends_with('/') {
        return Err(format!(
            "{key} glob `{pattern}` cannot match: no file's path ends with `/`; write `{pattern}**` for everything below it"
        ));
    }
    let anchored = pattern.starts_with(['/', '{']) || pattern.starts_with("**");
    if anchored {
        return Ok(());
    }
    if kind == GlobKind::Path && !pattern.contains('/') {
        return Err(format!(
            "{key} glob `{pattern}` cannot match: paths are absolute and `*` stops at `/`; write `**/{pattern}` to match a file name in any directory"
        ));
    }
    if pattern.contains('/') {
        return Err(format!(
            "{key} glob `{pattern}` cannot match: paths are absolute; start it with `/` or `**/`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn globs(kind: GlobKind, patterns: &[&str]) -> Result<Globs, Vec<String>> {
        let patterns: Vec<_> = patterns.iter().map(|&p| (p, 0)).collect();
        let mut errors = Errors::default();
        compile(kind, &patterns, &mut errors)
            .ok_or_else(|| errors.0.into_iter().map(|(_, message)| message).collect())
    }

    #[test]
    fn exe_globs_without_slash_match_the_file_name() {
        let exe = globs(GlobKind::Exe, &["*falcon*", "/opt/*/bin/db"]).unwrap();
        assert!(exe.matches_exe(Path::new("/usr/bin/falcon-server")));
        assert!(exe.matches_exe(Path::new("/opt/acme/bin/db")));
        assert!(!exe.matches_exe(Path::new("/opt/acme/x/bin/db")));
        assert!(!exe.matches_exe(Path::new("/usr/bin/hawk")));
        assert_eq!(exe.patterns, ["*falcon*", "/opt/*/bin/db"]);
    }

    #[test]
    fn path_globs_match_full_paths() {
        let path = globs(GlobKind::Path, &["/var/log/*", "**/*.log"]).unwrap();
        assert!(path.matches_path(Path::new("/var/log/syslog")));
        assert!(!path.matches_path(Path::new("/var/log/nginx/access")));
        assert!(path.matches_path(Path::new("/srv/app/deep/x.log")));
        assert!(!path.matches_path(Path::new("/srv/app/x.log.1")));
    }

    #[test]
    fn refuses_malformed_and_unreachable_globs() {
        let errors = globs(
            GlobKind::Path,
            &["/var/[log", "*.log", "var/log/**", "", "/var/log/"],
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("invalid glob:"), "{}", errors[0]);
        assert!(errors[1].contains("write `**/*.log`"), "{}", errors[1]);
        assert!(errors[2].contains("start it with `/`"), "{}", errors[2]);
        assert!(errors[3].contains("empty glob"), "{}", errors[3]);
        assert!(errors[4].contains("write `/var/log/**`"), "{}", errors[4]);
        assert!(globs(GlobKind::Exe, &["bin/db"]).is_err());
        assert!(globs(GlobKind::Exe, &["db", "{/usr,/opt}/bin/*"]).is_ok());
    }
}
