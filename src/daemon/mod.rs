//! Daemon mode: the Apache parent forks and supervises process groups
//! (`WSGIDaemonProcess`), and each Apache child hands requests for a group
//! to one of its processes over a UNIX socket (see docs/daemon-mode.md).
//!
//! - `group`: group definitions and the per-generation registry.
//! - `supervisor`: the parent's side: sockets, forking, respawning.
//! - `process`: a daemon process's start-up and exit.
//! - `identity`: the user, groups and process settings a daemon takes on.
//! - `lifecycle`: signals, recycling limits, timeouts and draining.
//! - `workers`: the worker threads, accepting and serving connections.
//! - `conn`: one connection from an Apache child, daemon side.
//! - `transport`: a request's response and body inside a daemon.
//! - `client`: the Apache child's side: pooled connections, proxying.
#![forbid(unsafe_code)]
pub mod client;
mod conn;
pub mod group;
pub mod identity;
mod lifecycle;
pub mod process;
pub mod supervisor;
mod transport;
mod workers;
