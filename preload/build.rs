//! Link settings that let the one library load into glibc and musl
//! processes alike.
//!
//! The unwinder (libgcc_eh) is linked in instead of depending on
//! libgcc_s.so.1: loading libgcc_s costs every process about 100 µs at
//! start-up here (its constructor probes the CPU with CPUID, which traps to
//! the hypervisor in a VM), the shim is loaded into every process, and musl
//! images have no libgcc_s.
//!
//! glibc's `libc.so` is a linker script that adds the loader,
//! `ld-linux-x86-64.so.2`, "as needed"; Rust's thread-locals (general-dynamic
//! TLS in a shared object) call `__tls_get_addr`, which only the loader
//! defines, so the loader would land in `DT_NEEDED`, a file musl has no
//! copy of (the program then exits 127 before `main`). So the library links
//! against a copy of that script without the loader: `__tls_get_addr` stays
//! an undefined, unversioned symbol, which glibc's loader (always present)
//! and musl's libc both define at run time. `tests/library_abi.rs` checks the
//! artifact.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    println!("cargo:rerun-if-changed=build.rs");
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_env != "gnu" {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    match libc_script_without_loader() {
        Ok(script) => {
            std::fs::write(out.join("libc.so"), script).expect("OUT_DIR is writable");
            println!("cargo:rustc-link-search=native={}", out.display());
        }
        Err(why) => println!(
            "cargo:warning=linking libc as is ({why}): the library will need \
             ld-linux-x86-64.so.2 and so will not load in musl processes"
        ),
    }
}

/// The system's `libc.so` linker script with its `AS_NEEDED ( … )` group
/// (the loader) taken out.
fn libc_script_without_loader() -> Result<String, String> {
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&compiler)
        .arg("-print-file-name=libc.so")
        .output()
        .map_err(|error| format!("{compiler} -print-file-name=libc.so: {error}"))?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !Path::new(&path).is_absolute() {
        return Err(format!("{compiler} does not know where libc.so is"));
    }
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    if !text.contains("GROUP") {
        return Err(format!("{path} is not a linker script"));
    }
    let Some(start) = text.find("AS_NEEDED") else {
        return Ok(text); // no loader in it
    };
    let end = text[start..]
        .find(')')
        .map(|at| start + at + 1)
        .ok_or_else(|| format!("{path}: unclosed AS_NEEDED"))?;
    Ok(format!("{}{}", &text[..start], &text[end..]))
}
