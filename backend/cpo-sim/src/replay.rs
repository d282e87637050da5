//! Real EVSE status changes to replay as pushes, so the EMSP sees the rhythm of a real network
//! rather than uniform noise. The file format is the one of chargecloud's open data
//! (`id;status;parkingsensor_status;timestamp`); a sample ships with the crate (see
//! `data/README.md` for its provenance and for how ids map onto the simulator's EVSEs).

use crate::error::DataError;

/// The shipped sample of real status changes (`data/status-sample.csv`).
pub const REPLAY_SAMPLE: &str = include_str!("../data/status-sample.csv");

/// OCPI 2.2.1 / 2.1.1 EVSE statuses the replay may carry.
const STATUSES: [&str; 9] =
    ["AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "PLANNED", "REMOVED", "RESERVED", "UNKNOWN"];

/// One status change of a real EVSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEvent {
    /// The real EVSE id (e.g. `DE*REK*E00025*001`).
    pub evse_id: String,
    pub status: String,
    /// As written in the file (`2022-01-11 21:58:22+01:00`); only the order matters to the replay.
    pub timestamp: String,
}

/// Parses the CSV. The header line is optional; blank lines are skipped; a line with too few
/// fields or a status OCPI does not know is an error naming the line.
pub fn parse_replay(text: &str) -> Result<Vec<ReplayEvent>, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (index == 0 && line.starts_with("id;")) {
            continue;
        }
        let fields: Vec<&str> = line.split(';').collect();
        let [evse_id, status, _parking, timestamp] = fields.as_slice() else {
            return Err(DataError::Replay { line: index + 1, reason: "expected 4 `;`-separated fields".to_owned() });
        };
        let status = status.trim().to_ascii_uppercase();
        if !STATUSES.contains(&status.as_str()) {
            return Err(DataError::Replay { line: index + 1, reason: format!("unknown status `{status}`") });
        }
        events.push(ReplayEvent { evse_id: evse_id.trim().to_owned(), status, timestamp: timestamp.trim().to_owned() });
    }
    if events.is_empty() {
        return Err(DataError::Replay { line: 0, reason: "no events".to_owned() });
    }
    Ok(events)
}

/// Maps each real EVSE id onto one of `evse_count` simulator EVSEs, round robin in order of first
/// appearance: the n-th distinct id gets EVSE `n % evse_count`.
pub fn round_robin(events: &[ReplayEvent], evse_count: usize) -> Vec<usize> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut mapping = Vec::with_capacity(events.len());
    for event in events {
        let next = seen.len();
        let n = *seen.entry(event.evse_id.as_str()).or_insert(next);
        mapping.push(if evse_count == 0 { 0 } else { n % evse_count });
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sample_parses() {
        let events = parse_replay(REPLAY_SAMPLE).unwrap();
        assert!(events.len() > 300, "{} events", events.len());
        assert_eq!(events[0].evse_id, "DE*REK*E00025*001");
        assert_eq!(events[0].status, "RESERVED");
        assert!(events.iter().any(|e| e.status == "CHARGING"));
        assert!(events.iter().any(|e| e.status == "AVAILABLE"));
    }

    #[test]
    fn bad_lines_are_named() {
        let err =
            parse_replay("id;status;parkingsensor_status;timestamp\nA;AVAILABLE;-;t\nB;FLYING;-;t\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(parse_replay("A;AVAILABLE;-\n").is_err());
        assert!(parse_replay("\u{feff}A;available;-;t\n").is_ok());
    }

    #[test]
    fn ids_map_round_robin_in_order_of_first_appearance() {
        let events = parse_replay("A;AVAILABLE;-;1\nB;CHARGING;-;2\nA;CHARGING;-;3\nC;AVAILABLE;-;4\n").unwrap();
        assert_eq!(round_robin(&events, 2), vec![0, 1, 0, 0]);
        assert_eq!(round_robin(&events, 5), vec![0, 1, 0, 2]);
    }
}
