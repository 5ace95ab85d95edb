//! [`HaproxySwitch`]: blue/green over HAProxy's runtime API (TCP or unix socket).
//!
//! One command per connection, answer read to EOF. Switching marks the target
//! `ready` first, waits until HAProxy's health checks report it UP (`srv_op_state`
//! 2), then puts every other member in the configured off state (`drain` or
//! `maint`), then reads `show servers state` back to verify. A target that never
//! comes UP is put back the way it was: nothing changes.

use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::{Environment, Pool};
use crate::ports::{shares_from_weights, Split, SwitchError, TrafficSwitch};

/// Maintenance bits of `srv_admin_state` (forced, inherited, resolution).
const MAINT_MASK: u32 = 0x23;
/// Drain bits of `srv_admin_state` (forced, inherited).
const DRAIN_MASK: u32 = 0x18;
/// How often a switch asks whether the new server is UP yet.
const UP_POLL: Duration = Duration::from_millis(100);
/// How long a switch waits, by default, for the new server to come UP.
pub const DEFAULT_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Answers longer than this are cut (a `show servers state` of a huge backend).
const MAX_ANSWER: u64 = 1024 * 1024;

/// One server row of `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// `srv_name`.
    pub name: String,
    /// `srv_op_state`: 0 stopped, 1 starting, 2 running, 3 stopping.
    pub op_state: u8,
    /// `srv_admin_state` bitmask.
    pub admin_state: u32,
    /// `srv_uweight`: the weight in force (set by `set server … weight`).
    pub weight: u32,
    /// `srv_iweight`: the weight the configuration gave it.
    pub initial_weight: u32,
}

impl ServerState {
    /// In maintenance (`& 0x23`).
    pub fn in_maint(&self) -> bool {
        self.admin_state & MAINT_MASK != 0
    }
    /// Draining (`& 0x18`).
    pub fn draining(&self) -> bool {
        self.admin_state & DRAIN_MASK != 0
    }
    /// Neither in maintenance nor draining: may take new traffic once UP.
    pub fn ready(&self) -> bool {
        !self.in_maint() && !self.draining()
    }
    /// HAProxy's health checks pass (`srv_op_state` 2, running).
    pub fn up(&self) -> bool {
        self.op_state == 2
    }
    /// `ready` and UP: HAProxy sends it new requests.
    pub fn taking_traffic(&self) -> bool {
        self.ready() && self.up()
    }
    /// The health part alone: `UP`, `DOWN`, `starting`, `stopping`.
    fn health(&self) -> String {
        match self.op_state {
            2 => "UP".to_owned(),
            0 => "DOWN".to_owned(),
            1 => "starting".to_owned(),
            3 => "stopping".to_owned(),
            n => format!("in op state {n}"),
        }
    }
    /// `ready`, `drain` or `maint`, with the health state when not running.
    pub fn describe(&self) -> String {
        let admin = if self.in_maint() {
            "maint"
        } else if self.draining() {
            "drain"
        } else {
            "ready"
        };
        match self.op_state {
            2 => admin.to_owned(),
            0 => format!("{admin}, down"),
            1 => format!("{admin}, starting"),
            3 => format!("{admin}, stopping"),
            n => format!("{admin}, op state {n}"),
        }
    }
}

/// Connections to one HAProxy runtime API open at once, from this process, at most
/// (HAProxy's stats socket takes few; a status flood must not crowd out a switch).
const MAX_CONNECTIONS: usize = 4;

/// The permits of the runtime API at `address`, shared by every switch using it.
fn connections(address: &str) -> std::sync::Arc<tokio::sync::Semaphore> {
    static ALL: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>,
    > = std::sync::OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    all.entry(address.trim().to_owned())
        .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)))
        .clone()
}

/// Drives one HAProxy backend's servers as a pool's members.
#[derive(Debug, Clone)]
pub struct HaproxySwitch {
    address: String,
    backend: String,
    servers: Vec<(String, String)>,
    off_state: String,
    connect_timeout: Duration,
    answer_timeout: Duration,
    up_timeout: Duration,
}

impl HaproxySwitch {
    /// A switch on the runtime API at `address` (`127.0.0.1:9999`, `ipv4@127.0.0.1:9999`
    /// or a unix socket path starting with `/`), for `backend`; `servers` maps member
    /// names to server names where they differ; `off_state` is `drain` or `maint`.
    pub fn new(
        address: impl Into<String>,
        backend: impl Into<String>,
        servers: Vec<(String, String)>,
        off_state: impl Into<String>,
    ) -> Self {
        Self {
            address: address.into(),
            backend: backend.into(),
            servers,
            off_state: off_state.into(),
            connect_timeout: Duration::from_secs(2),
            answer_timeout: Duration::from_secs(5),
            up_timeout: DEFAULT_UP_TIMEOUT,
        }
    }

    /// Changes how long connecting may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Changes how long a switch waits for the new server to come UP (pass its health
    /// checks) before giving up (default 30 s).
    pub fn up_timeout(mut self, timeout: Duration) -> Self {
        self.up_timeout = timeout;
        self
    }

    /// The HAProxy server name of a member.
    pub fn server_of<'a>(&'a self, member: &'a str) -> &'a str {
        self.servers
            .iter()
            .find(|(m, _)| m == member)
            .map(|(_, s)| s.as_str())
            .unwrap_or(member)
    }

    fn unreachable(&self, reason: impl Into<String>) -> SwitchError {
        SwitchError::Unreachable {
            address: self.address.clone(),
            reason: reason.into(),
        }
    }

    /// Sends one command and returns HAProxy's whole answer, over one of at most
    /// four connections this process has open to that runtime API at once.
    pub async fn command(&self, command: &str) -> Result<String, SwitchError> {
        let line = format!("{}\n", command.trim_end());
        let _permit = connections(&self.address)
            .acquire_owned()
            .await
            .map_err(|_| self.unreachable("the connection limit was closed"))?;
        if let Some(path) = self.unix_path() {
            #[cfg(unix)]
            {
                let stream = tokio::time::timeout(
                    self.connect_timeout,
                    tokio::net::UnixStream::connect(path),
                )
                .await
                .map_err(|_| self.unreachable("connection timed out"))?
                .map_err(|e| self.unreachable(e.to_string()))?;
                return self.exchange(stream, &line).await;
            }
            #[cfg(not(unix))]
            {
                let _ = path;
                return Err(self.unreachable("unix sockets are not supported on this platform"));
            }
        }
        let addr = self.tcp_address();
        let stream =
            tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| self.unreachable("connection timed out"))?
                .map_err(|e| self.unreachable(e.to_string()))?;
        self.exchange(stream, &line).await
    }

    fn unix_path(&self) -> Option<&str> {
        let a = self.address.trim();
        if let Some(p) = a.strip_prefix("unix@") {
            return Some(p);
        }
        a.starts_with('/').then_some(a)
    }

    fn tcp_address(&self) -> &str {
        let a = self.address.trim();
        a.strip_prefix("ipv4@")
            .or_else(|| a.strip_prefix("tcp@"))
            .unwrap_or(a)
    }

    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        line: &str,
    ) -> Result<String, SwitchError> {
        let work = async {
            stream.write_all(line.as_bytes()).await?;
            stream.flush().await?;
            let mut answer = Vec::new();
            (&mut stream)
                .take(MAX_ANSWER)
                .read_to_end(&mut answer)
                .await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(self.answer_timeout, work)
            .await
            .map_err(|_| self.unreachable("no answer from the runtime API in time"))?
            .map_err(|e| self.unreachable(e.to_string()))?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Sends a `set` command; any non-empty answer is HAProxy refusing it.
    async fn set(&self, command: &str) -> Result<(), SwitchError> {
        let answer = self.command(command).await?;
        let answer = answer.trim();
        if answer.is_empty() {
            Ok(())
        } else {
            Err(SwitchError::Refused(format!(
                "HAProxy answered `{}` to `{command}`",
                first_line(answer)
            )))
        }
    }

    /// The servers of the backend as `show servers state` reports them.
    pub async fn servers_state(&self) -> Result<Vec<ServerState>, SwitchError> {
        let answer = self
            .command(&format!("show servers state {}", self.backend))
            .await?;
        parse_servers_state(&answer).map_err(|reason| {
            SwitchError::Unknown(format!(
                "cannot read `show servers state {}`: {reason}",
                self.backend
            ))
        })
    }

    /// `(member, state)` for every pool member, in member order.
    async fn member_states<'p>(
        &self,
        pool: &'p Pool,
    ) -> Result<Vec<(&'p str, ServerState)>, SwitchError> {
        let states = self.servers_state().await?;
        pool.members
            .iter()
            .map(|m| {
                let server = self.server_of(&m.name);
                states
                    .iter()
                    .find(|s| s.name == server)
                    .map(|s| (m.name.as_str(), s.clone()))
                    .ok_or_else(|| {
                        SwitchError::Unknown(format!(
                            "backend {} has no server {server} (member {})",
                            self.backend, m.name
                        ))
                    })
            })
            .collect()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// Parses the answer to `show servers state <backend>` (format version 1).
pub fn parse_servers_state(answer: &str) -> Result<Vec<ServerState>, String> {
    let mut lines = answer.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some("1") => {}
        Some(other) => return Err(first_line(other).to_owned()),
        None => return Err("empty answer".into()),
    }
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .ok_or("missing column header")?;
    let columns: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or(format!("no column {name}"))
    };
    let (name_i, op_i, admin_i) = (
        col("srv_name")?,
        col("srv_op_state")?,
        col("srv_admin_state")?,
    );
    // Weights are read when the columns are there (every HAProxy since 1.6 has them).
    let (uweight_i, iweight_i) = (col("srv_uweight").ok(), col("srv_iweight").ok());
    let mut servers = Vec::new();
    for row in lines.filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let field = |i: usize| fields.get(i).copied().ok_or(format!("short row `{row}`"));
        let weight = |i: Option<usize>| match i {
            Some(i) => field(i)?
                .parse::<u32>()
                .map_err(|_| format!("bad weight in `{row}`")),
            None => Ok(1),
        };
        servers.push(ServerState {
            weight: weight(uweight_i)?,
            initial_weight: weight(iweight_i)?,
            name: field(name_i)?.to_owned(),
            op_state: field(op_i)?
                .parse()
                .map_err(|_| format!("bad srv_op_state in `{row}`"))?,
            admin_state: field(admin_i)?
                .parse()
                .map_err(|_| format!("bad srv_admin_state in `{row}`"))?,
        });
    }
    Ok(servers)
}

#[async_trait]
impl TrafficSwitch for HaproxySwitch {
    async fn active(&self, _env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        let states = self.member_states(pool).await?;
        // A ready server at weight 0 takes no new requests: it is not the active one.
        let ready: Vec<&(&str, ServerState)> = states
            .iter()
            .filter(|(_, s)| s.ready() && s.weight > 0)
            .collect();
        match ready.as_slice() {
            [(member, state)] if state.up() => Ok((*member).to_owned()),
            [(member, state)] => Err(SwitchError::Unknown(format!(
                "{member} is the ready member of backend {} but HAProxy's health checks report it {}, so it takes no traffic ({})",
                self.backend,
                state.health(),
                summary(&states)
            ))),
            [] => Err(SwitchError::Unknown(format!(
                "no member of backend {} is ready ({})",
                self.backend,
                summary(&states)
            ))),
            _ if ready.iter().all(|(_, s)| s.up()) => Err(SwitchError::Unknown(format!(
                "traffic on backend {} is shared out by weight ({}): a canary is under way or was left part-way",
                self.backend,
                summary(&states)
            ))),
            _ => Err(SwitchError::Unknown(format!(
                "several members of backend {} take traffic ({})",
                self.backend,
                summary(&states)
            ))),
        }
    }

    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        crate::ports::refuse_non_member(env, pool, member)?;
        let backend = &self.backend;
        let server = self.server_of(member);
        // An unknown server is left for HAProxy to refuse by name just below.
        let before = self
            .servers_state()
            .await?
            .into_iter()
            .find(|s| s.name == server);
        // Left at weight 0 by a split, it would be ready and still take nothing.
        if let Some(b) = before.as_ref().filter(|b| b.weight == 0) {
            self.set(&format!(
                "set server {backend}/{server} weight {}",
                b.initial_weight.max(1)
            ))
            .await?;
        }
        self.set(&format!("set server {backend}/{server} state ready"))
            .await?;
        if let Err(e) = self.wait_until_up(member).await {
            let restored = self.restore(server, before.as_ref()).await;
            return Err(match (e, restored) {
                (SwitchError::NotApplied(m), Ok(Some(state))) => SwitchError::NotApplied(format!(
                    "{m}; put it back in {state}, traffic unchanged"
                )),
                (SwitchError::NotApplied(m), Ok(None)) => {
                    SwitchError::NotApplied(format!("{m}; traffic unchanged"))
                }
                (SwitchError::NotApplied(m), Err(r)) => SwitchError::NotApplied(format!(
                    "{m}; putting it back failed, check HAProxy: {r}"
                )),
                (other, _) => other,
            });
        }
        for other in pool.members.iter().filter(|m| m.name != member) {
            self.set(&format!(
                "set server {backend}/{} state {}",
                self.server_of(&other.name),
                self.off_state
            ))
            .await?;
        }
        // A split is over: every member gets its configured weight back (the others
        // take no new requests by now, so this moves nothing).
        for (m, state) in self.member_states(pool).await? {
            // The member taking the traffic never goes back to a weight of 0.
            let weight = if m == member {
                state.initial_weight.max(1)
            } else {
                state.initial_weight
            };
            if state.weight != weight {
                self.set(&format!(
                    "set server {backend}/{} weight {weight}",
                    self.server_of(m)
                ))
                .await?;
            }
        }
        let states = self.member_states(pool).await?;
        let took = states.iter().all(|(m, s)| {
            if *m == member {
                s.taking_traffic() && s.weight > 0
            } else {
                !s.ready()
            }
        });
        if took {
            tracing::info!(env = %env.name, pool = %pool.name, member, backend = %self.backend, "traffic switched");
            Ok(())
        } else {
            Err(SwitchError::NotApplied(format!(
                "after switching to {member}, HAProxy reports {}",
                summary(&states)
            )))
        }
    }

    fn weighted(&self) -> bool {
        true
    }

    async fn set_split(
        &self,
        env: &Environment,
        pool: &Pool,
        split: &Split,
    ) -> Result<(), SwitchError> {
        split.refuse_non_members(env, pool)?;
        let split = split.over(pool);
        let backend = &self.backend;
        let states = self.member_states(pool).await?;
        // Weights first (a drained member's weight moves nothing), then every member
        // with a share made ready and waited for until UP.
        for (member, share) in split.shares() {
            let server = self.server_of(member);
            let current = states.iter().find(|(m, _)| m == member).map(|(_, s)| s);
            if current.is_some_and(|s| s.weight != u32::from(*share)) {
                self.set(&format!("set server {backend}/{server} weight {share}"))
                    .await?;
            }
        }
        for (member, share) in split.shares() {
            let current = states.iter().find(|(m, _)| m == member).map(|(_, s)| s);
            if *share > 0 && !current.is_some_and(ServerState::ready) {
                self.set(&format!(
                    "set server {backend}/{} state ready",
                    self.server_of(member)
                ))
                .await?;
                self.wait_until_up(member).await?;
            }
        }
        let now = self.split(env, pool).await?;
        if now == split {
            tracing::info!(env = %env.name, pool = %pool.name, backend = %self.backend, %split, "traffic split set");
            Ok(())
        } else {
            Err(SwitchError::NotApplied(format!(
                "asked for {split}, but HAProxy reports {} ({now})",
                summary(&self.member_states(pool).await?)
            )))
        }
    }

    async fn split(&self, _env: &Environment, pool: &Pool) -> Result<Split, SwitchError> {
        let states = self.member_states(pool).await?;
        let weights: Vec<(String, u32)> = states
            .iter()
            .map(|(m, s)| {
                let w = if s.taking_traffic() { s.weight } else { 0 };
                ((*m).to_owned(), w)
            })
            .collect();
        shares_from_weights(&weights).ok_or_else(|| {
            SwitchError::Unknown(format!(
                "no member of backend {} takes traffic ({})",
                self.backend,
                summary(&states)
            ))
        })
    }
}

impl HaproxySwitch {
    /// Polls `show servers state` until `member` is ready and UP, for at most
    /// `up_timeout`; `NotApplied` naming its last state otherwise.
    async fn wait_until_up(&self, member: &str) -> Result<(), SwitchError> {
        let server = self.server_of(member);
        let deadline = tokio::time::Instant::now() + self.up_timeout;
        loop {
            let states = self.servers_state().await?;
            let state = states.iter().find(|s| s.name == server);
            if state.is_some_and(ServerState::taking_traffic) {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let last = state.map_or_else(|| "no such server".to_owned(), ServerState::describe);
                return Err(SwitchError::NotApplied(format!(
                    "{member} did not come UP within {}s of being made ready (HAProxy reports it {last})",
                    self.up_timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(UP_POLL.min(deadline - now)).await;
        }
    }

    /// Puts `server` back in the admin state it had before the switch began; the
    /// state set, if it needed one.
    async fn restore(
        &self,
        server: &str,
        before: Option<&ServerState>,
    ) -> Result<Option<&'static str>, SwitchError> {
        let Some(before) = before else {
            return Ok(None);
        };
        let state = if before.in_maint() {
            "maint"
        } else if before.draining() {
            "drain"
        } else {
            return Ok(None);
        };
        self.set(&format!(
            "set server {}/{server} state {state}",
            self.backend
        ))
        .await?;
        Ok(Some(state))
    }
}

fn summary(states: &[(&str, ServerState)]) -> String {
    states
        .iter()
        .map(|(m, s)| {
            if s.weight == s.initial_weight {
                format!("{m}: {}", s.describe())
            } else {
                format!("{m}: {}, weight {}", s.describe(), s.weight)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 be_app 1 blue 127.0.0.1 2 0 1 1 12 6 3 4 6 0 0 0 - 18081 - 0 0 - - 0\n3 be_app 2 green 127.0.0.1 2 5 1 1 12 6 3 4 6 0 0 0 - 18082 - 0 0 - - 0\n\n";

    #[test]
    fn parses_show_servers_state() {
        let servers = parse_servers_state(SHOW).expect("parse");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].name, "blue");
        assert!(servers[0].ready());
        assert_eq!(servers[1].admin_state, 5);
        assert!(servers[1].in_maint());
        assert_eq!(servers[1].describe(), "maint");
    }

    #[test]
    fn config_maint_bit_alone_is_still_ready() {
        // `disabled` in the file leaves 0x04 after `state ready`.
        let s = ServerState {
            name: "green".into(),
            op_state: 2,
            admin_state: 0x04,
            weight: 1,
            initial_weight: 1,
        };
        assert!(s.ready());
        let drained = ServerState {
            admin_state: 0x04 | 0x08,
            ..s
        };
        assert!(drained.draining() && !drained.ready());
    }

    #[test]
    fn errors_from_haproxy_are_reported() {
        assert_eq!(
            parse_servers_state("Can't find backend.\n"),
            Err("Can't find backend.".into())
        );
    }

    #[test]
    fn addresses() {
        let s = |a: &str| HaproxySwitch::new(a, "be", vec![], "drain");
        assert_eq!(s("ipv4@127.0.0.1:9999").tcp_address(), "127.0.0.1:9999");
        assert_eq!(s("127.0.0.1:9999").unix_path(), None);
        assert_eq!(
            s("/run/haproxy/admin.sock").unix_path(),
            Some("/run/haproxy/admin.sock")
        );
        assert_eq!(s("unix@/run/h.sock").unix_path(), Some("/run/h.sock"));
    }
}
