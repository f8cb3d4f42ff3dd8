//! The rules mod_wsgi applies when turning a request into WSGI environ keys.

/// The environ key for a request header, or `None` when the header must not
/// reach the app: names with characters other than letters, digits and '-'
/// (so `X_Foo` cannot pose as `X-Foo`), `Proxy` (httpoxy), and the
/// credentials headers unless `pass_credentials` (Apache's `CGIPassAuth On`;
/// `WSGIPassAuthorization` adds `Authorization` separately).
pub fn header_key(name: &[u8], pass_credentials: bool) -> Option<String> {
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return None;
    }
    if name.eq_ignore_ascii_case(b"proxy") {
        return None;
    }
    if !pass_credentials && (name.eq_ignore_ascii_case(b"authorization") || name.eq_ignore_ascii_case(b"proxy-authorization")) {
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
/// never reach the app: the search path, the dynamic loader's variables, and
/// `HTTPS`, which the app sees as `wsgi.url_scheme` instead (as in mod_wsgi 6).
pub fn is_hidden_env(name: &str) -> bool {
    matches!(name, "PATH" | "LD_LIBRARY_PATH" | "DYLD_LIBRARY_PATH" | "LIBPATH" | "SHLIB_PATH" | "HTTPS")
}

/// Environ keys whose values are file system paths, decoded as Python
/// decodes paths rather than as Latin-1.
pub fn is_path_key(key: &str) -> bool {
    matches!(key, "DOCUMENT_ROOT" | "SCRIPT_FILENAME")
}

/// Collapses runs of '/' into one, as mod_wsgi does for SCRIPT_NAME and PATH_INFO.
pub fn collapse_slashes(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    out
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &path[..end]
}

/// Splits the request URI into SCRIPT_NAME and PATH_INFO, given the path info
/// Apache found after the script: SCRIPT_NAME is the URI up to where the path
/// info starts (matched from the end, since the URI may hold extra slashes),
/// so a script mounted at `/` gives an empty SCRIPT_NAME; without path info
/// it is the whole URI (`/` for a handler serving the root directory, as in
/// mod_wsgi). Both are the bytes of the decoded URI, which WSGI hands to
/// the app as Latin-1.
pub fn split_script_name(uri: &[u8], path_info: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if path_info.is_empty() {
        return (collapse_slashes(uri), Vec::new());
    }
    let script = if uri.ends_with(path_info) {
        &uri[..uri.len() - path_info.len()]
    } else {
        let collapsed_info = collapse_slashes(path_info);
        let collapsed_uri = collapse_slashes(uri);
        let end = collapsed_uri.len().saturating_sub(collapsed_info.len());
        return (collapse_slashes(trim_trailing_slashes(&collapsed_uri[..end])), collapsed_info);
    };
    (trim_trailing_slashes(&collapse_slashes(script)).to_vec(), collapse_slashes(path_info))
}

/// Where a `WSGIScriptAlias` prefix matches a URI: at a path-segment boundary,
/// with repeated slashes in the URI counting as one. Returns the length of the
/// URI that the alias consumed; the rest is appended to the target. For a
/// file target the slashes ending the match stay in the rest, so that
/// `WSGIScriptAlias / /srv/app.wsgi` maps `/x` to `/srv/app.wsgi/x`
/// (PATH_INFO `/x`), not `/srv/app.wsgix`.
pub fn alias_match_len(uri: &[u8], alias: &str, target_is_dir: bool) -> Option<usize> {
    let consumed = prefix_match_len(uri, alias)?;
    if target_is_dir {
        return Some(consumed);
    }
    Some(trim_trailing_slashes(&uri[..consumed]).len())
}

fn prefix_match_len(uri_b: &[u8], alias: &str) -> Option<usize> {
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
/// literal '$'. The captures are URI bytes, kept as they are.
pub fn substitute_captures(template: &str, groups: &[Option<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut bytes = template.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' if matches!(bytes.peek(), Some(b'$') | Some(b'\\')) => out.push(bytes.next().expect("peeked")),
            b'$' if bytes.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let n = usize::from(bytes.next().expect("peeked a digit") - b'0');
                out.extend_from_slice(groups.get(n).copied().flatten().unwrap_or(b""));
            }
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys() {
        assert_eq!(header_key(b"X-Foo", false).as_deref(), Some("HTTP_X_FOO"));
        assert_eq!(header_key(b"user-agent", false).as_deref(), Some("HTTP_USER_AGENT"));
        assert_eq!(header_key(b"Content-Type", false).as_deref(), Some("CONTENT_TYPE"));
        assert_eq!(header_key(b"content-length", false).as_deref(), Some("CONTENT_LENGTH"));
        assert_eq!(header_key(b"X_Foo", false), None);
        assert_eq!(header_key(b"X.Foo", false), None);
        assert_eq!(header_key(b"", false), None);
        assert_eq!(header_key(b"Proxy", false), None);
        assert_eq!(header_key(b"Proxy", true), None);
        assert_eq!(header_key(b"Authorization", false), None);
        assert_eq!(header_key(b"Proxy-Authorization", false), None);
        assert_eq!(header_key(b"Authorization", true).as_deref(), Some("HTTP_AUTHORIZATION"));
        assert_eq!(header_key(b"Proxy-Authorization", true).as_deref(), Some("HTTP_PROXY_AUTHORIZATION"));
    }

    #[test]
    fn hidden_env() {
        assert!(is_hidden_env("PATH"));
        assert!(is_hidden_env("LD_LIBRARY_PATH"));
        assert!(is_hidden_env("HTTPS"));
        assert!(!is_hidden_env("FOO"));
    }

    #[test]
    fn script_name_split() {
        let split = |uri: &str, info: &str| {
            let (script, info) = split_script_name(uri.as_bytes(), info.as_bytes());
            (String::from_utf8(script).unwrap(), String::from_utf8(info).unwrap())
        };
        assert_eq!(split("/app/x/y", "/x/y"), ("/app".into(), "/x/y".into()));
        assert_eq!(split("/x/y", "/x/y"), ("".into(), "/x/y".into()));
        // A handler serving a directory (mod_wsgi-express's for `/`).
        assert_eq!(split("/", ""), ("/".into(), "".into()));
        assert_eq!(split("/static//", ""), ("/static/".into(), "".into()));
        assert_eq!(split("/app", ""), ("/app".into(), "".into()));
        assert_eq!(split("//app//x", "/x"), ("/app".into(), "/x".into()));
        assert_eq!(split("/app//x//y", "/x/y"), ("/app".into(), "/x/y".into()));
        assert_eq!(split("/scripts/a.wsgi/extra", "/extra"), ("/scripts/a.wsgi".into(), "/extra".into()));
        // Bytes that are not UTF-8 come through untouched (PEP 3333 Latin-1).
        assert_eq!(split_script_name(b"/caf\xe9/x\xff", b"/x\xff"), (b"/caf\xe9".to_vec(), b"/x\xff".to_vec()));
    }

    #[test]
    fn alias_matching() {
        assert_eq!(alias_match_len(b"/app/x", "/app", false), Some(4));
        assert_eq!(alias_match_len(b"/app", "/app", false), Some(4));
        assert_eq!(alias_match_len(b"/apple", "/app", false), None);
        assert_eq!(alias_match_len(b"//app//x", "/app", false), Some(5));
        assert_eq!(alias_match_len(b"/anything", "/", false), Some(0), "a root mount keeps the slash for PATH_INFO");
        assert_eq!(alias_match_len(b"/", "/", false), Some(0));
        assert_eq!(alias_match_len(b"/app/x", "/app/", false), Some(4));
        assert_eq!(alias_match_len(b"/scripts/a.wsgi", "/scripts/", true), Some(9));
        assert_eq!(alias_match_len(b"/scripts", "/scripts/", true), None);
        assert_eq!(alias_match_len(b"/other", "/app", false), None);
    }

    #[test]
    fn capture_substitution() {
        let groups: [Option<&[u8]>; 3] = [Some(b"/m/app"), Some(b"app"), None];
        assert_eq!(substitute_captures("/srv/$1.wsgi", &groups), b"/srv/app.wsgi");
        assert_eq!(substitute_captures("/srv/$2x$9", &groups), b"/srv/x");
        assert_eq!(substitute_captures("/cost\\$1", &groups), b"/cost$1");
        assert_eq!(substitute_captures("/a$", &groups), b"/a$");
        assert_eq!(substitute_captures("/srv/$1", &[None, Some(b"caf\xe9")]), b"/srv/caf\xe9");
    }

    #[test]
    fn slashes() {
        assert_eq!(collapse_slashes(b"//a///b/"), b"/a/b/");
        assert_eq!(collapse_slashes(b""), b"");
    }
}
