//! Timing for the hot path. Two `clock_gettime` reads (≈ 24 ns each) would
//! cost more than the overhead budget of an observed call, so once
//! calibrated we read the invariant TSC (≈ 10 ns) and scale ticks to
//! nanoseconds with a fixed-point multiplier.
//!
//! Calibration never delays start-up, nor costs a process that makes no
//! call anything: the reference point is taken at the first call and the
//! multiplier is computed on the first timed call at least `CALIBRATION_NS`
//! later; until then calls are timed with `clock_gettime`. Without an
//! invariant TSC (checked with CPUID), or when the kernel does not use the
//! TSC as its clock source, `clock_gettime` stays the clock.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use super::real::Real;

/// Time between the reference point and calibration.
const CALIBRATION_NS: u64 = 20_000_000;

/// Nanoseconds per tick as 32.32 fixed point; 0 while uncalibrated.
static TICK_SCALE: AtomicU64 = AtomicU64::new(0);
/// Reference point for calibration (and the zero of `now_ns` in TSC mode).
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);
static BASE_NS: AtomicU64 = AtomicU64::new(0);
/// Calibration: not yet tried, under way (one thread), or over (calibrated,
/// or the TSC is not to be trusted and `clock_gettime` stays the clock).
static CALIBRATION: AtomicU8 = AtomicU8::new(NOT_TRIED);
const NOT_TRIED: u8 = 0;
const UNDER_WAY: u8 = 1;
const OVER: u8 = 2;

/// The clock chosen for one measurement: both ends of an interval must be
/// read with the same one.
#[derive(Clone, Copy)]
pub struct Clock {
    scale: u64,
}

impl Clock {
    #[inline(always)]
    pub fn current() -> Clock {
        Clock {
            scale: TICK_SCALE.load(Ordering::Relaxed),
        }
    }

    /// A reading: TSC ticks once calibrated, else monotonic nanoseconds.
    #[inline(always)]
    pub fn read(self) -> u64 {
        if self.scale != 0 {
            ticks()
        } else {
            monotonic_ns()
        }
    }

    /// Nanoseconds between two readings of this clock.
    #[inline(always)]
    pub fn elapsed_ns(self, start: u64, end: u64) -> u64 {
        let delta = end.saturating_sub(start);
        if self.scale != 0 {
            ((u128::from(delta) * u128::from(self.scale)) >> 32) as u64
        } else {
            delta
        }
    }

    /// A reading as monotonic nanoseconds (the `CLOCK_MONOTONIC` scale).
    #[inline(always)]
    pub fn to_ns(self, reading: u64) -> u64 {
        if self.scale != 0 {
            let base = BASE_TICKS.load(Ordering::Relaxed);
            BASE_NS.load(Ordering::Relaxed) + self.elapsed_ns(base, reading)
        } else {
            reading
        }
    }

    /// Called after a call timed with `clock_gettime`: calibrates the TSC
    /// once enough time has passed since the reference point.
    #[inline(always)]
    pub fn after_timed_call(self, now_ns: u64) {
        if self.scale == 0 && CALIBRATION.load(Ordering::Relaxed) == NOT_TRIED {
            let base_ns = BASE_NS.load(Ordering::Acquire);
            // 0: no reference point yet (a call racing the first one).
            if base_ns != 0 && now_ns.wrapping_sub(base_ns) >= CALIBRATION_NS {
                calibrate(base_ns);
            }
        }
    }
}

/// Whether `time()` is one memory load in the vDSO (glibc: ≈ 2 ns) rather
/// than a whole `clock_gettime` (musl: ≈ 30 ns, more than the budget of a
/// dropped call, which reads the wall clock for its once-a-second tick).
static TIME_IS_CHEAP: AtomicBool = AtomicBool::new(true);
/// A function only glibc has.
static GLIBC_ONLY: Real = Real::new(c"gnu_get_libc_version");

/// Tells glibc from another libc; called at start-up (a lookup takes the
/// loader's lock). Until then, and in a process whose first call comes
/// before our constructor, `time()` is used: right, only slower on musl.
#[link_section = ".text.startup"]
pub fn resolve() {
    let glibc = GLIBC_ONLY.resolve().is_some();
    if !glibc {
        TIME_IS_CHEAP.store(false, Ordering::Relaxed);
    }
}

/// The wall clock in whole seconds, as cheaply as this libc gives it: a
/// coarse clock (the kernel's tick, a few milliseconds) is plenty for a
/// once-a-second deadline, and is a memory load in the vDSO for musl too.
#[inline(always)]
pub fn wall_clock_seconds() -> u64 {
    if TIME_IS_CHEAP.load(Ordering::Relaxed) {
        // SAFETY: `time` with a null pointer only returns the time.
        return unsafe { libc::time(std::ptr::null_mut()) }.max(0) as u64;
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_REALTIME_COARSE exists since
    // Linux 2.6.32 and cannot fail here, so errno is untouched.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    now.tv_sec.max(0) as u64
}

/// Takes the reference point; called once per process image, at its first
/// call. Whether the TSC can be trusted is asked later, at calibration:
/// CPUID traps to the hypervisor in a VM.
pub fn start() {
    BASE_TICKS.store(ticks(), Ordering::Relaxed);
    BASE_NS.store(monotonic_ns(), Ordering::Release);
}

/// A calibration under way in another thread at `fork` never finishes in
/// the child: let the child try again.
pub fn after_fork_in_child() {
    // A compare-and-swap writes even when it fails: look first (`fork.rs`).
    if CALIBRATION.load(Ordering::Relaxed) == UNDER_WAY {
        CALIBRATION.store(NOT_TRIED, Ordering::Relaxed);
    }
}

#[cold]
#[inline(never)]
fn calibrate(base_ns: u64) {
    if CALIBRATION
        .compare_exchange(NOT_TRIED, UNDER_WAY, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // Reading sysfs goes through cancellation points.
    let _no_cancel = super::NoCancel::new();
    if tsc_is_invariant() && kernel_uses_tsc() {
        let now_ticks = ticks();
        let now_ns = monotonic_ns();
        let elapsed_ticks = now_ticks.wrapping_sub(BASE_TICKS.load(Ordering::Relaxed));
        if elapsed_ticks != 0 && now_ns > base_ns {
            let scale = ((u128::from(now_ns - base_ns) << 32) / u128::from(elapsed_ticks)) as u64;
            // Re-base at this point so `to_ns` needs no long extrapolation.
            BASE_TICKS.store(now_ticks, Ordering::Relaxed);
            BASE_NS.store(now_ns, Ordering::Relaxed);
            TICK_SCALE.store(scale.max(1), Ordering::Release);
        }
    }
    CALIBRATION.store(OVER, Ordering::Release);
}

/// Whether the kernel's clock source is the TSC: if it distrusts the TSC
/// (unstable, or a VM without a stable one), so do we.
fn kernel_uses_tsc() -> bool {
    let path = c"/sys/devices/system/clocksource/clocksource0/current_clocksource";
    let mut buffer = [0u8; 64];
    match super::io::read_small_file(path, &mut buffer) {
        Some(source) => source.starts_with(b"tsc"),
        // No sysfs (a chroot, say): trust CPUID's invariant-TSC bit.
        None => true,
    }
}

pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists. It goes
    // through the vDSO and cannot fail, so errno is untouched.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ticks() -> u64 {
    monotonic_ns()
}

#[cfg(target_arch = "x86_64")]
fn tsc_is_invariant() -> bool {
    use core::arch::x86_64::__cpuid;
    // CPUID leaf 0x80000000 reports the highest extended leaf, checked
    // before reading 0x80000007.
    __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_is_invariant() -> bool {
    false
}
