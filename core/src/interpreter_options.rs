//! `<WSGIInterpreterOptions>`, `WSGIPerInterpreterGIL` and
//! `WSGIFreeThreading`: parsed and checked as mod_wsgi 6 documents them.
//! Which Python could honour the GIL settings depends on the Python this
//! module is built for, so the start-up notes take that version.
use crate::args::Args;

pub const SECTION: &str = "<WSGIInterpreterOptions>";

/// The directives a `<WSGIInterpreterOptions>` section may hold.
pub const SECTION_DIRECTIVES: [&str; 7] = [
    "WSGIPerInterpreterGIL",
    "WSGIFreeThreading",
    "WSGISwitchInterval",
    "WSGIPythonPath",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
];

/// Which interpreters a section applies to: None matches any; `Some("")`
/// (written `%{GLOBAL}`) is embedded mode for a process group and the main
/// interpreter for an application group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
}

/// The arguments of the opening tag, as Apache passes them: the selector
/// words followed by the closing `>`.
pub fn parse_section(args: &str) -> Result<Selectors, String> {
    let Some(inner) = args.trim_end().strip_suffix('>') else {
        return Err(format!("{SECTION} is missing the closing '>' of its opening tag"));
    };
    let mut selectors = Selectors::default();
    // mod_wsgi splits the tag into words and each word at its first '=';
    // the selector names are not case-sensitive there.
    for word in Args::new(SECTION, inner).words()? {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("{SECTION}: '{word}' is not of the form process-group=NAME or application-group=NAME"));
        };
        let slot = match key.to_ascii_lowercase().as_str() {
            "process-group" => &mut selectors.process_group,
            "application-group" => &mut selectors.application_group,
            _ => return Err(format!("{SECTION}: unknown selector '{key}'; use process-group= and/or application-group=")),
        };
        if slot.is_some() {
            return Err(format!("{SECTION}: {} is given more than once", key.to_ascii_lowercase()));
        }
        *slot = Some(if value == "%{GLOBAL}" { String::new() } else { value.to_string() });
    }
    Ok(selectors)
}

/// Checks the directives inside a section, by name, before any runs.
pub fn check_section_contents(names: &[String]) -> Result<(), String> {
    match names.iter().find(|name| !SECTION_DIRECTIVES.iter().any(|d| d.eq_ignore_ascii_case(name))) {
        Some(name) => Err(format!("{name} cannot be used inside {SECTION}; it may hold only {}", SECTION_DIRECTIVES.join(", "))),
        None => Ok(()),
    }
}

/// A `major.minor` Python version such as "3.11".
pub fn python_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Why `WSGIPerInterpreterGIL On` has no effect with this module, if it has none.
pub fn per_interpreter_gil_note(python: (u32, u32)) -> Option<String> {
    (python < (3, 12)).then(|| {
        format!(
            "has no effect: a GIL per sub-interpreter (PEP 684) needs Python 3.12 or later, and this module is built for Python {}.{}",
            python.0, python.1
        )
    })
}

/// Why `WSGIFreeThreading On` has no effect with this module.
pub fn free_threading_note(python: (u32, u32)) -> String {
    if python < (3, 13) {
        format!(
            "has no effect: running without the GIL (PEP 703) needs a free-threaded build of Python 3.13 or later \
             (python3.13t), and this module is built for Python {}.{}",
            python.0, python.1
        )
    } else {
        "is accepted but not applied yet: mod_wsgi-rs always runs Python with the GIL".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::assert_refused;

    fn sel(process_group: Option<&str>, application_group: Option<&str>) -> Selectors {
        Selectors { process_group: process_group.map(str::to_string), application_group: application_group.map(str::to_string) }
    }

    #[test]
    fn selectors_from_the_docs() {
        // docs/configuration-directives/WSGIInterpreterOptions.rst (its examples and
        // the Selectors section) and WSGIFreeThreading.rst (its Selectors list).
        let cases = [
            ("process-group=daemon-1 application-group=app1>", sel(Some("daemon-1"), Some("app1"))),
            ("application-group=app1>", sel(None, Some("app1"))),
            ("process-group=daemon-1>", sel(Some("daemon-1"), None)),
            (">", sel(None, None)),
            ("process-group=%{GLOBAL}>", sel(Some(""), None)),
            ("application-group=%{GLOBAL}>", sel(None, Some(""))),
            ("process-group=NAME>", sel(Some("NAME"), None)),
            ("application-group=%{ENV:VAR}>", sel(None, Some("%{ENV:VAR}"))),
            // Selector names are not case-sensitive in mod_wsgi; whole words may be quoted.
            ("Process-Group=a \"application-group=b c\">", sel(Some("a"), Some("b c"))),
        ];
        for (args, expected) in cases {
            assert_eq!(parse_section(args), Ok(expected), "{args}");
        }
    }

    #[test]
    fn selector_errors() {
        let cases = [
            ("process-group=a", "missing the closing '>'"),
            ("process-group>", "'process-group' is not of the form"),
            ("user=x>", "unknown selector 'user'"),
            ("process-group=a process-group=b>", "process-group is given more than once"),
            ("'process-group=a>", "never closed"),
        ];
        assert_refused(SECTION, parse_section, &cases);
    }

    #[test]
    fn section_contents() {
        // WSGIInterpreterOptions.rst: "Permitted child directives", anything else is an error.
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_section_contents(&names(&SECTION_DIRECTIVES)), Ok(()));
        assert_eq!(check_section_contents(&names(&["wsgipythonpath", "WSGISwitchInterval"])), Ok(()));
        let err = check_section_contents(&names(&["WSGIPerInterpreterGIL", "WSGIScriptAlias"])).unwrap_err();
        assert!(err.starts_with("WSGIScriptAlias cannot be used inside <WSGIInterpreterOptions>"), "{err}");
        assert!(check_section_contents(&names(&["SetEnv"])).is_err());
    }

    #[test]
    fn python_notes() {
        assert_eq!(python_version("3.11"), Some((3, 11)));
        assert_eq!(python_version("3"), None);
        // WSGIPerInterpreterGIL.rst: 3.12 or later; WSGIFreeThreading.rst: a 3.13 free-threaded build.
        let gil = per_interpreter_gil_note((3, 11)).unwrap();
        assert!(gil.contains("Python 3.12 or later") && gil.contains("built for Python 3.11"), "{gil}");
        assert_eq!(per_interpreter_gil_note((3, 12)), None);
        assert_eq!(per_interpreter_gil_note((3, 13)), None);
        let free = free_threading_note((3, 11));
        assert!(free.contains("free-threaded build of Python 3.13 or later") && free.contains("built for Python 3.11"), "{free}");
        assert!(free_threading_note((3, 13)).contains("not applied yet"));
    }
}
