//! start-server: Apache in the foreground, in a process group of its own
//! (so a terminal's signals, such as SIGWINCH on a resize, reach only us),
//! with the signals that control it passed on. When Apache's parent is
//! gone, nothing it started may outlive it.
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::server::Server;

/// How long processes left in Apache's group get to exit after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(5);

/// Runs Apache until it exits; returns the exit status for ours.
pub fn run(s: &Server) -> Result<i32, String> {
    // Registered before Apache starts, so a signal that comes early is held.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1]).map_err(|e| format!("cannot handle signals: {e}"))?;
    let apachectl = format!("{}/apachectl", s.server_root);
    let mut apache = Command::new(&apachectl)
        .args(["start", "-DFOREGROUND"])
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {apachectl}: {e}"))?;
    // apachectl execs Apache, so this is Apache's parent and its group.
    let pid = Pid::from_raw(apache.id() as i32);
    let handle = signals.handle();
    let forwarder = thread::spawn(move || {
        for number in signals.forever() {
            // SIGINT and SIGTERM stop Apache, SIGHUP restarts it, SIGUSR1 restarts it gracefully.
            if let Ok(signal) = Signal::try_from(number) {
                let _ = kill(pid, signal);
            }
        }
    });
    let status = apache.wait().map_err(|e| format!("cannot wait for Apache: {e}"))?;
    handle.close();
    let _ = forwarder.join();
    stop_leftovers(pid);
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Apache stops its children and daemons itself; anything still in its
/// process group afterwards is stopped here.
fn stop_leftovers(group: Pid) {
    let alive = || killpg(group, None).is_ok();
    if !alive() {
        return;
    }
    eprintln!("mod_wsgi-express: processes started by Apache outlived it; stopping them");
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + LEFTOVER_GRACE;
    while alive() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    if alive() {
        let _ = killpg(group, Signal::SIGKILL);
    }
}
