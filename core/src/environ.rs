//! The rules mod_wsgi applies when turning a request into WSGI environ keys.

/// The environ key for a request header, or `None` when the header must not
/// reach the app: names with characters other than letters, digits and '-'
/// (so `X_Foo` cannot pose as `X-Foo`), `Proxy` (httpoxy), and the
/// credentials headers, which only `WSGIPassAuthorization` lets through.
pub fn header_key(name: &[u8]) -> Option<String> {
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return None;
    }
    if name.eq_ignore_ascii_case(b"proxy") || name.eq_ignore_ascii_case(b"authorization") || name.eq_ignore_ascii_case(b"proxy-authorization") {
        return None;
    }
    if name.eq_ignore_ascii_case(b"content-type") {
        return Some("CONTENT_TYPE".to_string());
    }
    if name.eq_ignore_ascii_case(b"content-length") {
        return Some("CONTENT_LENGTH".to_string());
    }
    let mut key = String::with_capacity(5 + name.len());
    key.push_str("HTTP_");
    key.extend(name.iter().map(|&b| if b == b'-' { '_' } else { b.to_ascii_uppercase() as char }));
    Some(key)
}

/// Environment variables from Apache (`SetEnv`, mod_rewrite, mod_ssl) that
/// never reach the app: the search path and the dynamic loader's variables.
pub fn is_hidden_env(name: &str) -> bool {
    matches!(name, "PATH" | "LD_LIBRARY_PATH" | "DYLD_LIBRARY_PATH" | "LIBPATH" | "SHLIB_PATH")
}

/// Environ keys whose values are file system paths, decoded as Python
/// decodes paths rather than as Latin-1.
pub fn is_path_key(key: &str) -> bool {
    matches!(key, "DOCUMENT_ROOT" | "SCRIPT_FILENAME")
}

/// Collapses runs of '/' into one, as mod_wsgi does for SCRIPT_NAME and PATH_INFO.
pub fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut previous_slash = false;
    for c in path.chars() {
        if c == '/' && previous_slash {
            continue;
        }
        previous_slash = c == '/';
        out.push(c);
    }
    out
}

/// Splits the request URI into SCRIPT_NAME and PATH_INFO, given the path info
/// Apache found after the script: SCRIPT_NAME is the URI up to where the path
/// info starts (matched from the end, since the URI may hold extra slashes),
/// and a script mounted at `/` gives an empty SCRIPT_NAME.
pub fn split_script_name(uri: &str, path_info: &str) -> (String, String) {
    let script = if !path_info.is_empty() && uri.ends_with(path_info) {
        &uri[..uri.len() - path_info.len()]
    } else if !path_info.is_empty() {
        let collapsed_info = collapse_slashes(path_info);
        let collapsed_uri = collapse_slashes(uri);
        let end = collapsed_uri.len().saturating_sub(collapsed_info.len());
        return (collapse_slashes(collapsed_uri[..end].trim_end_matches('/')), collapsed_info);
    } else {
        uri
    };
    let script = collapse_slashes(script);
    let script = script.trim_end_matches('/').to_string();
    (script, collapse_slashes(path_info))
}

/// Where a `WSGIScriptAlias` prefix matches a URI: at a path-segment boundary,
/// with repeated slashes in the URI counting as one. Returns the length of the
/// URI that the alias consumed; the rest is appended to the target. For a
/// file target the slashes ending the match stay in the rest, so that
/// `WSGIScriptAlias / /srv/app.wsgi` maps `/x` to `/srv/app.wsgi/x`
/// (PATH_INFO `/x`), not `/srv/app.wsgix`.
pub fn alias_match_len(uri: &str, alias: &str, target_is_dir: bool) -> Option<usize> {
    let consumed = prefix_match_len(uri, alias)?;
    if target_is_dir {
        return Some(consumed);
    }
    Some(uri[..consumed].trim_end_matches('/').len())
}

fn prefix_match_len(uri: &str, alias: &str) -> Option<usize> {
    let uri_b = uri.as_bytes();
    let alias_b = alias.as_bytes();
    let (mut u, mut a) = (0, 0);
    while a < alias_b.len() {
        if alias_b[a] == b'/' {
            if u >= uri_b.len() || uri_b[u] != b'/' {
                return None;
            }
            while a < alias_b.len() && alias_b[a] == b'/' {
                a += 1;
            }
            while u < uri_b.len() && uri_b[u] == b'/' {
                u += 1;
            }
        } else {
            if u >= uri_b.len() || uri_b[u] != alias_b[a] {
                return None;
            }
            u += 1;
            a += 1;
        }
    }
    // A match must end at a segment boundary: "/app" matches "/app/x", not "/apple".
    if !alias.ends_with('/') && u < uri_b.len() && uri_b[u] != b'/' {
        return None;
    }
    Some(u)
}

/// Expands `$0`…`$9` in a `WSGIScriptAliasMatch` target with the groups
/// the pattern captured (an unmatched group expands to nothing); `\$` is a
/// literal '$'.
pub fn substitute_captures(template: &str, groups: &[Option<&str>]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('$') | Some('\\')) => out.push(chars.next().expect("peeked")),
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let n = chars.next().and_then(|d| d.to_digit(10)).expect("peeked a digit") as usize;
                out.push_str(groups.get(n).copied().flatten().unwrap_or(""));
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys() {
        assert_eq!(header_key(b"X-Foo").as_deref(), Some("HTTP_X_FOO"));
        assert_eq!(header_key(b"user-agent").as_deref(), Some("HTTP_USER_AGENT"));
        assert_eq!(header_key(b"Content-Type").as_deref(), Some("CONTENT_TYPE"));
        assert_eq!(header_key(b"content-length").as_deref(), Some("CONTENT_LENGTH"));
        assert_eq!(header_key(b"X_Foo"), None);
        assert_eq!(header_key(b"X.Foo"), None);
        assert_eq!(header_key(b""), None);
        assert_eq!(header_key(b"Proxy"), None);
        assert_eq!(header_key(b"Authorization"), None);
        assert_eq!(header_key(b"Proxy-Authorization"), None);
    }

    #[test]
    fn hidden_env() {
        assert!(is_hidden_env("PATH"));
        assert!(is_hidden_env("LD_LIBRARY_PATH"));
        assert!(!is_hidden_env("FOO"));
    }

    #[test]
    fn script_name_split() {
        assert_eq!(split_script_name("/app/x/y", "/x/y"), ("/app".into(), "/x/y".into()));
        assert_eq!(split_script_name("/x/y", "/x/y"), ("".into(), "/x/y".into()));
        assert_eq!(split_script_name("/", ""), ("".into(), "".into()));
        assert_eq!(split_script_name("/app", ""), ("/app".into(), "".into()));
        assert_eq!(split_script_name("//app//x", "/x"), ("/app".into(), "/x".into()));
        assert_eq!(split_script_name("/app//x//y", "/x/y"), ("/app".into(), "/x/y".into()));
        assert_eq!(split_script_name("/scripts/a.wsgi/extra", "/extra"), ("/scripts/a.wsgi".into(), "/extra".into()));
    }

    #[test]
    fn alias_matching() {
        assert_eq!(alias_match_len("/app/x", "/app", false), Some(4));
        assert_eq!(alias_match_len("/app", "/app", false), Some(4));
        assert_eq!(alias_match_len("/apple", "/app", false), None);
        assert_eq!(alias_match_len("//app//x", "/app", false), Some(5));
        assert_eq!(alias_match_len("/anything", "/", false), Some(0), "a root mount keeps the slash for PATH_INFO");
        assert_eq!(alias_match_len("/", "/", false), Some(0));
        assert_eq!(alias_match_len("/app/x", "/app/", false), Some(4));
        assert_eq!(alias_match_len("/scripts/a.wsgi", "/scripts/", true), Some(9));
        assert_eq!(alias_match_len("/scripts", "/scripts/", true), None);
        assert_eq!(alias_match_len("/other", "/app", false), None);
    }

    #[test]
    fn capture_substitution() {
        let groups = [Some("/m/app"), Some("app"), None];
        assert_eq!(substitute_captures("/srv/$1.wsgi", &groups), "/srv/app.wsgi");
        assert_eq!(substitute_captures("/srv/$2x$9", &groups), "/srv/x");
        assert_eq!(substitute_captures("/cost\\$1", &groups), "/cost$1");
        assert_eq!(substitute_captures("/a$", &groups), "/a$");
    }

    #[test]
    fn slashes() {
        assert_eq!(collapse_slashes("//a///b/"), "/a/b/");
        assert_eq!(collapse_slashes(""), "");
    }
}
