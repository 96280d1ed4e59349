//! One exported function, so the library has std linked in and something
//! to export, like any Rust cdylib.

#[no_mangle]
pub extern "C" fn fadvise_bench_empty_cdylib(value: u32) -> u32 {
    value.wrapping_mul(3)
}
