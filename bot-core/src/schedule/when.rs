//! When a deploy is asked for, read from its words: `30m` or `in 30 min` (from now),
//! `18:00` or `at 18:00` (the next 18:00), `tomorrow 07:30`, each optionally followed
//! by an IANA zone (`Europe/Prague`, `UTC`); without one, the requester's zone.

use std::time::Duration;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The furthest ahead a deploy may be scheduled.
pub const HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);

/// A time read from the words.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    /// The moment.
    pub at: Timestamp,
    /// The zone it was given in (or the requester's), for saying it back.
    pub zone: TimeZone,
    /// The words that said it, as typed.
    pub said: String,
}

fn unit(word: &str) -> Option<u64> {
    Some(match word {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    })
}

/// `30m`, `2h`, `20s`.
fn duration(word: &str) -> Option<Duration> {
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs = unit(&word[digits.len()..])?;
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// `18:00`, `7:30`.
fn clock(word: &str) -> Option<Time> {
    let (h, m) = word.split_once(':')?;
    if !(1..=2).contains(&h.len()) || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    Time::new(h, m, 0, 0).ok()
}

/// An IANA zone name (`Europe/Prague`, `UTC`).
fn zone(word: &str) -> Option<TimeZone> {
    if !(word.contains('/') || word.eq_ignore_ascii_case("utc")) {
        return None;
    }
    TimeZone::get(word).ok()
}

/// Zone abbreviations people write but that name no one zone (`CET` is several
/// countries' winter time, `IST` three zones): refused beside a time, with a hint.
const ABBREVIATIONS: &[&str] = &[
    "CET", "CEST", "EET", "EEST", "WET", "WEST", "BST", "GMT", "IST", "MSK", "EST", "EDT", "CST",
    "CDT", "MST", "MDT", "PST", "PDT", "AKST", "HST", "JST", "KST", "AEST", "AEDT",
];

/// Whether `word` speaks of time (so it is never taken as a git ref).
pub fn is_time_word(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    [
        "at", "in", "tomorrow", "today", "tonight", "noon", "midnight",
    ]
    .contains(&w.as_str())
        || duration(&w).is_some()
        || clock(&w).is_some()
}

/// Reads a time from `args` (what follows the target), `now`, in `default_zone`
/// unless a zone is named. `Ok(None)`: no time in them. `Ok(Some((when, rest)))`:
/// the time and the words left (the ref). `Err`: words that read as a time but make
/// none, or a time in the past or beyond [`HORIZON`], said plainly.
pub fn read(
    args: &[String],
    now: Timestamp,
    default_zone: &TimeZone,
) -> Result<Option<(When, Vec<String>)>, String> {
    let mut rest = Vec::new();
    let mut after: Option<Duration> = None;
    let mut at: Option<Time> = None;
    let mut day: Option<i64> = None;
    let mut tz: Option<TimeZone> = None;
    let mut said = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let w = word.to_ascii_lowercase();
        i += 1;
        // `30 min`: a number and its unit.
        if !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) {
            let next = args.get(i).map(|n| n.to_ascii_lowercase());
            if let (Some(secs), Ok(n)) = (next.as_deref().and_then(unit), w.parse::<u64>()) {
                after = Some(Duration::from_secs(n.saturating_mul(secs)));
                said.push(format!("{word} {}", args[i]));
                i += 1;
                continue;
            }
        }
        if w == "at" || w == "in" {
            said.push(word.clone());
        } else if let Some(d) = duration(&w) {
            after = Some(d);
            said.push(word.clone());
        } else if let Some(t) = clock(&w) {
            at = Some(t);
            said.push(word.clone());
        } else if w == "today" || w == "tonight" {
            day = Some(0);
            said.push(word.clone());
        } else if w == "tomorrow" {
            day = Some(1);
            said.push(word.clone());
        } else if w == "noon" {
            at = Some(Time::constant(12, 0, 0, 0));
            said.push(word.clone());
        } else if w == "midnight" {
            at = Some(Time::midnight());
            day = day.or(Some(1));
            said.push(word.clone());
        } else if let Some(z) = zone(word) {
            tz = Some(z);
            said.push(word.clone());
        } else {
            rest.push(word.clone());
        }
    }
    if said.is_empty() {
        return Ok(None);
    }
    if let Some(abbr) = rest
        .iter()
        .find(|w| ABBREVIATIONS.contains(&w.to_ascii_uppercase().as_str()))
    {
        return Err(format!(
            "`{abbr}` is not a zone I can be sure of: name it as in the tz database, e.g. `Europe/Prague` or `America/New_York`"
        ));
    }
    let said = said.join(" ");
    let zone = tz.unwrap_or_else(|| default_zone.clone());
    let at = match (after, at, day) {
        (Some(d), None, None) => {
            // Checked before any arithmetic: `in 9999999999d` is refused, not a panic.
            if d > HORIZON {
                return Err(format!(
                    "`{said}` is more than {} days ahead",
                    HORIZON.as_secs() / 86_400
                ));
            }
            let secs = jiff::SignedDuration::from_secs(
                i64::try_from(d.as_secs()).map_err(|_| "too far ahead".to_owned())?,
            );
            now.checked_add(secs)
                .map_err(|_| "too far ahead".to_owned())?
        }
        (None, Some(t), day) => {
            let here = now.to_zoned(zone.clone());
            let mut date = here.date();
            if let Some(d) = day {
                date = date
                    .checked_add(d.days())
                    .map_err(|_| "no such day".to_owned())?;
            }
            let mut at = date
                .to_datetime(t)
                .to_zoned(zone.clone())
                .map_err(|_| format!("{t} does not exist there that day"))?
                .timestamp();
            if at <= now {
                if day.is_some() {
                    return Err(format!("`{said}` has passed already"));
                }
                // The next one: tomorrow's.
                at = date
                    .checked_add(1.days())
                    .map_err(|_| "no such day".to_owned())?
                    .to_datetime(t)
                    .to_zoned(zone.clone())
                    .map_err(|_| format!("{t} does not exist there tomorrow"))?
                    .timestamp();
            }
            at
        }
        (None, None, Some(_)) => {
            return Err(format!("`{said}` needs a time of day (`tomorrow 07:30`)"))
        }
        (None, None, None) => {
            return Err(format!(
                "`{said}` needs a time: `in 30m`, `at 18:00` or `tomorrow 07:30`"
            ))
        }
        (Some(_), _, _) => {
            return Err(format!(
                "`{said}` gives both a delay and a time of day; say one"
            ))
        }
    };
    if at <= now {
        return Err(format!("`{said}` is not in the future"));
    }
    let ahead = at.duration_since(now);
    if ahead.as_secs() > HORIZON.as_secs() as i64 {
        return Err(format!(
            "`{said}` is more than {} days ahead",
            HORIZON.as_secs() / 86_400
        ));
    }
    Ok(Some((When { at, zone, said }, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn now() -> Timestamp {
        "2026-12-07T16:00:00Z".parse().expect("ts")
    }

    fn prague() -> TimeZone {
        TimeZone::get("Europe/Prague").expect("zone")
    }

    fn at(s: &str, zone: &TimeZone) -> (String, Vec<String>) {
        let (w, rest) = read(&words(s), now(), zone)
            .expect("reads")
            .expect("a time");
        (w.at.to_string(), rest)
    }

    #[test]
    fn delays_from_now() {
        assert_eq!(at("30m", &TimeZone::UTC).0, "2026-12-07T16:30:00Z");
        assert_eq!(at("in 30 min", &TimeZone::UTC).0, "2026-12-07T16:30:00Z");
        // `in` is a filler word: what reaches here may be `30 min` alone.
        assert_eq!(at("30 min", &TimeZone::UTC).0, "2026-12-07T16:30:00Z");
        assert_eq!(at("in 20s", &TimeZone::UTC).0, "2026-12-07T16:00:20Z");
        assert_eq!(
            at("v1.2 in 2h", &TimeZone::UTC),
            ("2026-12-07T18:00:00Z".to_owned(), words("v1.2"))
        );
    }

    #[test]
    fn times_of_day_in_the_requesters_zone_or_the_one_named() {
        // 16:00 UTC is 17:00 in Prague: 18:00 there is an hour ahead.
        assert_eq!(at("at 18:00", &prague()).0, "2026-12-07T17:00:00Z");
        // 16:30 has passed in Prague (17:00 now): the next one is tomorrow's.
        assert_eq!(at("16:30", &prague()).0, "2026-12-08T15:30:00Z");
        assert_eq!(
            at("tomorrow 07:30 Europe/Prague", &TimeZone::UTC).0,
            "2026-12-08T06:30:00Z"
        );
        assert_eq!(at("at 18:00 UTC", &prague()).0, "2026-12-07T18:00:00Z");
        assert_eq!(
            at("Europe/Prague 18:00", &TimeZone::UTC).0,
            "2026-12-07T17:00:00Z",
            "a zone before the time"
        );
    }

    #[test]
    fn no_time_is_none_and_a_bad_one_is_said() {
        assert_eq!(read(&words("v1.2"), now(), &TimeZone::UTC), Ok(None));
        assert!(read(&words("today 08:00"), now(), &TimeZone::UTC)
            .expect_err("passed")
            .contains("has passed"));
        assert!(read(&words("tomorrow"), now(), &TimeZone::UTC)
            .expect_err("no time")
            .contains("needs a time of day"));
        for huge in [
            "in 10000000d",
            "99999999999999999s",
            "18446744073709551615h",
        ] {
            assert!(
                !matches!(read(&words(huge), now(), &TimeZone::UTC), Ok(Some(_))),
                "{huge} is never scheduled (and never a panic)"
            );
        }
        assert!(read(&words("at 18:00 CET"), now(), &TimeZone::UTC)
            .expect_err("abbreviation")
            .contains("Europe/Prague"));
        assert!(read(&words("in 40d"), now(), &TimeZone::UTC)
            .expect_err("too far")
            .contains("more than 30 days"));
        assert!(read(&words("in"), now(), &TimeZone::UTC)
            .expect_err("nothing")
            .contains("needs a time"));
    }
}
