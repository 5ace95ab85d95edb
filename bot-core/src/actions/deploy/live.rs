//! [`Live`]: a deploy being driven, its state shared by the pools going through their
//! steps side by side, every save going through its run's driver.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::report::Board;
use super::state::{DeployRun, DeployState, PoolRun, Step};
use crate::config::Environment;
use crate::context::Ctx;
use crate::markers::{self, Ended};
use crate::reply::Outcome;
use crate::runs::{Driver, Permit, Stop};

/// A deploy being driven: its state, shared by the pools going through their steps
/// side by side, and the driver every save goes through.
pub(crate) struct Live<'a, 'c> {
    pub ctx: &'a Ctx<'c>,
    pub driver: &'a Driver<DeployState>,
    pub env: &'a Environment,
    state: Mutex<DeployRun>,
    /// One save at a time, each of the state as it is then: a later save never
    /// writes an older state.
    saving: tokio::sync::Mutex<()>,
}

impl<'a, 'c> Live<'a, 'c> {
    /// Drives `state` with `driver`.
    pub(crate) fn new(
        ctx: &'a Ctx<'c>,
        driver: &'a Driver<DeployState>,
        env: &'a Environment,
        state: DeployRun,
    ) -> Self {
        Self {
            ctx,
            driver,
            env,
            state: Mutex::new(state),
            saving: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeployRun> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Changes the state.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut DeployRun) -> T) -> T {
        f(&mut self.lock())
    }

    /// The state as it stands.
    pub(crate) fn snapshot(&self) -> DeployRun {
        self.lock().clone()
    }

    /// Saves the state as it stands.
    pub(crate) async fn save(&self) -> Result<(), Stop> {
        let _one = self.saving.lock().await;
        let now = DeployState::Deploy(self.snapshot());
        self.driver.save(&now).await
    }

    /// Saves the state as it stands and grants the external step `step`.
    pub(crate) async fn checkpoint(&self, step: &str) -> Result<Permit, Stop> {
        let _one = self.saving.lock().await;
        let now = DeployState::Deploy(self.snapshot());
        self.driver.checkpoint(&now, step).await
    }

    /// The progress board as it stands.
    pub(crate) fn board(&self) -> Board {
        self.lock().board(self.ctx.user)
    }

    /// Shows the board as it stands.
    pub(crate) async fn show(&self) {
        let reply = self.board().reply(Outcome::Progress);
        self.ctx.progress.update(&reply).await;
    }

    /// Marks pool `i` failed with `line` and the reason `why`, and saves.
    pub(crate) async fn fail(&self, i: usize, line: String, why: String) -> Result<(), Stop> {
        let before = self.with(|s| s.pools[i].clone());
        self.mark_failed(i, &before, &why).await;
        self.with(|s| {
            let p = &mut s.pools[i];
            p.step = Step::Failed;
            p.line = line;
            p.failure = Some(why);
        });
        self.save().await
    }
}

impl Live<'_, '_> {
    /// Pool `i` failed, `p` as it stood before (its step says where): its GitHub
    /// deployment ends as a `failure` when the build, gate or canary said no, as an
    /// `error` when the build did not run or a switch could not be confirmed. Before
    /// it knew its members it had no deployment.
    async fn mark_failed(&self, i: usize, p: &PoolRun, why: &str) {
        let ended = match p.step {
            Step::Waiting | Step::Done | Step::Failed => return,
            Step::Triggering | Step::Building if p.built.is_none() => Ended::Error,
            Step::Switching => Ended::Error,
            Step::Triggering | Step::Building | Step::Gating | Step::Canary => Ended::Failure,
        };
        // Only while the run is ours: a replica that lost it never decides how
        // its deployment ended (the first status written is the one that stays).
        if self
            .driver
            .permit("record the deployment's outcome")
            .is_err()
        {
            return;
        }
        let key = markers::deployment_key(self.driver.id(), i);
        let build = p.built.as_ref().map(|(_, url)| url.as_str());
        markers::deployment_ended(self.ctx, &key, &self.env.name, ended, build, why).await;
    }
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
