//! `$NAME` and `${NAME}` in arguments are replaced by environment
//! variables, as mod_wsgi-express does (so `--port $PORT` works where no
//! shell expands it, e.g. a container's exec-form command). A variable
//! that is not set is left as written.

fn name_len(text: &str) -> usize {
    text.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count()
}

pub fn expand_vars(arg: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        // (the variable's name, the length of the reference after '$')
        let reference = match after.strip_prefix('{') {
            Some(braced) => braced.find('}').map(|end| (&braced[..end], end + 2)),
            None => Some(name_len(after)).filter(|n| *n > 0).map(|n| (&after[..n], n)),
        };
        match reference {
            Some((name, len)) => {
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(&rest[dollar..dollar + 1 + len]),
                }
                rest = &after[len..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::expand_vars;

    fn expand(arg: &str) -> String {
        expand_vars(arg, |name| (name == "A").then(|| "x".to_string()))
    }

    #[test]
    fn set_variables_are_replaced() {
        assert_eq!(expand("$A"), "x");
        assert_eq!(expand("${A}"), "x");
        assert_eq!(expand("a$A/b"), "ax/b");
        assert_eq!(expand("${A}${A}"), "xx");
        assert_eq!(expand("$$A"), "$x");
    }

    #[test]
    fn anything_else_stays() {
        assert_eq!(expand("$B"), "$B");
        assert_eq!(expand("${B}c"), "${B}c");
        assert_eq!(expand("${A"), "${A");
        assert_eq!(expand("$"), "$");
        assert_eq!(expand("${}"), "${}");
        assert_eq!(expand("100$ and $-1"), "100$ and $-1");
    }
}
