//! Building the safety sections: `approval:` (environments, commands) and `freeze:`
//! (global, environments), every problem reported at its line and column.

use std::time::Duration;

use super::super::raw::{RawApproval, RawFreeze, S};
use super::super::{parse_window, ApprovalRule, FreezeWindow, DEFAULT_VALID_FOR};
use super::Builder;

/// How long a request for approval stays open unless `expires:` says otherwise.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(30 * 60);

impl Builder<'_> {
    /// An `approval:` block.
    pub(crate) fn approval_rule(&mut self, raw: &S<RawApproval>) -> Option<ApprovalRule> {
        let a = &raw.value;
        if a.from.is_empty() {
            self.error(
                &raw.referenced,
                "`approval` has no `from`",
                Some("name the groups whose members approve, e.g. `from: [deployers]`".into()),
            );
            return None;
        }
        let from = self.check_groups(&a.from);
        let count = match &a.count {
            Some(c) if c.value == 0 => {
                self.error(
                    &c.referenced,
                    "`count` must be at least 1",
                    Some("an approval needs at least one other person".into()),
                );
                1
            }
            Some(c) => c.value,
            None => 1,
        };
        let expires = self.duration(&a.expires, DEFAULT_EXPIRY);
        let valid_for = self.duration(&a.valid_for, DEFAULT_VALID_FOR);
        let channel = self.opt_text(&a.channel).filter(|c| !c.trim().is_empty());
        Some(ApprovalRule {
            from,
            count,
            expires,
            valid_for,
            channel,
            pos: self.pos(&raw.referenced),
        })
    }

    /// A `freeze:` block, for `env` or (when `None`) every environment.
    pub(crate) fn freeze_windows(
        &mut self,
        raw: &S<RawFreeze>,
        env: Option<&str>,
    ) -> Vec<FreezeWindow> {
        let f = &raw.value;
        if f.windows.is_empty() {
            self.error(
                &raw.referenced,
                "`freeze` has no `windows`",
                Some("add e.g. `windows: [\"Fri 16:00 - Mon 08:00 Europe/Prague\"]`".into()),
            );
        }
        let overriders = self.check_groups(&f.overriders);
        let mut out = Vec::new();
        for w in &f.windows {
            let Some(text) = self.try_text(w) else {
                continue;
            };
            match parse_window(&text) {
                Ok((when, tz)) => out.push(FreezeWindow {
                    text: text.trim().to_owned(),
                    env: env.map(str::to_owned),
                    when,
                    tz,
                    overriders: overriders.clone(),
                    pos: self.pos(&w.referenced),
                }),
                Err(bad) => self.error(&w.referenced, bad.message, Some(bad.hint)),
            }
        }
        out
    }
}
