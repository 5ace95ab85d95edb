//! Internal failures: logged in full under a short reference, told to people as one
//! plain sentence with that reference ("Jenkins did not answer (ref 7f3a2c)").

/// An internal error that can be told to people: [`Failure::plain`] is our own words
/// and configuration values only, never a library's or driver's text; `Display`
/// carries the detail for the log.
pub trait Failure: std::fmt::Display {
    /// One plain sentence for people, without a trailing full stop.
    fn plain(&self) -> String;
}

/// Logs `failure` in full under a fresh short reference and returns what people see:
/// its plain sentence followed by `(ref …)`, so a report can be matched to the log.
pub fn told(failure: &dyn Failure) -> String {
    let reference = reference();
    tracing::error!(reference = %reference, error = %failure, "{}", failure.plain());
    // Plain sentences can quote what a remote said (a member name, a status): escaped.
    format!(
        "{} (ref {reference})",
        crate::text::escape(&failure.plain())
    )
}

/// Six hex digits: short enough to read out, long enough not to collide in a day's logs.
fn reference() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..6].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;

    impl std::fmt::Display for Broken {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("driver said: password authentication failed for user admin")
        }
    }

    impl Failure for Broken {
        fn plain(&self) -> String {
            "the state store is unavailable".into()
        }
    }

    #[test]
    fn people_get_the_plain_sentence_and_a_reference_not_the_detail() {
        let shown = told(&Broken);
        assert!(
            shown.starts_with("the state store is unavailable (ref "),
            "{shown}"
        );
        assert!(!shown.contains("password"), "{shown}");
        assert_ne!(told(&Broken), shown, "each report has its own reference");
    }
}
