//! `${VAR}` / `${VAR:-default}` interpolation of string values; `$${` is a literal `${`.

/// Why a value could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpError {
    /// `${VAR}` with VAR unset and no default.
    Undefined(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    BadName(String),
}

/// Replaces every `${VAR}` and `${VAR:-default}` in `text`.
///
/// The default applies when VAR is unset or empty. `$${` yields a literal `${`; any
/// other `$` is kept as is. Every undefined variable is reported, not just the first.
pub(crate) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<InterpError>> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                errors.push(InterpError::Unterminated);
                return Err(errors);
            };
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                errors.push(InterpError::BadName(inner.to_owned()));
            } else {
                match (
                    env(name).filter(|v| !v.is_empty() || default.is_none()),
                    default,
                ) {
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => errors.push(InterpError::Undefined(name.to_owned())),
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("127.0.0.1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, Vec<InterpError>> {
        interpolate(text, &env)
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            run("http://127.0.0.1:1/x"),
            Ok("http://127.0.0.1:1/x".into())
        );
        assert_eq!(run(""), Ok(String::new()));
    }

    #[test]
    fn variables_and_defaults() {
        assert_eq!(run("http://${HOST}:80"), Ok("http://127.0.0.1:80".into()));
        assert_eq!(run("${HOST:-other}"), Ok("127.0.0.1".into()));
        assert_eq!(run("${NOPE:-fallback}"), Ok("fallback".into()));
        assert_eq!(run("${NOPE:-}"), Ok(String::new()));
        assert_eq!(
            run("${NOPE:-http://127.0.0.1:1}/p"),
            Ok("http://127.0.0.1:1/p".into())
        );
        assert_eq!(run("${HOST}${HOST}"), Ok("127.0.0.1127.0.0.1".into()));
    }

    #[test]
    fn empty_variable_takes_the_default_but_is_kept_without_one() {
        assert_eq!(run("${EMPTY:-d}"), Ok("d".into()));
        assert_eq!(run("[${EMPTY}]"), Ok("[]".into()));
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        assert_eq!(run("$${HOST}"), Ok("${HOST}".into()));
        assert_eq!(run("cost $5 $"), Ok("cost $5 $".into()));
        assert_eq!(run("$$HOST"), Ok("$$HOST".into()));
        assert_eq!(run("$$${HOST}"), Ok("$${HOST}".into()));
    }

    #[test]
    fn every_undefined_variable_is_reported() {
        assert_eq!(
            run("${A}/${HOST}/${B}"),
            Err(vec![
                InterpError::Undefined("A".into()),
                InterpError::Undefined("B".into())
            ])
        );
    }

    #[test]
    fn malformed_references() {
        assert_eq!(run("${HOST"), Err(vec![InterpError::Unterminated]));
        assert_eq!(run("${}"), Err(vec![InterpError::BadName(String::new())]));
        assert_eq!(run("${1X}"), Err(vec![InterpError::BadName("1X".into())]));
        assert_eq!(run("${A-b}"), Err(vec![InterpError::BadName("A-b".into())]));
    }
}
