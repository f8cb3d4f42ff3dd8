//! Values written into generated files, quoted for the language of each:
//! Apache's configuration, Python source and POSIX shell.

/// One Apache directive argument: double-quoted, with `\` and `"` escaped
/// (Apache and mod_wsgi's option parser both undo exactly these).
pub fn apache(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A Python string literal.
pub fn python(value: &str) -> String {
    let mut out = String::from("'");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// One shell word, single-quoted.
pub fn shell(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// A command line for a comment line: shell-quoted words, with any line
/// break shown as `\n` so the comment stays one line.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let w = w.as_ref();
            let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
            if plain {
                w.to_string()
            } else {
                shell(w)
            }
        })
        .collect();
    quoted.join(" ").replace('\n', "\\n").replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_arguments() {
        assert_eq!(apache("/srv/my app"), r#""/srv/my app""#);
        assert_eq!(apache(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn python_literals() {
        assert_eq!(python("plain"), "'plain'");
        assert_eq!(python("it's C:\\x\n"), r"'it\'s C:\\x\n'");
        assert_eq!(python("\u{7}é"), r"'\U00000007é'");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell("a b"), "'a b'");
        assert_eq!(shell("it's"), r"'it'\''s'");
    }

    #[test]
    fn command_lines() {
        assert_eq!(command_line(&["mod_wsgi-express", "start-server", "app.wsgi", "--port", "8000"]), "mod_wsgi-express start-server app.wsgi --port 8000");
        assert_eq!(command_line(&["--setenv", "K", "two words", ""]), "--setenv K 'two words' ''");
        assert_eq!(command_line(&["a\nb"]), "'a\\nb'");
    }
}
