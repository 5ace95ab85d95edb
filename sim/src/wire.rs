//! Small wire helpers (percent-decoding, form parsing, Basic auth) so the simulators
//! need nothing beyond axum and serde.

/// Decodes `%XX` escapes; with `plus_is_space`, `+` becomes a space (form encoding).
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses `application/x-www-form-urlencoded` text (also a query string) in order.
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(pair, true), String::new()),
        })
        .collect()
}

/// Decodes standard base64 (with or without padding); `None` on bad input.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// `user` and `password` from an `Authorization: Basic …` header value.
pub(crate) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, pass) = raw.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_basic_auth() {
        assert_eq!(
            parse_form("A=1&REF=feature%2Flogin&MSG=hello+world&E="),
            vec![
                ("A".into(), "1".into()),
                ("REF".into(), "feature/login".into()),
                ("MSG".into(), "hello world".into()),
                ("E".into(), String::new()),
            ]
        );
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("deploy%20api", false), "deploy api");
        // "crossroads:demo-token"
        assert_eq!(
            basic_credentials("Basic Y3Jvc3Nyb2FkczpkZW1vLXRva2Vu"),
            Some(("crossroads".into(), "demo-token".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
