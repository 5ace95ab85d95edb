//! The words that ask a deploy to wait in line when its environment is busy:
//! `deploy staging when free`.

use crate::reply::Invocation;

/// The words that ask a deploy to wait in line: `deploy staging when free`.
pub const WHEN_FREE: [&str; 2] = ["when", "free"];

fn queue_words_at(args: &[String]) -> Option<usize> {
    args.windows(2).position(|w| {
        w[0].eq_ignore_ascii_case(WHEN_FREE[0]) && w[1].eq_ignore_ascii_case(WHEN_FREE[1])
    })
}

/// Whether `inv` asks to wait in line when its environment is busy.
pub fn wants_queue(inv: &Invocation) -> bool {
    queue_words_at(&inv.args).is_some()
}

/// `inv` without the words asking to wait in line.
pub fn without_queue_words(inv: &Invocation) -> Invocation {
    let mut plain = inv.clone();
    while let Some(i) = queue_words_at(&plain.args) {
        plain.args.drain(i..i + 2);
    }
    plain
}
