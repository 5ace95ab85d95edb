//! `{name}` templates for job parameters, request URLs and bodies.

/// Replaces `{name}` with its value; unknown names are left as written.
pub fn render_template(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}
