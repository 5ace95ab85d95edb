//! The promises every [`TrafficSwitch`] keeps: it names a member as active, moves
//! traffic to each member and reads it back, is idempotent, and refuses a name that
//! is not a member without changing anything.

use crate::config::{Environment, Pool};
use crate::ports::{Split, SwitchError, TrafficSwitch};

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

/// Runs every weight check on `switch` (one that can do weights) driving `pool` of
/// `env` (at least two members): it shares traffic out step by step as a canary
/// does and reads each split back, changes nothing for a split it refuses, and a
/// switch to one member afterwards ends the split. The member active at the start
/// takes all traffic again at the end.
pub async fn weights(switch: &dyn TrafficSwitch, env: &Environment, pool: &Pool) {
    assert!(
        pool.members.len() >= 2,
        "the suite needs a pool of two or more members"
    );
    assert!(switch.weighted(), "the switch says it can do weights");
    let start = switch
        .active(env, pool)
        .await
        .expect("the active member reads");
    assert_eq!(
        switch.split(env, pool).await,
        Ok(Split::all_on(pool, &start)),
        "before any split, all traffic is on the active member"
    );
    let Some(new) = pool.members.iter().find(|m| m.name != start) else {
        unreachable!("two members")
    };
    let new = new.name.as_str();
    for percent in [10u8, 50, 90] {
        let split = Split::canary(pool, &start, new, percent);
        switch
            .set_split(env, pool, &split)
            .await
            .unwrap_or_else(|e| panic!("setting {split} failed: {e}"));
        assert_eq!(
            switch.split(env, pool).await,
            Ok(split.clone()),
            "the split reads back as set"
        );
    }
    let at_90 = Split::canary(pool, &start, new, 90);
    switch
        .set_split(env, pool, &at_90)
        .await
        .unwrap_or_else(|e| panic!("setting {at_90} again failed: {e}"));
    assert_eq!(
        switch.split(env, pool).await,
        Ok(at_90.clone()),
        "setting the split in force again changes nothing"
    );
    let stranger = Split::new(vec![(start.clone(), 50), ("no-such-member".to_owned(), 50)])
        .expect("adds up to 100");
    let refused = switch.set_split(env, pool, &stranger).await;
    assert!(
        matches!(refused, Err(SwitchError::Refused(_))),
        "a split naming a stranger is refused: {refused:?}"
    );
    assert_eq!(
        switch.split(env, pool).await,
        Ok(at_90),
        "a refused split changes nothing"
    );
    assert!(
        Split::new(vec![(start.clone(), 50), (new.to_owned(), 60)]).is_err(),
        "shares that do not add up to 100 are no split"
    );
    let all_new = Split::canary(pool, &start, new, 100);
    switch
        .set_split(env, pool, &all_new)
        .await
        .unwrap_or_else(|e| panic!("setting {all_new} failed: {e}"));
    assert_eq!(switch.split(env, pool).await, Ok(all_new));
    assert_eq!(
        switch.active(env, pool).await.as_deref(),
        Ok(new),
        "with all traffic on one member, it is the active one"
    );
    // Back part-way, then a plain switch ends the split (a canary's abort).
    switch
        .set_split(env, pool, &Split::canary(pool, &start, new, 50))
        .await
        .unwrap_or_else(|e| panic!("setting 50 % failed: {e}"));
    switch
        .switch_to(env, pool, &start)
        .await
        .unwrap_or_else(|e| panic!("switching back to {start} failed: {e}"));
    assert_eq!(
        switch.active(env, pool).await.as_deref(),
        Ok(start.as_str()),
        "after a split, switching to one member puts all traffic on it"
    );
    assert_eq!(
        switch.split(env, pool).await,
        Ok(Split::all_on(pool, &start)),
        "and the split is over"
    );
    // The next deploy's plain switch works on a member a split left at 0 %.
    switch
        .switch_to(env, pool, new)
        .await
        .unwrap_or_else(|e| panic!("switching to {new} after the split failed: {e}"));
    assert_eq!(switch.split(env, pool).await, Ok(Split::all_on(pool, new)));
    switch
        .switch_to(env, pool, &start)
        .await
        .unwrap_or_else(|e| panic!("switching back to {start} failed: {e}"));
}
