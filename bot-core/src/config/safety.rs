//! Safety beyond confirmation, as configured: four-eyes approval rules (per
//! environment in `instances.yaml`, per command in `commands.yaml`) and freeze
//! windows (recurring weekly windows and date ranges, each in an IANA time zone),
//! evaluated on wall-clock time in their zone so daylight-saving changes fall right.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use super::Pos;

/// How long an approval stays good to start unless `valid_for:` says otherwise.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(3600);

/// `approval: { from: [deployers], count: 1, expires: 30m, channel: … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Groups whose members may approve (never the requester).
    pub from: Vec<String>,
    /// Approvals needed, by different people.
    pub count: u32,
    /// How long a request stays open.
    pub expires: Duration,
    /// How long an approval stays good to start (a deploy waiting in line, a button
    /// clicked later): after that it must be approved again.
    pub valid_for: Duration,
    /// Where the approval card is also posted (a channel id or a `channels:` alias).
    pub channel: Option<String>,
    /// Where it was defined.
    pub pos: Pos,
}

/// Every approval rule, by environment and by command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalRules {
    /// Mutating actions on these environments need approval.
    pub envs: BTreeMap<String, ApprovalRule>,
    /// These commands need approval wherever they run.
    pub commands: BTreeMap<String, ApprovalRule>,
}

/// When a freeze window is in force.
#[derive(Debug, Clone, PartialEq)]
pub enum FreezeWhen {
    /// Every week from one weekday and time to another (wrapping over the weekend
    /// when the end comes first in the week).
    Weekly {
        /// Start day.
        from_day: Weekday,
        /// Start time.
        from_time: Time,
        /// End day.
        to_day: Weekday,
        /// End time.
        to_time: Time,
    },
    /// From the start of the first date to the end of the last (inclusive).
    Dates {
        /// First frozen day.
        first: Date,
        /// Last frozen day.
        last: Date,
    },
}

/// One freeze window: `Fri 16:00 – Mon 08:00 Europe/Prague` or
/// `2026-12-20 .. 2027-01-04 Europe/Prague`.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeWindow {
    /// As written (the name people are shown).
    pub text: String,
    /// The environment it freezes; every environment when `None`.
    pub env: Option<String>,
    /// When.
    pub when: FreezeWhen,
    /// The zone its times are in.
    pub tz: TimeZone,
    /// Groups whose members may override it (`override="why"`).
    pub overriders: Vec<String>,
    /// Where it was defined.
    pub pos: Pos,
}

/// A window in force at some moment, and when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveFreeze {
    /// The window.
    pub window: FreezeWindow,
    /// When it ends, in the window's zone.
    pub ends: Zoned,
}

impl ActiveFreeze {
    /// When it ends.
    pub fn ends_at(&self) -> SystemTime {
        SystemTime::from(self.ends.timestamp())
    }
}

fn minute_of_week(day: Weekday, time: Time) -> i32 {
    i32::from(day.to_monday_zero_offset()) * 1440
        + i32::from(time.hour()) * 60
        + i32::from(time.minute())
}

impl FreezeWindow {
    /// Whether the window is in force at `now`, and if so until when.
    pub fn active_at(&self, now: SystemTime) -> Option<ActiveFreeze> {
        let ts = Timestamp::try_from(now).ok()?;
        let here = ts.to_zoned(self.tz.clone());
        let ends = match &self.when {
            FreezeWhen::Weekly {
                from_day,
                from_time,
                to_day,
                to_time,
            } => {
                let m = minute_of_week(here.weekday(), here.time());
                let (s, e) = (
                    minute_of_week(*from_day, *from_time),
                    minute_of_week(*to_day, *to_time),
                );
                let inside = if s < e {
                    s <= m && m < e
                } else {
                    m >= s || m < e
                };
                if !inside {
                    return None;
                }
                // The next wall-clock `to_day to_time` after now, in the zone.
                let ahead = (i32::from(to_day.to_monday_zero_offset())
                    - i32::from(here.weekday().to_monday_zero_offset()))
                .rem_euclid(7);
                let mut date = here
                    .date()
                    .checked_add(jiff::Span::new().days(ahead))
                    .ok()?;
                if DateTime::from_parts(date, *to_time) <= here.datetime() {
                    date = date.checked_add(jiff::Span::new().days(7)).ok()?;
                }
                DateTime::from_parts(date, *to_time)
                    .to_zoned(self.tz.clone())
                    .ok()?
            }
            FreezeWhen::Dates { first, last } => {
                let start = first.to_zoned(self.tz.clone()).ok()?;
                let end = last.tomorrow().ok()?.to_zoned(self.tz.clone()).ok()?;
                if ts < start.timestamp() || ts >= end.timestamp() {
                    return None;
                }
                end
            }
        };
        Some(ActiveFreeze {
            window: self.clone(),
            ends,
        })
    }
}

/// Why a freeze window could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWindow {
    /// What is wrong.
    pub message: String,
    /// How to write it.
    pub hint: String,
}

const WINDOW_HINT: &str = "write `Fri 16:00 - Mon 08:00 Europe/Prague` (weekly) or `2026-12-20 .. 2027-01-04 Europe/Prague` (dates, both days frozen)";

fn bad(message: impl Into<String>) -> BadWindow {
    BadWindow {
        message: message.into(),
        hint: WINDOW_HINT.into(),
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    let w = word.to_ascii_lowercase();
    let days = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    days.iter()
        .zip(full)
        .find(|((short, _), long)| {
            w == *short || w == *long || (w.len() >= 3 && long.starts_with(&w))
        })
        .map(|((_, d), _)| *d)
}

fn day_and_time(text: &str) -> Result<(Weekday, Time), BadWindow> {
    let mut words = text.split_whitespace();
    let (Some(day), Some(time), None) = (words.next(), words.next(), words.next()) else {
        return Err(bad(format!(
            "`{}` is not a weekday and a time",
            text.trim()
        )));
    };
    let day = weekday(day).ok_or_else(|| bad(format!("`{day}` is not a weekday")))?;
    let time: Time = time
        .parse()
        .map_err(|_| bad(format!("`{time}` is not a time of day (HH:MM)")))?;
    Ok((day, time))
}

/// Reads one window as written (`–`, `—` and `-` all separate a weekly window's ends);
/// the zone comes last and is required.
pub fn parse_window(text: &str) -> Result<(FreezeWhen, TimeZone), BadWindow> {
    let text = text.trim();
    let Some((body, zone)) = text.rsplit_once(char::is_whitespace) else {
        return Err(bad(format!("`{text}` has no time zone")));
    };
    let tz = TimeZone::get(zone).map_err(|_| BadWindow {
        message: format!("`{zone}` is not an IANA time zone"),
        hint: "end the window with a zone such as `Europe/Prague`, `America/New_York` or `UTC`"
            .into(),
    })?;
    if let Some((first, last)) = body.split_once("..") {
        let date = |s: &str| -> Result<Date, BadWindow> {
            s.trim()
                .parse()
                .map_err(|_| bad(format!("`{}` is not a date (YYYY-MM-DD)", s.trim())))
        };
        let (first, last) = (date(first)?, date(last)?);
        if last < first {
            return Err(bad(format!("`{text}` ends before it starts")));
        }
        return Ok((FreezeWhen::Dates { first, last }, tz));
    }
    let body = body.replace(['–', '—'], "-");
    let Some((from, to)) = body.split_once('-') else {
        return Err(bad(format!(
            "`{text}` is neither a weekly window nor a date range"
        )));
    };
    let (from_day, from_time) = day_and_time(from)?;
    let (to_day, to_time) = day_and_time(to)?;
    if (from_day, from_time) == (to_day, to_time) {
        return Err(bad(format!("`{text}` starts and ends at the same moment")));
    }
    Ok((
        FreezeWhen::Weekly {
            from_day,
            from_time,
            to_day,
            to_time,
        },
        tz,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str) -> FreezeWindow {
        let (when, tz) = parse_window(text).expect("parses");
        FreezeWindow {
            text: text.into(),
            env: None,
            when,
            tz,
            overriders: vec![],
            pos: Pos::default(),
        }
    }

    fn at(text: &str) -> SystemTime {
        SystemTime::from(text.parse::<Timestamp>().expect("timestamp"))
    }

    #[test]
    fn windows_are_read_with_either_dash_and_a_zone() {
        for text in [
            "Fri 16:00 – Mon 08:00 Europe/Prague",
            "Fri 16:00 - Mon 08:00 Europe/Prague",
            "friday 16:00 — monday 08:00 Europe/Prague",
            "2026-12-20 .. 2027-01-04 Europe/Prague",
        ] {
            assert!(parse_window(text).is_ok(), "{text}");
        }
        for text in [
            "Fri 16:00 - Mon 08:00",
            "Fri 16:00 - Mon 08:00 Mars/Olympus",
            "Fry 16:00 - Mon 08:00 UTC",
            "Fri 25:00 - Mon 08:00 UTC",
            "2027-01-04 .. 2026-12-20 UTC",
        ] {
            assert!(parse_window(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_weekend_window_wraps_and_ends_on_monday_wall_clock() {
        let w = window("Fri 16:00 - Mon 08:00 Europe/Prague");
        // Friday 27 Nov 2026 15:59 and 16:00 in Prague (UTC+1).
        assert!(w.active_at(at("2026-11-27T14:59:00Z")).is_none());
        let on = w.active_at(at("2026-11-27T15:00:00Z")).expect("frozen");
        assert_eq!(
            on.ends.timestamp(),
            "2026-11-30T07:00:00Z".parse().expect("ts")
        );
        assert!(w.active_at(at("2026-11-30T07:00:00Z")).is_none());
        assert!(w.active_at(at("2026-11-25T12:00:00Z")).is_none());
    }

    #[test]
    fn date_ranges_freeze_both_days_whole() {
        let w = window("2026-12-20 .. 2027-01-04 America/New_York");
        assert!(w.active_at(at("2026-12-20T04:59:00Z")).is_none());
        let on = w.active_at(at("2026-12-20T05:00:00Z")).expect("frozen");
        assert_eq!(
            on.ends.timestamp(),
            "2027-01-05T05:00:00Z".parse().expect("ts")
        );
        assert!(w.active_at(at("2027-01-05T05:00:00Z")).is_none());
    }
}
