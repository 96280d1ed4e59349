//! Turns a symbol's linkage name into the name its programmer wrote: Rust
//! (legacy `_ZN…17h<hash>E` and v0 `_R…`) first, then C++ (Itanium `_Z…`),
//! else the name as it is (C).
//!
//! Rust goes first because a legacy Rust name is also a valid C++ name, and
//! the C++ demangler would keep the hash (`std::rt::lang_start::h0123…`).

/// The demangled form of `name`, or `name` itself when it is not mangled.
pub(super) fn demangle(name: &str) -> String {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        // `{:#}` leaves out the hash.
        return format!("{rust:#}");
    }
    if name.starts_with("_Z") {
        if let Some(cpp) = cpp_demangle::Symbol::new(name.as_bytes())
            .ok()
            .and_then(|symbol| symbol.demangle().ok())
        {
            return cpp;
        }
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn c_names_stay_as_they_are() {
        assert_eq!(demangle("fsync"), "fsync");
        assert_eq!(demangle(""), "");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
    }

    #[test]
    fn cpp_names_keep_their_namespaces_and_parameters() {
        assert_eq!(
            demangle("_ZN6google13LogFileObject5WriteEblPKcm"),
            "google::LogFileObject::Write(bool, long, char const*, unsigned long)"
        );
        assert_eq!(demangle("_Z3fooi.cold"), "foo(int) [clone .cold]");
    }

    #[test]
    fn rust_names_lose_their_hash() {
        assert_eq!(
            demangle("_ZN3std2rt10lang_start17h0123456789abcdefE"),
            "std::rt::lang_start"
        );
        assert_eq!(demangle("_RNvCs1234_4core3foo"), "core::foo");
    }
}
