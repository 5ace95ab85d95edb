//! Regions and the rollout policy of an environment: each region's copy of the pools
//! (its own switch and member URLs, `{region}` filled in, its extra Jenkins
//! parameters added), checked with positions.

use super::super::raw::{OMap, RawRegion, RawRollout, S};
use super::super::{
    ActionSpec, HttpRequestSpec, JobSpec, OnFailure, Pool, Region, Rollout, SwitchSpec,
};
use super::{normalise, normalise_emoji, suggest, Builder, Owner};

/// Accepted `on_failure` values.
const ON_FAILURE: &[&str] = &["halt", "rollback"];

impl Builder<'_> {
    /// Every region of environment `env`, each with its own copy of `pools`.
    pub(super) fn regions(
        &mut self,
        env: &str,
        raw: &OMap<RawRegion>,
        pools: &[Pool],
    ) -> Vec<Region> {
        let mut regions: Vec<Region> = Vec::new();
        for (name, region) in &raw.0 {
            let region_name = name.value.trim().to_owned();
            let word = normalise(&region_name);
            if let Some(first) = regions.iter().find(|r| r.name == region_name) {
                let hint = format!("first defined at {}", first.pos);
                self.error(
                    &name.referenced,
                    format!("environment `{env}` has two regions named `{region_name}`"),
                    Some(hint),
                );
                continue;
            }
            let owner = Owner::Region(word.clone());
            self.claim(
                &word,
                format!("name of region `{env} {region_name}`"),
                owner.clone(),
                &name.referenced,
            );
            let mut aliases = vec![word.clone()];
            let what = format!("alias of region `{env} {region_name}`");
            self.claim_all(
                &region.aliases,
                normalise,
                &what,
                &owner,
                None,
                &mut aliases,
            );
            let mut emoji = Vec::new();
            let what = format!("emoji of region `{env} {region_name}`");
            self.claim_all(
                &region.emoji,
                normalise_emoji,
                &what,
                &owner,
                None,
                &mut emoji,
            );
            let parameters = self.params(&region.parameters);
            let pool_names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
            for (pool, _) in &region.pools.0 {
                if !pool_names.contains(&pool.value.trim()) {
                    let hint = suggest(pool.value.trim(), &pool_names);
                    self.error(
                        &pool.referenced,
                        format!(
                            "region `{region_name}` names pool `{}`, which `{env}` does not have",
                            pool.value
                        ),
                        Some(hint),
                    );
                }
            }
            let mut own = Vec::with_capacity(pools.len());
            for template in pools {
                let here = region
                    .pools
                    .0
                    .iter()
                    .find(|(k, _)| k.value.trim() == template.name);
                let mut pool = template.clone();
                pool.region = Some(region_name.clone());
                let member_names: Vec<&str> =
                    template.members.iter().map(|m| m.name.as_str()).collect();
                if let Some((key, p)) = here {
                    for (member, _) in &p.members.0 {
                        if !member_names.contains(&member.value.trim()) {
                            let hint = suggest(member.value.trim(), &member_names);
                            self.error(
                                &member.referenced,
                                format!(
                                    "`{}` is not a member of pool `{env} {}`",
                                    member.value, template.name
                                ),
                                Some(hint),
                            );
                        }
                    }
                    for m in &mut pool.members {
                        let url = p
                            .members
                            .0
                            .iter()
                            .find(|(k, _)| k.value.trim() == m.name)
                            .and_then(|(_, rm)| rm.url.as_ref());
                        match url {
                            Some(u) => m.url = self.url(u).replace("{region}", &region_name),
                            None => self.error(
                                &key.referenced,
                                format!(
                                    "instance `{env} {region_name} {} {}` has no `url`",
                                    template.name, m.name
                                ),
                                Some(format!("add `members: {}: url: http://…` here", m.name)),
                            ),
                        }
                    }
                    match &p.switch {
                        Some(s) => {
                            if let Some(spec) = self.switch(&template.name, s, &template.members) {
                                pool.switch = spec;
                            }
                        }
                        None => self.error(
                            &key.referenced,
                            format!(
                                "region `{region_name}` has no switch for pool `{}`",
                                template.name
                            ),
                            Some("add `switch:` with type haproxy, http, jenkins or memory".into()),
                        ),
                    }
                } else {
                    self.error(
                        &name.referenced,
                        format!(
                            "region `{region_name}` has no switch for pool `{}`",
                            template.name
                        ),
                        Some(format!(
                            "add `pools: {}:` with its `switch:` and each member's `url:` under region `{region_name}`",
                            template.name
                        )),
                    );
                }
                regionalise(&mut pool, &region_name, &parameters);
                own.push(pool);
            }
            regions.push(Region {
                name: region_name,
                aliases,
                emoji,
                parameters,
                pools: own,
                pos: self.pos(&name.referenced),
            });
        }
        regions
    }

    /// The rollout policy: `order` (one region after another), or `canary` (that one
    /// first, then the rest side by side); file order when neither is given.
    pub(super) fn rollout(
        &mut self,
        env: &str,
        raw: Option<&S<RawRollout>>,
        regions: &[Region],
    ) -> Rollout {
        let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        let mut rollout = Rollout {
            stages: names.iter().map(|n| vec![(*n).to_owned()]).collect(),
            on_failure: OnFailure::Halt,
        };
        let Some(raw) = raw else {
            return rollout;
        };
        if regions.is_empty() {
            self.error(
                &raw.referenced,
                format!("environment `{env}` has a `rollout` but no `regions`"),
                Some("add `regions:`, or remove `rollout:`".into()),
            );
            return rollout;
        }
        let known = |this: &mut Self, item: &S<String>| -> Option<String> {
            let v = this.text(item);
            let v = v.trim().to_owned();
            if names.contains(&v.as_str()) {
                Some(v)
            } else {
                let hint = suggest(&v, &names);
                this.error(
                    &item.referenced,
                    format!("rollout of `{env}` names region `{v}`, which `{env}` does not have"),
                    Some(hint),
                );
                None
            }
        };
        match (&raw.value.order, &raw.value.canary) {
            (Some(_), Some(c)) => self.error(
                &c.referenced,
                "a rollout has either `order` or `canary`, not both",
                Some("keep `order: [a, b]` (one after another) or `canary: a` (a first, then the rest together)".into()),
            ),
            (Some(order), None) => {
                let mut stages: Vec<Vec<String>> = Vec::new();
                for item in order {
                    if let Some(v) = known(self, item) {
                        if stages.iter().any(|s| s.contains(&v)) {
                            self.error(
                                &item.referenced,
                                format!("region `{v}` appears twice in the rollout of `{env}`"),
                                Some("name each region once".into()),
                            );
                        } else {
                            stages.push(vec![v]);
                        }
                    }
                }
                let missing: Vec<&str> = names
                    .iter()
                    .filter(|n| !stages.iter().any(|s| s.iter().any(|r| r == *n)))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    self.error(
                        &raw.referenced,
                        format!(
                            "the rollout of `{env}` leaves out region {}",
                            missing
                                .iter()
                                .map(|m| format!("`{m}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        Some("list every region under `order:`".into()),
                    );
                }
                rollout.stages = stages;
            }
            (None, Some(c)) => {
                if let Some(v) = known(self, c) {
                    let rest: Vec<String> = names
                        .iter()
                        .filter(|n| **n != v)
                        .map(|n| (*n).to_owned())
                        .collect();
                    rollout.stages = vec![vec![v]];
                    if !rest.is_empty() {
                        rollout.stages.push(rest);
                    }
                }
            }
            (None, None) => {}
        }
        if let Some(f) = &raw.value.on_failure {
            let v = self.text(f).trim().to_lowercase();
            rollout.on_failure = match v.as_str() {
                "halt" => OnFailure::Halt,
                "rollback" => OnFailure::Rollback,
                _ => {
                    let hint = suggest(&v, ON_FAILURE);
                    self.error(
                        &f.referenced,
                        format!("unknown on_failure `{v}`"),
                        Some(hint),
                    );
                    OnFailure::Halt
                }
            };
        }
        rollout
    }
}

/// Fills `{region}` into every template of a region's pool and adds the region's
/// extra Jenkins parameters to its jobs.
fn regionalise(pool: &mut Pool, region: &str, extra: &[(String, String)]) {
    let fill = |s: &mut String| *s = s.replace("{region}", region);
    let job = |j: &mut JobSpec| {
        for (_, v) in &mut j.parameters {
            fill(v);
        }
        for (k, v) in extra {
            let v = v.replace("{region}", region);
            match j.parameters.iter_mut().find(|(key, _)| key == k) {
                Some((_, old)) => *old = v,
                None => j.parameters.push((k.clone(), v)),
            }
        }
    };
    let request = |r: &mut HttpRequestSpec| {
        fill(&mut r.url);
        if let Some(b) = &mut r.body {
            fill(b);
        }
        for (_, v) in &mut r.headers {
            fill(v);
        }
    };
    if let Some(d) = &mut pool.deploy {
        job(d);
    }
    for m in &mut pool.members {
        match &mut m.restart {
            Some(ActionSpec::Job(j)) => job(j),
            Some(ActionSpec::Http(r)) => request(r),
            None => {}
        }
    }
    match &mut pool.switch {
        SwitchSpec::Haproxy {
            address, backend, ..
        } => {
            fill(address);
            fill(backend);
        }
        SwitchSpec::Http {
            set,
            get_url,
            pointer,
            weights,
        } => {
            request(set);
            fill(get_url);
            fill(pointer);
            if let Some(w) = weights {
                request(&mut w.set);
                fill(&mut w.pointer);
            }
        }
        SwitchSpec::Jenkins {
            job: j, get_url, ..
        } => {
            job(j);
            fill(get_url);
        }
        SwitchSpec::Memory { .. } => {}
    }
}
