//! What start-server and setup-server print before Apache starts: where the
//! server is and how it is set up.
use crate::options::Mpm;
use crate::server::Server;

/// "1 thread", "2 threads".
fn count(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn lines(s: &Server) -> Vec<(&'static str, String)> {
    let o = &s.o;
    let mut lines = vec![("URL", s.url.clone())];
    if let Some(url) = &s.https_url {
        lines.push(("HTTPS URL", url.clone()));
    }
    if o.server_status {
        lines.push(("Server status", format!("{}server-status", s.url)));
    }
    lines.push(("Server root", s.server_root.clone()));
    lines.push(("Configuration", s.httpd_conf.clone()));
    lines.push(("Control script", format!("{}/apachectl", s.server_root)));
    lines.push(("Error log", format!("{} (level {})", s.error_log_target, o.log_level)));
    if o.access_log {
        lines.push(("Access log", s.access_log_target.clone()));
    }
    if let Some(log) = &s.startup_log {
        lines.push(("Start-up log", log.clone()));
    }
    let mode = if o.embedded_mode { "embedded (in Apache's processes)" } else { "daemon processes" };
    lines.push(("Mode", format!("{mode}, {} MPM", s.mpm.name())));
    let processes = o.processes.unwrap_or(1);
    lines.push(("Capacity", format!("{} at once ({} × {})", count(processes * o.threads, "request", "requests"), count(processes, "process", "processes"), count(o.threads, "thread", "threads"))));
    if !o.embedded_mode {
        let timeouts = [("request", o.request_timeout), ("queue", o.queue_timeout), ("startup", o.startup_timeout), ("socket", o.socket_timeout), ("connect", o.connect_timeout)];
        let timeouts: Vec<String> = timeouts.iter().map(|(name, seconds)| format!("{name} {seconds}s")).collect();
        lines.push(("Timeouts", timeouts.join(", ")));
        lines.push(("Daemon backlog", count(o.daemon_backlog, "connection", "connections")));
        lines.push(("Apache workers", format!("{} (event/worker), {} (prefork)", s.capacity.threaded.max_clients, s.capacity.prefork.max_clients)));
    }
    lines.push(("Server backlog", count(o.server_backlog, "connection", "connections")));
    lines.push(("Locale", s.locale.clone()));
    lines
}

/// Said once, with embedded mode under prefork.
pub fn prefork_warning(s: &Server) -> Option<String> {
    (s.o.embedded_mode && s.mpm == Mpm::Prefork).then(|| {
        format!(
            "embedded mode under the prefork MPM runs a copy of the application in each of up to {} Apache \
             processes, each serving one connection at a time: memory grows with the number of clients, and \
             a slow client holds a whole Python process. Daemon mode (the default, without --embedded-mode) \
             keeps the application in a fixed pool of threaded processes while Apache's processes only handle \
             the connections.",
            s.capacity.prefork.max_clients
        )
    })
}

pub fn print(s: &Server) {
    println!("mod_wsgi-express (mod_wsgi-rs {})", s.version);
    let lines = lines(s);
    let width = lines.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in lines {
        println!("  {label:<width$}  {value}");
    }
    for warning in s.warnings.iter().cloned().chain(prefork_warning(s)) {
        eprintln!("mod_wsgi-express: warning: {warning}");
    }
}
