//! The promises every [`TrafficSwitch`] keeps: it names a member as active, moves
//! traffic to each member and reads it back, is idempotent, and refuses a name that
//! is not a member without changing anything.

use crate::config::{Environment, Pool};
use crate::ports::{SwitchError, TrafficSwitch};

/// Runs every check on `switch` driving `pool` of `env` (at least two members); the
/// member active at the start is active again at the end.
pub async fn switch(switch: &dyn TrafficSwitch, env: &Environment, pool: &Pool) {
    assert!(
        pool.members.len() >= 2,
        "the suite needs a pool of two or more members"
    );
    let start = switch
        .active(env, pool)
        .await
        .expect("the active member reads");
    assert!(
        pool.members.iter().any(|m| m.name == start),
        "the active member `{start}` is a member of the pool"
    );
    for member in pool.members.iter().filter(|m| m.name != start) {
        switch
            .switch_to(env, pool, &member.name)
            .await
            .unwrap_or_else(|e| panic!("switching to {} failed: {e}", member.name));
        assert_eq!(
            switch.active(env, pool).await.as_deref(),
            Ok(member.name.as_str()),
            "after switching to {}, it is active",
            member.name
        );
        switch
            .switch_to(env, pool, &member.name)
            .await
            .unwrap_or_else(|e| {
                panic!("switching to the active {} again failed: {e}", member.name)
            });
        assert_eq!(
            switch.active(env, pool).await.as_deref(),
            Ok(member.name.as_str()),
            "switching to the active member changes nothing"
        );
    }
    let before = switch
        .active(env, pool)
        .await
        .expect("the active member reads");
    let refused = switch.switch_to(env, pool, "no-such-member").await;
    assert!(
        matches!(refused, Err(SwitchError::Refused(_))),
        "a name that is not a member is refused: {refused:?}"
    );
    assert_eq!(
        switch.active(env, pool).await.as_deref(),
        Ok(before.as_str()),
        "a refused switch changes nothing"
    );
    switch
        .switch_to(env, pool, &start)
        .await
        .unwrap_or_else(|e| panic!("switching back to {start} failed: {e}"));
    assert_eq!(
        switch.active(env, pool).await.as_deref(),
        Ok(start.as_str()),
        "traffic is back where it started"
    );
}
