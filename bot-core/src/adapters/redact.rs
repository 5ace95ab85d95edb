//! Redacts URLs before they reach chat, the audit log or a log line.
//!
//! [`redact_url`] drops userinfo (`user:pass@`), replaces every query value and the
//! fragment with `***`, and keeps the rest (scheme, host, port, path) so the message
//! still says where. It works on text, not on a parsed URL, so it never fails: a
//! template, a URL without a scheme or plain garbage comes out with the same rules
//! applied to whatever looks like those parts.

/// What replaces a secret.
const MASK: &str = "***";

/// `url` without userinfo, with every query value (and the fragment) replaced by `***`.
///
/// `http://user:pass@host:8080/x?token=abc&v=1#k` → `http://host:8080/x?token=***&v=***#***`.
/// A query item without `=` (`?abc`) is masked whole. Never panics.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (head, query) = match before_fragment.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(&drop_userinfo(head));
    if let Some(query) = query {
        out.push('?');
        out.push_str(&mask_query(query));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(MASK);
        }
    }
    out
}

/// Applies [`redact_url`] to every `http://` / `https://` URL inside free text (an
/// error message from a library, say), up to the next whitespace, quote or bracket.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_scheme(rest) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ')' | '>' | ']'))
            .unwrap_or(tail.len());
        out.push_str(&redact_url(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Byte offset of the first `http://` or `https://` (ASCII case-insensitive).
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("http://"), lower.find("https://")]
        .into_iter()
        .flatten()
        .min()
}

/// `scheme://user:pass@host/path` → `scheme://host/path`; also without a scheme.
fn drop_userinfo(head: &str) -> String {
    let (scheme, rest) = match head.find("://") {
        Some(i) => head.split_at(i + 3),
        None => ("", head),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}{}{path}", &authority[at + 1..]),
        None => head.to_owned(),
    }
}

/// `a=1&b=2&c` → `a=***&b=***&***` (keys kept, values masked; `;` separates too).
fn mask_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut item = String::new();
    let flush = |item: &mut String, out: &mut String| {
        match item.split_once('=') {
            Some((key, _)) => {
                out.push_str(key);
                out.push('=');
                out.push_str(MASK);
            }
            None if item.is_empty() => {}
            None => out.push_str(MASK),
        }
        item.clear();
    };
    for c in query.chars() {
        if c == '&' || c == ';' {
            flush(&mut item, &mut out);
            out.push(c);
        } else {
            item.push(c);
        }
    }
    flush(&mut item, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_query_values_are_gone() {
        let cases = [
            (
                "http://user:pass@host/x?token=abc",
                "http://host/x?token=***",
            ),
            (
                "https://u:p@127.0.0.1:8443/a/b?token=abc&v=1#frag",
                "https://127.0.0.1:8443/a/b?token=***&v=***#***",
            ),
            ("http://127.0.0.1:9/plain", "http://127.0.0.1:9/plain"),
            ("http://only-user@host", "http://host"),
            ("http://host/x?abc123", "http://host/x?***"),
            ("http://host/x?a=&b", "http://host/x?a=***&***"),
            ("http://host/x?a=1;b=2", "http://host/x?a=***;b=***"),
            ("http://host/x?", "http://host/x?"),
            ("http://host/x#", "http://host/x#"),
            // The path keeps its `@` (only the authority carries userinfo).
            ("http://host/users/@me?k=v", "http://host/users/@me?k=***"),
            // `@` in the password itself: everything up to the last `@` goes.
            ("http://u:p@ss@host/", "http://host/"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }

    #[test]
    fn without_a_scheme_the_same_rules_apply() {
        assert_eq!(redact_url("user:pass@host/x?t=1"), "host/x?t=***");
        assert_eq!(redact_url("host:80/x"), "host:80/x");
        assert_eq!(
            redact_url("/queue/item/7/?token=a"),
            "/queue/item/7/?token=***"
        );
        assert_eq!(
            redact_url("{base}/pools/{env}?key={secret}"),
            "{base}/pools/{env}?key=***"
        );
    }

    #[test]
    fn unicode_is_kept_and_never_split() {
        assert_eq!(
            redact_url("http://usér:pässwörd@höst.example/päth/ü?tökén=geheim€&ñ=✓"),
            "http://höst.example/päth/ü?tökén=***&ñ=***"
        );
        assert_eq!(redact_url("http://ü@ü/ü?ü#ü"), "http://ü/ü?***#***");
    }

    #[test]
    fn malformed_input_never_panics() {
        for input in [
            "",
            "?",
            "#",
            "@",
            "://",
            "://@",
            "http://",
            "http://@",
            "http://@/?#",
            "???&&&===",
            "a@b@c@",
            "\u{0}\u{7f}://\u{fffd}@x",
            "http://[::1:80/x?y=z",
            "@@@://???###",
        ] {
            let out = redact_url(input);
            assert!(!out.contains("pass"), "{input:?}");
            let _ = redact_urls_in(input);
        }
        assert_eq!(redact_url(""), "");
        assert_eq!(redact_url("http://@/?#"), "http:///?#");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        assert_eq!(
            redact_urls_in(
                "error sending request for url (http://u:p@127.0.0.1:1/x?token=abc): refused"
            ),
            "error sending request for url (http://127.0.0.1:1/x?token=***): refused"
        );
        assert_eq!(
            redact_urls_in("see HTTPS://a:b@h/?k=v and http://h2/?q=1 ünd"),
            "see HTTPS://h/?k=*** and http://h2/?q=*** ünd"
        );
        assert_eq!(redact_urls_in("no url here"), "no url here");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_handled(input in "\\PC*") {
            let _ = redact_url(&input);
            let _ = redact_urls_in(&input);
        }

        #[test]
        fn credentials_and_query_values_never_survive(
            user in "[a-zA-Z0-9]{1,8}",
            pass in "[a-zA-Z0-9äöü€]{6,12}",
            token in "[a-zA-Z0-9äöü€]{6,12}",
            path in "(/[a-z0-9]{1,5}){0,3}",
        ) {
            let url = format!("http://{user}:SECRET{pass}@127.0.0.1:8080{path}?token=TOKEN{token}");
            let out = redact_url(&url);
            proptest::prop_assert!(!out.contains("SECRET") && !out.contains("TOKEN"), "{}", out);
            let expected = format!("http://127.0.0.1:8080{path}?token=***");
            proptest::prop_assert_eq!(out, expected);
        }
    }
}
