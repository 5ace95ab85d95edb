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
    render_encoded(template, vars, &|v| v.to_owned())
}

/// Like [`render_template`], each value encoded by `encode` for where it goes.
fn render_encoded(
    template: &str,
    vars: &[(&str, &str)],
    encode: &dyn Fn(&str) -> String,
) -> String {
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
                out.push_str(&encode(v));
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

/// A configured request with its URL, header values and body rendered with `vars`,
/// each value encoded for where it goes: a URL component (percent-encoded), a
/// header value (no CR or LF, so no header of its own), a JSON string in a JSON
/// body (so a value cannot add fields).
pub fn render_request(spec: &HttpRequestSpec, vars: &[(&str, &str)]) -> HttpRequestSpec {
    let json = spec
        .body
        .as_deref()
        .is_some_and(|b| matches!(b.trim_start().chars().next(), Some('{' | '[')));
    HttpRequestSpec {
        method: spec.method.clone(),
        url: render_encoded(&spec.url, vars, &url_component),
        headers: spec
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), render_encoded(v, vars, &header_value)))
            .collect(),
        body: spec.body.as_ref().map(|b| {
            if json {
                render_encoded(b, vars, &json_string)
            } else {
                render_template(b, vars)
            }
        }),
    }
}

/// Percent-encodes a value for one URL path segment or query value.
pub fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value safe in a header: line breaks become spaces.
fn header_value(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A value placed inside a JSON string: quotes, backslashes and control characters
/// escaped (the template supplies the surrounding quotes).
fn json_string(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned()
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
    fn values_are_encoded_for_where_they_go() {
        use crate::config::HttpRequestSpec;
        let spec = HttpRequestSpec {
            method: "POST".into(),
            url: "http://127.0.0.1:9/purge/{env}?by={user}".into(),
            headers: vec![("X-Reason".into(), "{why}".into())],
            body: Some(r#"{"by": "{user}", "why": "{why}"}"#.into()),
        };
        let req = super::render_request(
            &spec,
            &[
                ("env", "a/b c"),
                ("user", "U1\"evil\": 1, \"x"),
                ("why", "line\r\nX-Other: 1"),
            ],
        );
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/purge/a%2Fb%20c?by=U1%22evil%22%3A%201%2C%20%22x"
        );
        assert_eq!(req.headers[0].1, "line  X-Other: 1");
        let body: serde_json::Value =
            serde_json::from_str(req.body.as_deref().unwrap_or_default()).expect("still JSON");
        assert_eq!(
            body["by"], "U1\"evil\": 1, \"x",
            "the value stays one string"
        );
        assert_eq!(body.as_object().map(|o| o.len()), Some(2), "no field added");
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(
            render_template("{ref}/{user}", &[("ref", "{user}"), ("user", "U1")]),
            "{user}/U1"
        );
    }
}
