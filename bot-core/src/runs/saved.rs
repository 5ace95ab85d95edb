//! How a run's typed state is saved: the action's own serde-tagged enum, with the
//! format version it was written under and the lock the run holds, so a newer binary
//! reads an older run (or a run saved before states were typed), and an older binary
//! refuses a newer run plainly instead of guessing.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ports::store::{Lock, Run};

/// The saved state of one action's runs: a serde-tagged enum (`kind`), one variant
/// per kind of run the action drives, each a struct whose fields say which step it
/// is at.
pub trait RunState: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The format version written now. A run saved under a newer one is refused.
    const VERSION: u32;
    /// Reads a state saved by a binary from before states were typed and versioned
    /// (`run.action` names the action; `state` is the untyped JSON it saved, whose
    /// `lock` field, if any, is read separately). `None` when it cannot be read.
    fn legacy(action: &str, state: &Value) -> Option<Self>;
}

/// Why a saved state cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Saved by a newer Crossroads.
    #[error(
        "it was saved by a newer Crossroads (state format {saved}; this one reads up to {reads})"
    )]
    Newer {
        /// The version it was saved under.
        saved: u64,
        /// The newest this binary reads.
        reads: u32,
    },
    /// Not the shape this action saves (damaged, or another action's).
    #[error("its saved state is unreadable")]
    Damaged,
}

/// The JSON saved for `state`, holding `lock`.
pub(crate) fn save<S: RunState>(state: &S, lock: Option<&Lock>) -> Result<Value, String> {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(state) else {
        return Err("its state could not be written down".into());
    };
    fields.insert("v".into(), Value::from(S::VERSION));
    if let Some(lock) = lock {
        let lock = serde_json::to_value(lock).map_err(|_| "its lock could not be written down")?;
        fields.insert("lock".into(), lock);
    }
    Ok(Value::Object(fields))
}

/// The state and lock saved with `run`.
pub(crate) fn load<S: RunState>(run: &Run) -> Result<(S, Option<Lock>), Unreadable> {
    let Value::Object(fields) = &run.state else {
        return Err(Unreadable::Damaged);
    };
    let lock = match fields.get("lock") {
        None | Some(Value::Null) => None,
        Some(l) => {
            Some(serde_json::from_value::<Lock>(l.clone()).map_err(|_| Unreadable::Damaged)?)
        }
    };
    let Some(version) = fields.get("v") else {
        let state = S::legacy(&run.action, &run.state).ok_or(Unreadable::Damaged)?;
        return Ok((state, lock));
    };
    let version = version.as_u64().ok_or(Unreadable::Damaged)?;
    if version > u64::from(S::VERSION) {
        return Err(Unreadable::Newer {
            saved: version,
            reads: S::VERSION,
        });
    }
    let mut rest: Map<String, Value> = fields.clone();
    rest.remove("v");
    rest.remove("lock");
    let state = serde_json::from_value(Value::Object(rest)).map_err(|_| Unreadable::Damaged)?;
    Ok((state, lock))
}

/// The kind of run a saved state is (`deploy`, `move`, `regional_rollback`, `job`).
pub fn kind_of(state: &Value) -> Option<&str> {
    state.get("kind").and_then(Value::as_str)
}
