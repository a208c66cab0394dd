//! Timestamps of run records: RFC 3339 in whole seconds, UTC.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Current UTC time as RFC 3339 (`2026-11-22T01:26:02Z`).
pub fn utc_now() -> String {
    Utc::now().format(RFC3339_SECONDS).to_string()
}

/// RFC 3339 in whole seconds, UTC: the timestamps of run records.
const RFC3339_SECONDS: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Format seconds since the Unix epoch as UTC, RFC 3339 (`pretty`) or compact (`20261122T012602`).
pub fn format_utc(secs: u64, pretty: bool) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .unwrap_or_default();
    t.format(if pretty {
        RFC3339_SECONDS
    } else {
        "%Y%m%dT%H%M%S"
    })
    .to_string()
}

/// Parse an RFC 3339 timestamp (those this module writes, or any offset) into Unix seconds; a
/// timestamp without an offset is read as UTC.
pub fn parse_utc(s: &str) -> Option<u64> {
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.timestamp(),
        Err(_) => NaiveDateTime::parse_from_str(s.get(..19)?, "%Y-%m-%dT%H:%M:%S")
            .ok()?
            .and_utc()
            .timestamp(),
    };
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_round_trip() {
        for secs in [0u64, 951_782_400, 1_795_310_762, 4_102_444_800] {
            let s = format_utc(secs, true);
            assert_eq!(parse_utc(&s), Some(secs), "{s}");
        }
        assert_eq!(format_utc(951_782_400, true), "2000-02-29T00:00:00Z");
    }
}
