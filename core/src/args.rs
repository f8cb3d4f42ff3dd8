//! Splitting a directive's argument line the way mod_wsgi does, so every
//! quoting form a mod_wsgi configuration uses means the same here.
//!
//! Apache hands the directives that take options their whole argument line
//! (continuation lines already joined, `${VAR}` already expanded). A *word*
//! is what Apache's own configuration reader calls one: leading white space
//! is skipped; a word starting with `'` or `"` runs to the matching quote
//! (inside it, a backslash escapes that quote or a backslash) and may hold
//! spaces; any other word runs to the next white space. An *option* is
//! `name=value`: the name is bare and ends at the `=`, and the value is a
//! word, so `name=value`, `name='a b'`, `name="a b"` and `name=''` all work.
//!
//! One difference from Apache, on purpose: a quote that is never closed is
//! an error here, where Apache would quietly take the rest of the line as
//! the value (swallowing the options after it).

/// White space as C's `isspace` sees it, which is what Apache splits on.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// The unread part of one directive's arguments.
pub struct Args<'a> {
    directive: &'a str,
    rest: &'a str,
}

impl<'a> Args<'a> {
    pub fn new(directive: &'a str, line: &'a str) -> Self {
        Args { directive, rest: line.trim_start_matches(is_space) }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next word with its quotes removed, or None at the end of the line.
    pub fn word(&mut self) -> Result<Option<String>, String> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (word, rest) = split_word(self.rest).map_err(|quoted| {
            format!("{}: the quote in {quoted} is never closed; close it or remove it", self.directive)
        })?;
        self.rest = rest.trim_start_matches(is_space);
        Ok(Some(word))
    }

    /// The next word, which must be there and not be empty; `what` names it
    /// in the error, such as "a URL-path and a script path".
    pub fn required(&mut self, what: &str) -> Result<String, String> {
        match self.word()? {
            Some(word) if !word.is_empty() => Ok(word),
            _ => Err(format!("{} needs {what}", self.directive)),
        }
    }

    /// Every remaining word.
    pub fn words(mut self) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        while let Some(word) = self.word()? {
            words.push(word);
        }
        Ok(words)
    }

    /// Every remaining `name=value` option, in order.
    pub fn options(mut self) -> Result<Vec<(String, String)>, String> {
        let mut options = Vec::new();
        while !self.rest.is_empty() {
            let name_end = self.rest.find(|c: char| c == '=' || is_space(c)).unwrap_or(self.rest.len());
            if name_end == 0 || !self.rest[name_end..].starts_with('=') {
                let token = self.rest.split(is_space).next().unwrap_or(self.rest);
                return Err(format!("{}: '{token}' is not of the form option=value", self.directive));
            }
            let name = self.rest[..name_end].to_string();
            if name.contains(['\'', '"']) {
                return Err(format!("{}: in '{name}=…' quote only the value, as in {}='…'", self.directive, name.trim_matches(['\'', '"'])));
            }
            // The value is a word, so white space after the '=' is skipped.
            self.rest = self.rest[name_end + 1..].trim_start_matches(is_space);
            let value = self.word()?.unwrap_or_default();
            options.push((name, value));
        }
        Ok(options)
    }
}

/// Splits the first word off `line` (which starts with it). Err carries the
/// word when its quote is never closed.
fn split_word(line: &str) -> Result<(String, &str), &str> {
    let quote = line.chars().next().filter(|&c| c == '"' || c == '\'');
    let Some(quote) = quote else {
        let end = line.find(is_space).unwrap_or(line.len());
        return Ok((unescape(&line[..end], None), &line[end..]));
    };
    let body = &line[1..];
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && body[i + 1..].starts_with(['\\', quote]) {
            chars.next();
        } else if c == quote {
            return Ok((unescape(&body[..i], Some(quote)), &body[i + 1..]));
        }
    }
    Err(line.split(is_space).next().unwrap_or(line))
}

/// A backslash before a backslash (or, in a quoted word, before its quote)
/// stands for that character; any other backslash is kept.
fn unescape(text: &str, quote: Option<char>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&next) if c == '\\' && (next == '\\' || Some(next) == quote) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Result<Vec<String>, String> {
        Args::new("D", line).words()
    }

    fn options(line: &str) -> Result<Vec<(String, String)>, String> {
        Args::new("D", line).options()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn words_as_apache_splits_them() {
        // (line, words) — Apache's rules for directive arguments.
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("a b\tc", &["a", "b", "c"]),
            ("  /srv/app.wsgi  ", &["/srv/app.wsgi"]),
            ("'/srv/my app.wsgi' x", &["/srv/my app.wsgi", "x"]),
            ("\"/srv/my app.wsgi\"", &["/srv/my app.wsgi"]),
            ("'' x", &["", "x"]),
            ("\"\"", &[""]),
            (r#"'it\'s' "say \"hi\"""#, &["it's", "say \"hi\""]),
            (r"'a\\b' a\\b a\b 'a\b'", &[r"a\b", r"a\b", r"a\b", r"a\b"]),
            (r#"'a"b' "a'b""#, &["a\"b", "a'b"]),
            // A closing quote ends the word even with no space after it.
            ("'a'b", &["a", "b"]),
            // Quotes inside an unquoted word are ordinary characters.
            ("a'b' c", &["a'b'", "c"]),
            ("%{GLOBAL} '%{GLOBAL}'", &["%{GLOBAL}", "%{GLOBAL}"]),
        ];
        for (line, expected) in cases {
            assert_eq!(words(line).unwrap(), expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{line:?}");
        }
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        for line in ["'abc", "x \"abc def", r"'abc\'", "a 'b c"] {
            let err = words(line).unwrap_err();
            assert!(err.starts_with("D: the quote in ") && err.contains("never closed"), "{line:?}: {err}");
        }
    }

    #[test]
    fn options_as_mod_wsgi_splits_them() {
        // (line, options) — the forms mod_wsgi's option parser accepts.
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1 b=2", &[("a", "1"), ("b", "2")]),
            ("home='/srv/my app'", &[("home", "/srv/my app")]),
            ("home=\"/srv/my app\" threads=5", &[("home", "/srv/my app"), ("threads", "5")]),
            ("python-path='' lang=''", &[("python-path", ""), ("lang", "")]),
            ("python-path=", &[("python-path", "")]),
            ("display-name=%{GROUP}", &[("display-name", "%{GROUP}")]),
            ("process-group='%{GLOBAL}'", &[("process-group", "%{GLOBAL}")]),
            ("x=a=b", &[("x", "a=b")]),
            // The value is a word, so white space after '=' is skipped.
            ("x= 5 y=6", &[("x", "5"), ("y", "6")]),
            // Continuation lines arrive joined, with the next line's indent.
            ("a=1    b='two words'    c=3", &[("a", "1"), ("b", "two words"), ("c", "3")]),
        ];
        for (line, expected) in cases {
            assert_eq!(options(line).unwrap(), pairs(expected), "{line:?}");
        }
    }

    #[test]
    fn malformed_options_are_errors() {
        for (line, token) in [("threads", "threads"), ("=5", "=5"), ("a=1 b", "b"), ("a =1", "a")] {
            let err = options(line).unwrap_err();
            assert_eq!(err, format!("D: '{token}' is not of the form option=value"), "{line:?}");
        }
        assert!(options("a='1").unwrap_err().contains("never closed"));
        // mod_wsgi has no option whose name holds a quote: the whole option was quoted.
        for line in ["'a=1'", "\"a\"=1", "'a'=1"] {
            assert_eq!(options(line).unwrap_err(), "D: in '{}=…' quote only the value, as in a='…'".replace("{}", line.split('=').next().unwrap()), "{line:?}");
        }
    }

    #[test]
    fn words_then_options() {
        let mut args = Args::new("WSGIScriptAlias", "/app '/srv/my app.wsgi' process-group=x");
        assert_eq!(args.required("a URL").unwrap(), "/app");
        assert_eq!(args.required("a script").unwrap(), "/srv/my app.wsgi");
        assert!(!args.is_empty());
        assert_eq!(args.options().unwrap(), pairs(&[("process-group", "x")]));
        let mut args = Args::new("WSGIScriptAlias", "/app ''");
        args.required("a URL").unwrap();
        assert_eq!(args.required("a script path").unwrap_err(), "WSGIScriptAlias needs a script path");
    }
}
