//! What the kernel says of a process in `/proc`, for the CLI: its pid
//! namespace and its start time, which with its pid name its dump and stats
//! files (`fadvise_shim_core::origin::write_file_stem`).

/// The inode of process `pid`'s pid namespace (`pid:[N]`).
pub fn pid_namespace(pid: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    link.to_string_lossy()
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Field 22 of `/proc/PID/stat`: the start time in clock ticks since boot
/// (counted after the command name, which may hold spaces and parentheses).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}
