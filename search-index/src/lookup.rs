//! Point look-ups by key: a charger's live EVSE statuses without a search.

use emsp_domain::EvseStatus;

use crate::index::SearchIndex;

impl SearchIndex {
    /// The live status of one EVSE as search sees it; `None` when the index does not hold it (or
    /// holds it as REMOVED); UNKNOWN while the party is stale. The key is `CC*PID*ID` in upper case, as stored.
    pub fn evse_status(&self, location_key: &str, evse_uid: &str) -> Option<EvseStatus> {
        let inner = self.inner.read();
        let slot = *inner.by_key.get(location_key)?;
        let record = inner.record(slot)?;
        let evse = record.evses.iter().find(|evse| evse.uid.eq_ignore_ascii_case(evse_uid))?;
        let status = record.reported_status(evse);
        (status != EvseStatus::Removed).then_some(status)
    }

    /// Every EVSE of a location (uid and live status, REMOVED ones left out), in the location's
    /// order; `None` when the index does not hold the location. The key is `CC*PID*ID`, upper case.
    pub fn evse_statuses(&self, location_key: &str) -> Option<Vec<(String, EvseStatus)>> {
        let inner = self.inner.read();
        let slot = *inner.by_key.get(location_key)?;
        let record = inner.record(slot)?;
        Some(
            record
                .evses
                .iter()
                .map(|evse| (evse.uid.as_str().to_owned(), record.reported_status(evse)))
                .filter(|(_, status)| *status != EvseStatus::Removed)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use emsp_domain::fixtures::location;

    use super::*;

    #[test]
    fn reads_the_live_status_of_one_evse() {
        let index = SearchIndex::with_random_secret();
        index.upsert(&location("L1", 52.0, 4.0)).unwrap();
        assert_eq!(index.evse_status("NL*ABC*L1", "1"), Some(EvseStatus::Charging));
        index.set_evse_status("NL*ABC*L1", "1", &EvseStatus::Available).unwrap();
        assert_eq!(index.evse_status("NL*ABC*L1", "1"), Some(EvseStatus::Available));
        assert_eq!(index.evse_status("NL*ABC*L1", "9"), None);
        assert_eq!(index.evse_status("NL*ABC*NOPE", "1"), None);
        let all = index.evse_statuses("NL*ABC*L1").unwrap();
        assert_eq!(all.len(), location("L1", 52.0, 4.0).evses.len());
        assert!(all.contains(&("1".to_owned(), EvseStatus::Available)), "{all:?}");
        assert_eq!(index.evse_statuses("NL*ABC*NOPE"), None);
    }
}
