//! Links the unwinder (libgcc_eh) into the library instead of depending on
//! libgcc_s.so.1: loading libgcc_s costs every process about 100 µs at
//! start-up here (its constructor probes the CPU with CPUID, which traps to
//! the hypervisor in a VM), and the shim is loaded into every process.
fn main() {
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}
