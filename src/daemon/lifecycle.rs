//! A daemon process's life after start-up: why and when it stops (signals,
//! recycling limits, timeouts), and the draining of requests in progress.
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signal_hook::consts::signal::SIGUSR1;
use signal_hook::iterator::Signals;

use super::conn::Connection;
use super::process::{log, Daemon, EXIT_CRASHED, EXIT_RECYCLED};
use crate::ffi::log::Level;
use crate::ffi::process as os;
use crate::python::interp;

/// Why a daemon process goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Signal,
    Eviction,
    ScriptReload,
    MaximumRequests,
    RestartInterval,
    InactivityTimeout,
    RequestTimeout,
    StartupTimeout,
    /// A thread of the process panicked (a bug in this module).
    InternalError,
}

impl Stop {
    /// For the error log.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Stop::Signal => "shutdown signal",
            Stop::Eviction => "SIGUSR1: graceful restart",
            Stop::ScriptReload => "script reload",
            Stop::MaximumRequests => "maximum-requests",
            Stop::RestartInterval => "restart-interval",
            Stop::InactivityTimeout => "inactivity-timeout",
            Stop::RequestTimeout => "request-timeout",
            Stop::StartupTimeout => "startup-timeout",
            Stop::InternalError => "internal error",
        }
    }

    /// mod_wsgi's `shutdown_reason` for `process_stopping` subscribers.
    pub(super) fn event_name(self) -> &'static str {
        match self {
            Stop::Signal => "shutdown_signal",
            Stop::Eviction => "graceful_signal",
            Stop::ScriptReload => "script_reload",
            Stop::MaximumRequests => "maximum_requests",
            Stop::RestartInterval => "restart_interval",
            Stop::InactivityTimeout => "inactivity_timeout",
            Stop::RequestTimeout => "request_timeout",
            Stop::StartupTimeout => "startup_timeout",
            Stop::InternalError => "internal_error",
        }
    }

    pub(super) fn exit_code(self) -> i32 {
        match self {
            Stop::InternalError => EXIT_CRASHED,
            _ => EXIT_RECYCLED,
        }
    }
}

#[derive(Default)]
pub(super) struct State {
    /// Why the process is going away, once it is; `deadline` is when it
    /// stops waiting for requests in progress.
    pub(super) draining: Option<(Stop, Instant)>,
    pub(super) active: usize,
}

/// What a worker thread is doing, for the request-timeout check.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) current: Mutex<Option<(Instant, Arc<Connection>)>>,
}

impl Daemon {
    /// Stops taking new work; the process exits once requests in progress
    /// finish or `drain` passes, whichever comes first. True if this call
    /// started the drain (false: it had started already).
    pub(super) fn begin_drain(&self, reason: Stop, drain: Option<Duration>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.draining.is_some() {
            return false;
        }
        state.draining = Some((reason, Instant::now() + drain.unwrap_or(Duration::ZERO)));
        let _ = self.epoll.delete(&self.listener);
        self.changed.notify_all();
        true
    }

    pub(super) fn draining(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).draining.is_some()
    }

    pub(super) fn wait_until_done(&self) -> Stop {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((reason, deadline)) = state.draining {
                if state.active == 0 || Instant::now() >= deadline {
                    return reason;
                }
                let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(200));
                state = self.changed.wait_timeout(state, wait).unwrap_or_else(|e| e.into_inner()).0;
            } else {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    pub(super) fn watch_signals(&self, mut signals: Signals) {
        for signal in signals.forever() {
            if signal == SIGUSR1 {
                let drain = self.spec().eviction_timeout.or(self.spec().graceful_timeout);
                self.begin_drain(Stop::Eviction, drain);
            } else {
                // Apache's parent waits 3 s after SIGTERM before SIGKILL.
                self.begin_drain(Stop::Signal, Some(self.spec().shutdown_timeout.unwrap_or(Duration::from_secs(2)).min(Duration::from_millis(2500))));
            }
        }
    }

    /// Takes every interpreter's GIL once a second, so the monitor can
    /// tell a deadlocked one; stops for good before Python is finalised.
    pub(super) fn watch_gil(&self) {
        loop {
            {
                let open = self.python_open.lock().unwrap_or_else(|e| e.into_inner());
                if !*open || !interp::touch_every_gil() {
                    return;
                }
            }
            *self.gil_taken.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// After a panic in thread `name` (the worker `worker`, if it is one):
    /// the request it was running no longer counts as in progress, and the
    /// process recycles.
    pub(super) fn after_panic(&self, name: &str, worker: Option<usize>) {
        let was_serving = worker.is_some_and(|n| self.slots[n].current.lock().unwrap_or_else(|e| e.into_inner()).take().is_some());
        if was_serving {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.active = state.active.saturating_sub(1);
            self.changed.notify_all();
        }
        log(self.server, Level::Crit, &format!("internal error in thread {name} of daemon process {} of group '{}'; restarting the process", std::process::id(), self.group.name()));
        self.begin_drain(Stop::InternalError, self.spec().graceful_timeout);
    }

    /// Twice a second: the timeouts that recycle the process.
    pub(super) fn monitor(&self) {
        let spec = self.spec();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = Instant::now();
            if let Some(limit) = spec.request_timeout {
                for slot in &self.slots {
                    let stuck = slot.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|(start, c)| now - *start > limit && !c.is_broken()).map(|(_, c)| c.clone());
                    if let Some(conn) = stuck {
                        log(self.server, Level::Err, &format!("request in daemon process {} of group '{}' ran longer than request-timeout ({}s); restarting the process", std::process::id(), self.group.name(), limit.as_secs()));
                        conn.fail_with(504);
                        self.begin_drain(Stop::RequestTimeout, spec.graceful_timeout);
                    }
                }
            }
            // Once stopping, the GIL watcher has stopped too, and the
            // reaper bounds what is left.
            let stopping = self.stopping.load(Ordering::SeqCst);
            if !stopping && spec.deadlock_timeout.is_some_and(|limit| now - *self.gil_taken.lock().unwrap_or_else(|e| e.into_inner()) > limit) {
                log(self.server, Level::Err, &format!("daemon process {} of group '{}' could not take the Python GIL for deadlock-timeout; restarting it", std::process::id(), self.group.name()));
                // The GIL is stuck: nothing in Python can be waited for.
                os::exit_now(EXIT_CRASHED)
            }
            if spec.restart_interval.is_some_and(|limit| now - self.started > limit) {
                self.begin_drain(Stop::RestartInterval, spec.graceful_timeout);
            }
            let failing = *self.load_failing_since.lock().unwrap_or_else(|e| e.into_inner());
            if spec.startup_timeout.zip(failing).is_some_and(|(limit, since)| now - since > limit) {
                log(self.server, Level::Err, &format!("the WSGI script of group '{}' has not loaded within startup-timeout; restarting daemon process {}", self.group.name(), std::process::id()));
                self.begin_drain(Stop::StartupTimeout, None);
            }
            let idle = self.state.lock().unwrap_or_else(|e| e.into_inner()).active == 0;
            if idle && spec.inactivity_timeout.is_some_and(|limit| now - *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) > limit) {
                self.begin_drain(Stop::InactivityTimeout, None);
            }
        }
    }
}
