//! The benchmark report: JSON for machines, a table for people.

use serde::Serialize;

/// Figures of one query kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryFigures {
    pub name: String,
    pub p50_us: f64,
    pub p99_us: f64,
    pub qps: f64,
    /// Median of the same query on PostGIS, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgis_p50_us: Option<f64>,
    /// `postgis_p50_us / p50_us`: how many times faster the engine is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchBenchReport {
    pub evses: usize,
    pub bulk_load_s: f64,
    pub bytes_per_evse: f64,
    pub status_updates_per_s: f64,
    pub queries: Vec<QueryFigures>,
}

impl SearchBenchReport {
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "EVSEs: {}\nbulk load: {:.2} s\nmemory: {:.0} bytes per EVSE\nstatus updates while querying: {:.0}/s\n\n",
            self.evses, self.bulk_load_s, self.bytes_per_evse, self.status_updates_per_s
        );
        out.push_str(&format!(
            "{:<24} {:>12} {:>12} {:>12} {:>14} {:>10}\n",
            "query", "p50 µs", "p99 µs", "qps", "PostGIS p50 µs", "ratio"
        ));
        for query in &self.queries {
            let postgis = query.postgis_p50_us.map_or("-".to_owned(), |v| format!("{v:.1}"));
            let ratio = query.ratio.map_or("-".to_owned(), |v| format!("{v:.1}x"));
            out.push_str(&format!(
                "{:<24} {:>12.1} {:>12.1} {:>12.0} {:>14} {:>10}\n",
                query.name, query.p50_us, query.p99_us, query.qps, postgis, ratio
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_the_agreed_shape() {
        let report = SearchBenchReport {
            evses: 10,
            bulk_load_s: 1.5,
            bytes_per_evse: 300.0,
            status_updates_per_s: 1e6,
            queries: vec![
                QueryFigures {
                    name: "bbox".into(),
                    p50_us: 1.0,
                    p99_us: 2.0,
                    qps: 3.0,
                    postgis_p50_us: None,
                    ratio: None,
                },
                QueryFigures {
                    name: "radius_5km_2_filters".into(),
                    p50_us: 1.0,
                    p99_us: 2.0,
                    qps: 3.0,
                    postgis_p50_us: Some(100.0),
                    ratio: Some(100.0),
                },
            ],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "evses": 10, "bulk_load_s": 1.5, "bytes_per_evse": 300.0, "status_updates_per_s": 1e6,
                "queries": [
                    {"name": "bbox", "p50_us": 1.0, "p99_us": 2.0, "qps": 3.0},
                    {"name": "radius_5km_2_filters", "p50_us": 1.0, "p99_us": 2.0, "qps": 3.0,
                     "postgis_p50_us": 100.0, "ratio": 100.0}
                ]
            })
        );
        assert!(report.to_table().contains("radius_5km_2_filters"));
    }
}
