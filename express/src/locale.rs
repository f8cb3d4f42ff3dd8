//! The locale the application's processes get, as mod_wsgi-express picks
//! it: `--locale` (or `--lang`), else this process's locale; a plain C or
//! POSIX locale is upgraded to a UTF-8 one so Python's file system and
//! stdio encodings are UTF-8.
use std::process::Command;

/// The locale named by the environment, as the C library reads it.
fn from_environment(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()))
        .or_else(|| var("LANGUAGE").and_then(|v| v.split(':').next().map(str::to_string)).filter(|v| !v.is_empty()))
}

/// `en_US.utf8` → `en_US.UTF-8`; the modifier (`@euro`) stays.
fn normalize(name: &str) -> String {
    let (base, modifier) = name.split_once('@').map_or((name, None), |(b, m)| (b, Some(m)));
    let base = match base.split_once('.') {
        Some((language, encoding)) if encoding.eq_ignore_ascii_case("utf8") || encoding.eq_ignore_ascii_case("utf-8") => format!("{language}.UTF-8"),
        _ => base.to_string(),
    };
    modifier.map_or(base.clone(), |m| format!("{base}@{m}"))
}

fn available_locales() -> Vec<String> {
    Command::new("locale")
        .arg("-a")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).lines().map(normalize).collect())
        .unwrap_or_default()
}

/// `chosen` is `--locale`, else `--lang`.
pub fn choose(chosen: Option<&str>, var: impl Fn(&str) -> Option<String>) -> String {
    let name = chosen.map(str::to_string).or_else(|| from_environment(var)).map_or_else(|| "C".to_string(), |n| normalize(&n));
    if !(name.eq_ignore_ascii_case("C") || name.eq_ignore_ascii_case("POSIX")) {
        return name;
    }
    if available_locales().iter().any(|l| l == "en_US.UTF-8") {
        "en_US.UTF-8".to_string()
    } else {
        // Built into the C library since glibc 2.35.
        "C.UTF-8".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_environment_in_the_c_librarys_order() {
        assert_eq!(from_environment(env(&[("LANG", "de_DE.utf8"), ("LC_ALL", "fr_FR.UTF-8")])), Some("fr_FR.UTF-8".into()));
        assert_eq!(from_environment(env(&[("LC_ALL", ""), ("LANG", "de_DE")])), Some("de_DE".into()));
        assert_eq!(from_environment(env(&[("LANGUAGE", "pt_BR:pt")])), Some("pt_BR".into()));
        assert_eq!(from_environment(env(&[])), None);
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("en_US.utf8"), "en_US.UTF-8");
        assert_eq!(normalize("de_DE.utf-8@euro"), "de_DE.UTF-8@euro");
        assert_eq!(normalize("C"), "C");
    }

    #[test]
    fn a_named_locale_is_kept_and_c_is_upgraded() {
        assert_eq!(choose(Some("de_DE.utf8"), env(&[("LANG", "fr_FR.UTF-8")])), "de_DE.UTF-8");
        assert_eq!(choose(None, env(&[("LANG", "de_DE.utf8")])), "de_DE.UTF-8");
        assert!(choose(Some("POSIX"), env(&[])).ends_with(".UTF-8"));
        assert!(choose(None, env(&[("LANG", "C")])).ends_with(".UTF-8"));
        assert!(choose(None, env(&[])).ends_with(".UTF-8"));
    }
}
