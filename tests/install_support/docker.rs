//! A private Docker daemon for the container tests (Debian's `docker.io`,
//! no registry: images come from `tar | docker import`), as FACTS.md
//! describes: its own data, exec root and socket in a directory of its own,
//! stopped and cleaned up when dropped. Shared by tests/containers.rs and
//! tests/static_cli.rs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private `dockerd` in a directory of its own, stopped and cleaned up
/// (its network namespace mount, the empty `docker` cgroups) when dropped.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    process: Child,
}

impl Daemon {
    pub fn start() -> Result<Daemon, String> {
        // SAFETY: geteuid(2) takes no arguments, touches no memory of ours
        // and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root".into());
        }
        if !Path::new("/usr/sbin/dockerd").is_file() {
            return Err("dockerd is not installed (scripts/setup.sh installs docker.io)".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("fshim-docker-")
            .tempdir_in("/var/tmp")
            .map_err(|error| error.to_string())?;
        let path = dir.path();
        let process = Command::new("/usr/sbin/dockerd")
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=overlay2",
            ])
            .arg(format!("--data-root={}", path.join("data").display()))
            .arg(format!("--exec-root={}", path.join("exec").display()))
            .arg(format!("--pidfile={}", path.join("pid").display()))
            .arg(format!("--host=unix://{}", path.join("sock").display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path.join("log")).map_err(|error| error.to_string())?)
            .spawn()
            .map_err(|error| format!("dockerd: {error}"))?;
        let daemon = Daemon { dir, process };
        let ready = crate::common::poll(Duration::from_secs(20), || {
            daemon.docker(&["info"]).ok().map(drop)
        });
        if ready.is_none() {
            let log = std::fs::read_to_string(daemon.dir.path().join("log")).unwrap_or_default();
            return Err(format!(
                "dockerd did not start: {}",
                log.lines().last().unwrap_or("")
            ));
        }
        Ok(daemon)
    }

    /// The client, talking to this daemon.
    pub fn client(&self) -> Command {
        let mut command = Command::new("/usr/bin/docker");
        command.arg(format!(
            "--host=unix://{}",
            self.dir.path().join("sock").display()
        ));
        command
    }

    /// Runs the client against this daemon; its stdout, or why it failed.
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .client()
            .args(args)
            .output()
            .map_err(|error| error.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Imports the directory `root` as the image `name` (`tar | docker
    /// import`), with Dockerfile-style `changes` such as `ENTRYPOINT [...]`.
    pub fn import(&self, root: &Path, name: &str, changes: &[&str]) {
        let tarball = self
            .dir
            .path()
            .join(format!("{}.tar", name.replace([':', '/'], "-")));
        let tar = Command::new("tar")
            .arg("-C")
            .arg(root)
            .args(["-c", "-f"])
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("tar runs");
        assert!(tar.success(), "tar of {}", root.display());
        let mut args = vec!["import".to_string()];
        for change in changes {
            args.extend(["--change".to_string(), change.to_string()]);
        }
        args.extend([tarball.display().to_string(), name.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker(&args).expect("docker import");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety requirement; our own child.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
        let _ = self.process.wait();
        let netns = self.dir.path().join("exec/netns/default");
        let _ = Command::new("umount").arg(&netns).status();
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir(entry.path().join("docker"));
            }
        }
    }
}
