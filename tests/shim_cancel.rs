//! Thread cancellation goes through the hooks as through libc: `fsync`,
//! `fdatasync` and `msync` are cancellation points, passed or dropped, and a
//! cancelled thread unwinds through the hook and runs its cleanup handlers
//! (the hooks are `extern "C-unwind"` and hold nothing with a destructor).

mod common;

use common::{c_program, run, Scratch, Shim, DROP_ALL, TIMEOUT};

fn cancel(shim: Shim) -> String {
    let scratch = Scratch::new();
    let mut command = scratch.command(c_program("cancel"), shim);
    command.arg(scratch.file("cancel.data"));
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("cancel");
    assert_eq!(finished.stderr, "", "nothing on stderr");
    finished.stdout
}

#[test]
fn cancelled_threads_unwind_through_passed_and_dropped_calls() {
    let expected = "cancelled 30 cleanups 30\n";
    assert_eq!(cancel(Shim::Off), expected, "without the shim");
    assert_eq!(cancel(Shim::Default), expected, "calls passed");
    assert_eq!(cancel(Shim::Policy(DROP_ALL)), expected, "calls dropped");
}
