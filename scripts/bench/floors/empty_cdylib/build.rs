//! As preload/build.rs: the unwinder from libgcc_eh, not libgcc_s.so.1.
fn main() {
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}
