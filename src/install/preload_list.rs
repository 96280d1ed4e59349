//! Editing `/etc/ld.so.preload` without disturbing anyone else's lines.
//!
//! glibc reads the file as library names separated by white space or `:`,
//! with `#` starting a comment, and loads them in that order; the first
//! library that defines a symbol wins. Our line goes FIRST: the shim looks
//! up the real functions with `dlsym(RTLD_NEXT, ...)`, so being first means
//! it sees every call a program makes and then hands it on to whatever comes
//! next — another shim such as libeatmydata (which swallows `fsync` without
//! calling on) still does its job, but after ours has counted the call.
//! Adding is a prepend and removing takes out exactly that line, so a file
//! that had other lines comes back byte for byte.

/// Whether `text` already names `library` anywhere (as glibc parses it).
pub fn lists(text: &[u8], library: &str) -> bool {
    text.split(|&byte| byte == b'\n').any(|line| {
        let line = line.split(|&byte| byte == b'#').next().unwrap_or_default();
        line.split(|&byte| byte.is_ascii_whitespace() || byte == b':')
            .any(|entry| entry == library.as_bytes())
    })
}

/// `text` with `line` in front; `None` if it already names the library.
pub fn add(text: &[u8], line: &str) -> Option<Vec<u8>> {
    if lists(text, line) {
        return None;
    }
    let mut edited = Vec::with_capacity(line.len() + 1 + text.len());
    edited.extend_from_slice(line.as_bytes());
    edited.push(b'\n');
    edited.extend_from_slice(text);
    Some(edited)
}

/// `text` without its first line that is exactly `line` (with its newline);
/// `None` if there is no such line.
pub fn remove(text: &[u8], line: &str) -> Option<Vec<u8>> {
    let mut start = 0;
    while start <= text.len() {
        let end = text[start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(text.len(), |offset| start + offset);
        if &text[start..end] == line.as_bytes() {
            let after = (end + 1).min(text.len());
            let mut edited = text[..start].to_vec();
            edited.extend_from_slice(&text[after..]);
            return Some(edited);
        }
        start = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "/usr/lib/fadvise-shim/libfadvise_shim.so";

    #[test]
    fn added_first_and_removed_byte_for_byte() {
        for original in [
            &b""[..],
            b"/usr/lib/libeatmydata.so\n",
            b"# site preloads\n/a.so /b.so\n\n/c.so",
        ] {
            let added = add(original, OURS).unwrap();
            assert!(added.starts_with(format!("{OURS}\n").as_bytes()));
            assert!(added.ends_with(original));
            assert_eq!(add(&added, OURS), None, "idempotent");
            assert_eq!(remove(&added, OURS).unwrap(), original);
        }
    }

    #[test]
    fn recognises_the_library_however_it_is_listed() {
        assert!(lists(format!("/x.so:{OURS} /y.so\n").as_bytes(), OURS));
        assert!(lists(format!("\t{OURS}").as_bytes(), OURS));
        assert!(!lists(format!("# {OURS}\n").as_bytes(), OURS));
        assert!(!lists(format!("{OURS}.old\n").as_bytes(), OURS));
    }

    #[test]
    fn removes_only_an_exact_line() {
        let text = format!("/a.so\n{OURS}.old\n{OURS}");
        assert_eq!(
            remove(text.as_bytes(), OURS).unwrap(),
            format!("/a.so\n{OURS}.old\n").as_bytes()
        );
        assert_eq!(remove(b"/a.so\n", OURS), None);
    }
}
