//! `{name}` templates for job parameters, request URLs and bodies.

use crate::config::HttpRequestSpec;

/// Replaces each `{name}` whose name is in `vars` with its value, in one pass (values
/// are never re-expanded); unknown `{x}` and lone braces (JSON bodies) stay as written.
///
/// ```
/// use bot_core::adapters::template::render_template;
/// assert_eq!(
///     render_template(r#"{"active": "{colour}", "x": "{unknown}"}"#, &[("colour", "green")]),
///     r#"{"active": "green", "x": "{unknown}"}"#
/// );
/// ```
pub fn render_template(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_end = after.find(['{', '}']);
        let value = name_end
            .filter(|&end| after[end..].starts_with('}'))
            .and_then(|end| {
                let name = &after[..end];
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v, end))
            });
        match value {
            Some((v, end)) => {
                out.push_str(v);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every value of `params` (job parameters) rendered with `vars`.
pub fn render_params(params: &[(String, String)], vars: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.clone(), render_template(v, vars)))
        .collect()
}

/// A configured request with its URL, header values and body rendered with `vars`.
pub fn render_request(spec: &HttpRequestSpec, vars: &[(&str, &str)]) -> HttpRequestSpec {
    HttpRequestSpec {
        method: spec.method.clone(),
        url: render_template(&spec.url, vars),
        headers: render_params(&spec.headers, vars),
        body: spec.body.as_ref().map(|b| render_template(b, vars)),
    }
}

#[cfg(test)]
mod tests {
    use super::render_template;

    #[test]
    fn renders_known_names_and_leaves_the_rest() {
        let vars = [("env", "staging"), ("pool", "api"), ("colour", "green")];
        let cases = [
            ("{pool}-{colour}", "api-green"),
            ("/pools/{env}/{pool}", "/pools/staging/api"),
            (r#"{"active": "{colour}"}"#, r#"{"active": "green"}"#),
            ("{ref}", "{ref}"),
            ("{{colour}}", "{green}"),
            ("{colour", "{colour"),
            ("}{", "}{"),
            ("", ""),
            ("plain", "plain"),
            ("{}", "{}"),
        ];
        for (template, expected) in cases {
            assert_eq!(render_template(template, &vars), expected, "{template}");
        }
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(
            render_template("{ref}/{user}", &[("ref", "{user}"), ("user", "U1")]),
            "{user}/U1"
        );
    }
}
