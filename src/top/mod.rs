//! `fadvise-shim top`: a live view of calls per second and time spent, per
//! container, program or process, from the stats directories.
//!
//! Every interval the directories are read afresh (`sample`), compared with
//! the sample before (rates), sorted and drawn (`render`). On a terminal
//! the table is redrawn in place until `q` or Ctrl-C (`terminal`); to a
//! pipe it is printed plainly every interval; with `--once`, once after two
//! samples an interval apart.

mod render;
mod sample;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::{TopArgs, TopSort};
use crate::{Failure, Outcome};
use render::Header;
use sample::Sample;
use terminal::{Event, Session};

pub fn main(args: TopArgs) -> Outcome {
    for alarm in crate::records::squatted_defaults(&args.dirs) {
        eprintln!("fadvise-shim: {alarm}");
    }
    let dirs = directories(&args.dirs)?;
    let interval = Duration::from_secs_f64(args.interval);
    let view = View { args, dirs };
    if view.args.once {
        let first = view.sample();
        std::thread::sleep(interval);
        let second = view.sample();
        for warning in &second.warnings {
            eprintln!("fadvise-shim: {warning}");
        }
        crate::output::print(view.text(&first, &second).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if terminal::is_terminal(libc::STDOUT_FILENO) {
        live(&view, interval)
    } else {
        plain(&view, interval)
    }
}

/// Prints a plain table every interval, a blank line between them, until
/// killed (or its reader goes away).
fn plain(view: &View, interval: Duration) -> Outcome {
    let mut previous = view.sample();
    loop {
        std::thread::sleep(interval);
        let current = view.sample();
        let mut text = view.text(&previous, &current);
        text.push('\n');
        crate::output::print(text.as_bytes())?;
        previous = current;
    }
}

/// Redraws the table in place every interval until `q` or a signal.
fn live(view: &View, interval: Duration) -> Outcome {
    let session = Session::start()?;
    session.draw(&[format!(
        "fadvise-shim top  sampling every {}s...",
        view.args.interval
    )])?;
    let mut previous = view.sample();
    let mut shown: Option<Sample> = None;
    let mut next_sample = Instant::now() + interval;
    loop {
        match session.next_event(next_sample) {
            Event::Quit(signal) => {
                drop(session);
                terminal::die_of(signal);
                return Ok(ExitCode::SUCCESS);
            }
            Event::Tick => {
                // A sample slower than the interval delays the next one
                // rather than making them back to back.
                next_sample = (next_sample + interval).max(Instant::now() + interval / 2);
                let current = view.sample();
                shown = Some(std::mem::replace(&mut previous, current));
            }
            // Redraw the last interval's figures at the new size.
            Event::Resized => {}
        }
        if let Some(before) = &shown {
            let size = terminal::size(libc::STDOUT_FILENO);
            session.draw(&view.lines(before, &previous, Some(size)))?;
        }
    }
}

struct View {
    args: TopArgs,
    dirs: Vec<PathBuf>,
}

impl View {
    fn sample(&self) -> Sample {
        sample::take(&self.dirs, self.args.by)
    }

    /// The plain table for the interval from `before` to `after`.
    fn text(&self, before: &Sample, after: &Sample) -> String {
        let mut text = self.lines(before, after, None).join("\n");
        text.push('\n');
        text
    }

    /// The screen for the interval from `before` to `after`, cut to `size`.
    fn lines(&self, before: &Sample, after: &Sample, size: Option<(usize, usize)>) -> Vec<String> {
        let mut rows = sample::rates(before, after);
        sample::sort(&mut rows, self.args.sort);
        let header = Header {
            by: self.args.by,
            sort: match self.args.sort {
                TopSort::Calls => "calls/s",
                TopSort::Time => "time/s",
                TopSort::P99 => "p99",
            },
            skipped: after.warnings.len(),
        };
        render::lines(&header, &rows, size)
    }
}

/// The directories named, each of which must be one; or this user's stats
/// directory, which must exist.
fn directories(named: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    if named.is_empty() {
        let found = crate::records::default_paths();
        if found.is_empty() {
            return Err(Failure(
                "no stats directory: no process has run under the shim as this user yet (or name a DIR)"
                    .into(),
            ));
        }
        return Ok(found);
    }
    for dir in named {
        if !dir.is_dir() {
            return Err(Failure(format!(
                "{}: no such stats directory",
                render::sanitize(&dir.display().to_string())
            )));
        }
    }
    Ok(named.to_vec())
}
