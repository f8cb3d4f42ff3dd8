//! `WSGITelemetryService`, `WSGISlowRequests` and `WSGITelemetryOptions`:
//! checked as mod_wsgi 6 documents them, so a configuration that mod_wsgi
//! refuses is refused here too. The reporter itself is not part of
//! mod_wsgi-rs yet, so nothing is kept beyond the check.
use crate::args::Args;

const SERVICE: &str = "WSGITelemetryService";
const OPTIONS: &str = "WSGITelemetryOptions";

/// The capture flags `WSGITelemetryOptions` knows.
const FLAGS: [&str; 1] = ["CaptureUserAgent"];

fn seconds(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|s| s.is_finite())
}

/// `WSGITelemetryService unix:/path [interval=SECONDS]`.
pub fn check_service(line: &str) -> Result<(), String> {
    let words = Args::new(SERVICE, line).words()?;
    let (target, interval) = match words.as_slice() {
        [target] => (target, None),
        [target, interval] => (target, Some(interval)),
        [] => return Err(format!("{SERVICE} needs the ingester's socket, as in `{SERVICE} unix:/run/telemetry.sock`")),
        _ => return Err(format!("{SERVICE} takes a unix:/path target and at most interval=SECONDS")),
    };
    match target.strip_prefix("unix:") {
        Some(path) if !path.is_empty() => {}
        Some(_) => return Err(format!("{SERVICE} needs a socket path after 'unix:'")),
        None => return Err(format!("{SERVICE} target must be unix:/path/to/socket (no other transport is supported), not '{target}'")),
    }
    if let Some(interval) = interval {
        let Some(value) = interval.strip_prefix("interval=") else {
            return Err(format!("{SERVICE}: the second argument must be interval=SECONDS, not '{interval}'"));
        };
        if !seconds(value).is_some_and(|s| s >= 0.5) {
            return Err(format!("{SERVICE} interval= must be a number of seconds of at least 0.5, not '{value}'"));
        }
    }
    Ok(())
}

/// `WSGISlowRequests SECONDS`: a threshold of zero or more seconds.
pub fn check_slow_requests(value: &str) -> Result<(), String> {
    match seconds(value) {
        Some(s) if s >= 0.0 => Ok(()),
        _ => Err(format!("WSGISlowRequests takes a threshold in seconds, 0 or more (such as 2.0), not '{value}'")),
    }
}

/// `WSGITelemetryOptions`: flags in Apache's `Options` style, either all
/// absolute (`Flag`, `None`, `All`) or all incremental (`+Flag`, `-Flag`).
pub fn check_options(line: &str) -> Result<(), String> {
    let words = Args::new(OPTIONS, line).words()?;
    if words.is_empty() {
        return Err(format!("{OPTIONS} needs at least one of {}, None or All (or +Flag / -Flag)", FLAGS.join(", ")));
    }
    let incremental = |w: &String| w.starts_with(['+', '-']);
    if words.iter().any(incremental) && !words.iter().all(incremental) {
        return Err(format!("{OPTIONS} cannot mix +Flag/-Flag with flags written without a sign on one line"));
    }
    for word in &words {
        let name = word.trim_start_matches(['+', '-']);
        if word.len() - name.len() > 1 || (incremental(word) && name.is_empty()) {
            return Err(format!("{OPTIONS}: '{word}' is not a flag; write +Flag or -Flag"));
        }
        if ["None", "All"].iter().any(|n| n.eq_ignore_ascii_case(name)) {
            if incremental(word) {
                return Err(format!("{OPTIONS}: {name} cannot take a + or - sign"));
            }
        } else if !FLAGS.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            return Err(format!("{OPTIONS}: unknown flag '{name}'; the flags are {}, None and All", FLAGS.join(", ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_refused;

    #[test]
    fn service() {
        // docs/configuration-directives/WSGITelemetryService.rst: its syntax and Validation list.
        for good in ["unix:/path/to/socket", "unix:/run/t.sock interval=0.5", "unix:/run/t.sock interval=2", "'unix:/run/my t.sock' 'interval=1.0'"] {
            assert_eq!(check_service(good), Ok(()), "{good}");
        }
        let cases = [
            ("", "needs the ingester's socket"),
            ("udp:host:9000", "must be unix:/path/to/socket"),
            ("unix:", "needs a socket path"),
            ("unix:/run/t.sock interval=0.4", "at least 0.5, not '0.4'"),
            ("unix:/run/t.sock interval=0", "at least 0.5"),
            ("unix:/run/t.sock interval=-1", "at least 0.5"),
            ("unix:/run/t.sock interval=abc", "at least 0.5"),
            ("unix:/run/t.sock every=5", "must be interval=SECONDS, not 'every=5'"),
            ("unix:/a interval=1 extra", "at most interval=SECONDS"),
        ];
        assert_refused(SERVICE, check_service, &cases);
    }

    #[test]
    fn slow_requests() {
        // docs/configuration-directives/WSGISlowRequests.rst: `SECONDS`, zero accepted, negative refused.
        for good in ["2.0", "0", "10"] {
            assert_eq!(check_slow_requests(good), Ok(()), "{good}");
        }
        for bad in ["-1", "", "abc", "inf"] {
            assert!(check_slow_requests(bad).unwrap_err().starts_with("WSGISlowRequests"), "{bad}");
        }
    }

    #[test]
    fn options() {
        // docs/configuration-directives/WSGITelemetryOptions.rst: the two forms and its Validation list.
        for good in ["+CaptureUserAgent", "-CaptureUserAgent", "None", "All", "CaptureUserAgent", "captureuseragent", "None CaptureUserAgent"] {
            assert_eq!(check_options(good), Ok(()), "{good}");
        }
        let cases = [
            ("", "needs at least one of CaptureUserAgent"),
            ("+", "'+' is not a flag"),
            ("-", "'-' is not a flag"),
            ("++CaptureUserAgent", "is not a flag"),
            ("+Bogus", "unknown flag 'Bogus'"),
            ("Bogus", "unknown flag 'Bogus'"),
            ("+None", "None cannot take a + or - sign"),
            ("-All", "All cannot take a + or - sign"),
            ("None +CaptureUserAgent", "cannot mix"),
            ("+CaptureUserAgent All", "cannot mix"),
        ];
        assert_refused(OPTIONS, check_options, &cases);
    }
}
