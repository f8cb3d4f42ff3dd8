//! Daemon mode: the Apache parent forks and supervises process groups
//! (`WSGIDaemonProcess`), and each Apache child hands requests for a group
//! to one of its processes over a UNIX socket (see docs/daemon-mode.md).
//!
//! - `group`: group definitions and the per-generation registry.
//! - `supervisor`: the parent's side: sockets, forking, respawning.
//! - `process`: a daemon process: identity, Python, its worker threads.
//! - `transport`: a request's response and body inside a daemon.
//! - `client`: the Apache child's side: pooled connections, proxying.
pub mod client;
pub mod group;
pub mod process;
pub mod supervisor;
mod transport;
