//! The engine's one loop: it does what each answer asks for next (read typed text,
//! check a click, run an invocation, put a deploy in line, start an approved
//! request) until an answer asks for nothing more. Handlers and actions never call
//! back into the engine: they say what comes next, and only this loop goes on.

use super::buttons::{self, Chosen, Clicked};
use super::{invoke, pending, queue, understand};
use crate::context::Ctx;
use crate::ports::store::Run;
use crate::reply::{Next, Outcome, Part, Reply};

/// How many times one request may ask for something next: more is a loop.
const MAX_HOPS: usize = 16;

/// Does `first`, then what its answer asks next, and so on; returns the answer.
///
/// What an answer that asks says is kept: before the final answer for a run it
/// starts (an approval's vote), after it for what it reads or runs (how a typo was
/// read), and a freeze override's announcement before the action's own answer. A
/// deploy refused on a lock is put in line on that refusal itself.
pub(super) async fn carry(ctx: &Ctx<'_>, first: Next) -> Reply {
    let mut before: Vec<Part> = Vec::new();
    let mut after: Vec<Part> = Vec::new();
    let mut reply = Reply {
        next: Some(first),
        ..Reply::new(Outcome::Progress)
    };
    let mut hops = 0;
    while let Some(next) = reply.next.take() {
        hops += 1;
        if hops > MAX_HOPS {
            tracing::error!("a request kept asking for more work; stopped");
            reply = Reply::message(
                Outcome::Failed,
                "internal error: this request kept asking for more work, so I stopped it.",
            );
            break;
        }
        reply = match next {
            Next::Run(inv) => {
                after.splice(0..0, reply.parts);
                let ran = invoke::run_invocation(ctx, *inv).await;
                before.extend(ran.said.map(Part::Context));
                ran.reply
            }
            Next::WhenLocked(inv) => queue::when_locked(ctx, &inv, reply).await,
            Next::Read(text) => {
                after.splice(0..0, reply.parts);
                understand::handle_text(ctx, &text).await
            }
            Next::Click(value) => {
                after.splice(0..0, reply.parts);
                match buttons::handle_button(ctx, &value).await {
                    Clicked::Answer(answer) => answer,
                    Clicked::Chose { chosen, next } => Box::pin(chose(ctx, chosen, next)).await,
                }
            }
            Next::Start(id) => {
                before.append(&mut reply.parts);
                match pending::approved_run(ctx, &id).await {
                    Ok(run) => Box::pin(start(ctx, run)).await,
                    Err(told) => told,
                }
            }
        };
    }
    reply.parts.splice(0..0, before);
    reply.parts.append(&mut after);
    reply
}

/// Goes on with what a claimed button carries (`next`): its progress and answer
/// keep saying who chose what, since they replace the message that held the buttons.
async fn chose(ctx: &Ctx<'_>, chosen: String, next: Next) -> Reply {
    let progress = Chosen::new(ctx.progress, &chosen);
    let by = Ctx {
        progress: &progress,
        ..*ctx
    };
    let mut reply = carry(&by, next).await;
    reply.parts.insert(0, Part::Context(chosen));
    reply
}

/// Starts pending run `run` (its lease is ours) through the whole pipeline, as its
/// requester: an approved request, the first deploy in line, or a scheduled deploy.
pub(super) async fn start(ctx: &Ctx<'_>, run: Run) -> Reply {
    let prepared = match pending::prepare(ctx, &run).await {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let as_requester = Ctx {
        user: &prepared.user,
        channel: prepared.channel.as_deref(),
        delivery: Some(&run.id),
        reply_to: run.message.as_deref().or(ctx.reply_to),
        ..*ctx
    };
    let reply = carry(&as_requester, Next::Run(Box::new(prepared.inv.clone()))).await;
    pending::after(ctx, &run, prepared, reply).await
}
