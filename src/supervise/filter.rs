//! The seccomp filter installed in the supervised program before `exec`:
//! on x86_64 it sends the intercepted system calls (their x86_64 and x32
//! numbers) to the supervisor with `SECCOMP_RET_USER_NOTIF` and lets every
//! other call, and every other architecture's calls, through.
//!
//! With `--drop-in-kernel`, a call whose fate the policy decides without
//! looking at the process, the file or the calling module is answered by
//! the filter itself: core's evaluator, asked with the executable, the
//! path and the caller all "not known here" (a filter sees none of them),
//! must reach a `drop` rule; a call whose verdict depends on any of them
//! is never compiled into the kernel and goes to the supervisor.
//! `SECCOMP_RET_ERRNO | 0` makes it return 0 without running, after the
//! same argument checks as `core::args` where BPF can make them (a
//! negative fd, a negative length, bad flags, bad advice, a misaligned
//! `msync`); ranges that might wrap around go to the supervisor, which
//! checks them exactly. Such calls cost nothing and are not counted.

use std::mem::offset_of;

use libc::{seccomp_data, sock_filter};

use fadvise_shim_core::call::{Advice, Call};
use fadvise_shim_core::policy::evaluate::{evaluate, Facts, Verdict};
use fadvise_shim_core::policy::{Action, Policy};

use super::bpf::{Assembler, Label, NEXT};
use super::request::{page_size, X32_SYSCALL_BIT};

/// `AUDIT_ARCH_X86_64` from `<linux/audit.h>` (not in the libc crate):
/// `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// Which calls the filter drops itself: per call, and for `posix_fadvise`
/// per advice (the six valid values, then invalid ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelDrops {
    calls: [bool; Call::COUNT],
    advice: [bool; Advice::ALL.len() + 1],
}

impl KernelDrops {
    /// What `policy` lets the kernel drop without asking the supervisor.
    pub fn from_policy(policy: &Policy) -> KernelDrops {
        let mut drops = KernelDrops::default();
        for call in Call::ALL {
            drops.calls[call.index()] = decided_drop(policy, call, None);
        }
        for advice in Advice::ALL {
            drops.advice[advice.index()] = decided_drop(policy, Call::PosixFadvise, Some(advice));
        }
        drops.advice[Advice::ALL.len()] = drops.calls[Call::PosixFadvise.index()];
        drops
    }

    /// The calls (and advice) dropped in the kernel, for the final report:
    /// `posix_fadvise(dontneed)`, `fsync`...
    pub fn describe(&self) -> Vec<String> {
        let mut names = Vec::new();
        for call in Call::ALL {
            if call == Call::PosixFadvise {
                let advice: Vec<&str> = Advice::ALL
                    .iter()
                    .filter(|advice| self.advice[advice.index()])
                    .map(|advice| advice.name())
                    .collect();
                if advice.len() == Advice::ALL.len() {
                    names.push(call.name().to_string());
                } else if !advice.is_empty() {
                    names.push(format!("{}({})", call.name(), advice.join(",")));
                }
            } else if self.calls[call.index()] {
                names.push(call.name().to_string());
            }
        }
        names
    }

    fn any_advice(&self) -> bool {
        self.advice.iter().any(|&drop| drop)
    }
}

/// Whether the policy drops `call` (with `advice`) whatever the process,
/// the file and the calling module.
fn decided_drop(policy: &Policy, call: Call, advice: Option<Advice>) -> bool {
    match evaluate(&policy.rules, call, advice, &mut Facts::nothing()) {
        Verdict::Rule(index) => policy.rules[index].action == Action::Drop,
        Verdict::NoRule | Verdict::Depends(_) => false,
    }
}

/// Offsets in `seccomp_data` of the low and high halves of argument `n`
/// (x86_64 is little-endian).
fn arg_low(n: usize) -> u32 {
    (offset_of!(seccomp_data, args) + 8 * n) as u32
}

fn arg_high(n: usize) -> u32 {
    arg_low(n) + 4
}

const SIGN_BIT: u32 = 0x8000_0000;
/// A high half at or above this may make `offset + length` wrap: the
/// supervisor checks such ranges exactly.
const LARGE_HIGH_HALF: u32 = 0x4000_0000;

/// The returns every block shares.
struct Ends {
    notify: Label,
    ebadf: Label,
    einval: Label,
}

/// The filter program for `drops` (all false without `--drop-in-kernel`).
pub fn program(drops: &KernelDrops) -> Result<Vec<sock_filter>, String> {
    let mut asm = Assembler::default();
    let allow = asm.label();
    let ends = Ends {
        notify: asm.label(),
        ebadf: asm.label(),
        einval: asm.label(),
    };
    asm.load(offset_of!(seccomp_data, arch) as u32);
    asm.jump(
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        AUDIT_ARCH_X86_64,
        NEXT,
        allow,
    );
    asm.load(offset_of!(seccomp_data, nr) as u32);
    asm.statement(
        libc::BPF_ALU | libc::BPF_AND | libc::BPF_K,
        !X32_SYSCALL_BIT,
    );
    let blocks: Vec<(Call, Label)> = Call::ALL.iter().map(|&call| (call, asm.label())).collect();
    for &(call, block) in &blocks {
        asm.jump_if_equal(call.syscall_number() as u32, block);
    }
    asm.mark(allow);
    asm.ret(libc::SECCOMP_RET_ALLOW);
    for (call, block) in blocks {
        asm.mark(block);
        if call == Call::PosixFadvise {
            if drops.any_advice() {
                fadvise_block(&mut asm, drops, &ends);
            } else {
                asm.ret(libc::SECCOMP_RET_USER_NOTIF);
            }
        } else if drops.calls[call.index()] {
            drop_block(&mut asm, call, &ends);
        } else {
            asm.ret(libc::SECCOMP_RET_USER_NOTIF);
        }
    }
    asm.mark(ends.notify);
    asm.ret(libc::SECCOMP_RET_USER_NOTIF);
    asm.mark(ends.ebadf);
    asm.ret(libc::SECCOMP_RET_ERRNO | libc::EBADF as u32);
    asm.mark(ends.einval);
    asm.ret(libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32);
    asm.finish()
}

/// `posix_fadvise`: advice by advice, dropped ones checked like
/// `args::fadvise_error` (fd, then length and advice).
fn fadvise_block(asm: &mut Assembler, drops: &KernelDrops, ends: &Ends) {
    let valid = asm.label();
    let invalid = asm.label();
    asm.load(arg_low(3));
    for advice in Advice::ALL {
        let target = if drops.advice[advice.index()] {
            valid
        } else {
            ends.notify
        };
        asm.jump_if_equal(advice.raw() as u32, target);
    }
    // No valid advice matched: the advice is wrong.
    asm.mark(invalid);
    if drops.advice[Advice::ALL.len()] {
        asm.load(arg_low(0));
        asm.jump_if_any_bit(SIGN_BIT, ends.ebadf);
        asm.ret(libc::SECCOMP_RET_ERRNO | libc::EINVAL as u32);
    } else {
        asm.ret(libc::SECCOMP_RET_USER_NOTIF);
    }
    asm.mark(valid);
    asm.load(arg_low(0));
    asm.jump_if_any_bit(SIGN_BIT, ends.ebadf);
    asm.load(arg_high(2));
    asm.jump_if_any_bit(SIGN_BIT, ends.einval);
    asm.ret(libc::SECCOMP_RET_ERRNO);
}

/// A call dropped whatever its advice, with its argument checks.
fn drop_block(asm: &mut Assembler, call: Call, ends: &Ends) {
    match call {
        Call::Sync => {}
        // `posix_fadvise` has its own block.
        Call::Readahead | Call::Fsync | Call::Fdatasync | Call::Syncfs | Call::PosixFadvise => {
            asm.load(arg_low(0));
            asm.jump_if_any_bit(SIGN_BIT, ends.ebadf);
        }
        Call::SyncFileRange => {
            asm.load(arg_low(0));
            asm.jump_if_any_bit(SIGN_BIT, ends.ebadf);
            let valid_flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            asm.load(arg_low(3));
            asm.jump_if_any_bit(!valid_flags, ends.einval);
            for range in [1, 2] {
                asm.load(arg_high(range));
                asm.jump_if_any_bit(SIGN_BIT, ends.einval);
                asm.jump_if_at_least(LARGE_HIGH_HALF, ends.notify);
            }
        }
        Call::Msync => {
            let valid_flags = (libc::MS_ASYNC | libc::MS_INVALIDATE | libc::MS_SYNC) as u32;
            let both = (libc::MS_ASYNC | libc::MS_SYNC) as u32;
            asm.load(arg_low(2));
            asm.jump_if_any_bit(!valid_flags, ends.einval);
            asm.statement(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, both);
            asm.jump_if_equal(both, ends.einval);
            asm.load(arg_low(0));
            asm.jump_if_any_bit(page_size() as u32 - 1, ends.einval);
            for range in [0, 1] {
                asm.load(arg_high(range));
                asm.jump_if_at_least(LARGE_HIGH_HALF, ends.notify);
            }
        }
    }
    asm.ret(libc::SECCOMP_RET_ERRNO);
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::policy::parse_policy;

    fn drops(policy: &str) -> KernelDrops {
        KernelDrops::from_policy(&parse_policy(policy).unwrap())
    }

    #[test]
    fn only_drops_that_hold_for_every_process_and_file_go_to_the_kernel() {
        let all = drops("[[rule]]\ncall = \"*\"\naction = \"drop\"\n");
        assert_eq!(all.describe().len(), Call::COUNT);
        // An `exe` rule first keeps fsync with the supervisor, a `path`
        // rule keeps msync there; it never decides `sync`, so the drop
        // after it does.
        let some = drops(
            "[[rule]]\ncall = \"fsync\"\nexe = [\"db\"]\naction = \"pass\"\n\
             [[rule]]\ncall = \"posix_fadvise\"\nadvice = [\"dontneed\", \"noreuse\"]\naction = \"drop\"\n\
             [[rule]]\ncall = \"*\"\npath = [\"/x/**\"]\naction = \"pass\"\n\
             [[rule]]\ncall = [\"fsync\", \"sync\", \"msync\"]\naction = \"drop\"\n",
        );
        assert_eq!(some.describe(), ["posix_fadvise(dontneed,noreuse)", "sync"]);
        assert!(drops("").describe().is_empty());
        // A `caller` rule depends on the module, which a filter cannot see.
        let caller = drops(
            "[[rule]]\ncall = \"posix_fadvise\"\ncaller = [\"libnothing*\"]\naction = \"drop\"\n\
             [[rule]]\ncall = \"fsync\"\ncaller = [\"libnothing*\"]\naction = \"pass\"\n\
             [[rule]]\ncall = \"*\"\naction = \"drop\"\n",
        );
        assert_eq!(
            caller.describe(),
            [
                "readahead",
                "sync_file_range",
                "fdatasync",
                "syncfs",
                "sync",
                "msync"
            ]
        );
    }

    /// On the conformance table: a call the filter drops is dropped
    /// whatever its process, file and module, and it drops exactly the
    /// calls whose first rule that can match asks nothing and drops.
    #[test]
    fn the_filter_drops_exactly_what_every_context_drops() {
        use fadvise_shim_core::policy::conformance::{self, Outcome};
        let cases = conformance::cases();
        for policy in conformance::policies() {
            let drops = KernelDrops::from_policy(&policy);
            for case in &cases {
                let in_kernel = match case.call {
                    Call::PosixFadvise => {
                        drops.advice[case.advice().map_or(Advice::ALL.len(), Advice::index)]
                    }
                    call => drops.calls[call.index()],
                };
                let expected = conformance::expected(&policy, case);
                if in_kernel {
                    assert_eq!(expected, Outcome::Drop, "{case:?} under {:?}", policy.rules);
                }
                // The first rule that can match (a `path` rule never
                // matches a call without a file) asks nothing and drops.
                let plain_drop = policy.rules.iter().find(|rule| {
                    rule.covers(case.call, case.advice())
                        && (rule.path.is_none() || case.call.has_file())
                });
                let unconditional = plain_drop.is_some_and(|rule| {
                    rule.exe.is_none()
                        && rule.path.is_none()
                        && rule.caller.is_none()
                        && rule.action == Action::Drop
                });
                assert_eq!(
                    in_kernel, unconditional,
                    "{case:?} under {:?}",
                    policy.rules
                );
            }
        }
    }

    #[test]
    fn every_program_assembles() {
        let all = drops("[[rule]]\ncall = \"*\"\naction = \"drop\"\n");
        let dontneed =
            drops("[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\naction = \"drop\"\n");
        for drops in [KernelDrops::default(), all, dontneed] {
            let program = program(&drops).unwrap();
            assert!(program.len() < 200, "{} instructions", program.len());
        }
    }
}
