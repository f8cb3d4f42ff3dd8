//! How many Apache processes and threads to run, from the application's
//! processes and threads, by mod_wsgi-express's rules.
//!
//! In daemon mode Apache's workers only relay requests, so Apache gets
//! headroom over the daemons' threads: 1.5 times as many, plus 10, and at
//! least 20 (or `--max-clients`). In embedded mode Apache's workers *are*
//! the application's threads, so the sizes are exactly processes × threads.

/// The shares (0 to 1 of the maximum clients) the MPM starts with and keeps idle.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spares {
    pub initial: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefork {
    pub server_limit: u32,
    pub max_clients: u32,
    pub start_servers: u32,
    pub min_spare_servers: u32,
    pub max_spare_servers: u32,
}

/// The worker and event MPMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threaded {
    pub server_limit: u32,
    pub thread_limit: u32,
    pub threads_per_child: u32,
    pub max_clients: u32,
    pub start_servers: u32,
    pub min_spare_threads: u32,
    pub max_spare_threads: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub prefork: Prefork,
    pub threaded: Threaded,
}

/// `share` of `total`, rounded down, at least 1.
fn portion(share: f64, total: u32) -> u32 {
    ((share * f64::from(total)) as u32).max(1)
}

impl Capacity {
    pub fn daemon(processes: u32, threads: u32, max_clients: Option<u32>, spares: Spares) -> Capacity {
        let threads_total = processes * threads;
        let max_clients = match max_clients {
            Some(m) => m.max(threads_total),
            None => 10 + 10.max((1.5 * f64::from(threads_total)) as u32),
        };

        let initial = spares.initial.unwrap_or(0.05);
        let prefork = Prefork {
            server_limit: max_clients,
            max_clients,
            start_servers: portion(initial, max_clients),
            min_spare_servers: portion(spares.minimum.unwrap_or(initial), max_clients),
            max_spare_servers: portion(spares.maximum.unwrap_or(0.1), max_clients),
        };

        // At most 20 threads a child: split the clients over enough children.
        let threads_per_child = if max_clients > 20 { max_clients / (max_clients / 20 + 1) } else { 10 };
        let server_limit = max_clients.div_ceil(threads_per_child);
        let initial = spares.initial.unwrap_or(0.2);
        let spare_threads = |share: f64| threads_per_child.max((share * f64::from(server_limit)) as u32 * threads_per_child);
        let threaded = Threaded {
            server_limit,
            thread_limit: threads_per_child,
            threads_per_child,
            max_clients: server_limit * threads_per_child,
            start_servers: portion(initial, server_limit),
            min_spare_threads: spare_threads(spares.minimum.unwrap_or(initial)),
            max_spare_threads: spare_threads(spares.maximum.unwrap_or(0.6)),
        };
        Capacity { prefork, threaded }
    }

    pub fn embedded(processes: u32, threads: u32) -> Capacity {
        let total = processes * threads;
        Capacity {
            prefork: Prefork { server_limit: total, max_clients: total, start_servers: total, min_spare_servers: total, max_spare_servers: total },
            threaded: Threaded {
                server_limit: processes,
                thread_limit: threads,
                threads_per_child: threads,
                max_clients: total,
                start_servers: processes,
                min_spare_threads: total,
                max_spare_threads: total,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_daemon_sizes() {
        // 1 process × 5 threads: 10 + max(10, 7) = 20 clients.
        let c = Capacity::daemon(1, 5, None, Spares::default());
        assert_eq!(c.prefork, Prefork { server_limit: 20, max_clients: 20, start_servers: 1, min_spare_servers: 1, max_spare_servers: 2 });
        assert_eq!(
            c.threaded,
            Threaded { server_limit: 2, thread_limit: 10, threads_per_child: 10, max_clients: 20, start_servers: 1, min_spare_threads: 10, max_spare_threads: 10 }
        );
    }

    #[test]
    fn larger_daemon_sizes_split_threads_over_children() {
        // 3 × 10 threads: 10 + 45 = 55 clients, 18 threads in each of 4 children.
        let c = Capacity::daemon(3, 10, None, Spares::default());
        assert_eq!(c.prefork.max_clients, 55);
        assert_eq!(c.prefork.start_servers, 2);
        assert_eq!(c.prefork.max_spare_servers, 5);
        assert_eq!(
            c.threaded,
            Threaded { server_limit: 4, thread_limit: 18, threads_per_child: 18, max_clients: 72, start_servers: 1, min_spare_threads: 18, max_spare_threads: 36 }
        );
    }

    #[test]
    fn max_clients_is_never_below_the_threads() {
        assert_eq!(Capacity::daemon(2, 10, Some(5), Spares::default()).prefork.max_clients, 20);
        assert_eq!(Capacity::daemon(2, 10, Some(80), Spares::default()).prefork.max_clients, 80);
    }

    #[test]
    fn spare_shares_apply() {
        let spares = Spares { initial: Some(0.5), minimum: Some(0.25), maximum: Some(1.0) };
        let c = Capacity::daemon(1, 5, None, spares);
        assert_eq!((c.prefork.start_servers, c.prefork.min_spare_servers, c.prefork.max_spare_servers), (10, 5, 20));
        assert_eq!((c.threaded.start_servers, c.threaded.min_spare_threads, c.threaded.max_spare_threads), (1, 10, 20));
    }

    #[test]
    fn embedded_sizes_are_exact() {
        let c = Capacity::embedded(2, 3);
        assert_eq!(c.prefork.max_clients, 6);
        assert_eq!((c.threaded.server_limit, c.threaded.threads_per_child, c.threaded.max_clients), (2, 3, 6));
    }
}
