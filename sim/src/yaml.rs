//! Edits of a config's YAML text that tests and benchmarks share.

/// `instances` without its `canary:` sections: a deploy in one switch, for tests and
/// benchmarks that measure or expect the plain blue/green path.
pub fn without_canaries(instances: &str) -> String {
    let mut out = String::with_capacity(instances.len());
    let mut skipping: Option<usize> = None;
    for line in instances.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(at) = skipping {
            if line.trim().is_empty() || indent > at {
                continue;
            }
            skipping = None;
        }
        if line.trim_start() == "canary:" {
            skipping = Some(indent);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::without_canaries;

    #[test]
    fn drops_the_section_and_keeps_the_rest() {
        let text = "pools:\n  api:\n    canary:\n      steps: [10, 100]\n      analysis:\n        interval: 2s\n    deploy: x\n  cron: {}\n";
        assert_eq!(
            without_canaries(text),
            "pools:\n  api:\n    deploy: x\n  cron: {}\n"
        );
    }
}
