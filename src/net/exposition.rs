//! The Prometheus text exposition format (version 0.0.4): counters, gauges,
//! labelled families and histograms, written as `/metrics` serves them.

use std::fmt::Write;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the buckets of every duration histogram:
/// from a fast module's millisecond to the longest job time limit's range.
pub const SECONDS_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A histogram of durations in seconds over [`SECONDS_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations in each bucket (not cumulative); the last is `+Inf`.
    counts: [u64; SECONDS_BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        let i = SECONDS_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(SECONDS_BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A metrics page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A counter; `name` ends in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        let _ = writeln!(self.out, "{name} {value}");
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A counter family with one label, one sample per value of it.
    pub fn labelled_counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        self.family(name, "counter", help);
        for (value, n) in samples {
            let _ = writeln!(
                self.out,
                "{name}{{{label}=\"{}\"}} {n}",
                escape_label(value)
            );
        }
    }

    /// A gauge family with the labels `labels`, one sample per set of
    /// their values (in the same order).
    pub fn labelled_gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        samples: impl IntoIterator<Item = (Vec<String>, f64)>,
    ) {
        self.family(name, "gauge", help);
        for (values, value) in samples {
            let set: Vec<String> = labels
                .iter()
                .zip(&values)
                .map(|(label, v)| format!("{label}=\"{}\"", escape_label(v)))
                .collect();
            let _ = writeln!(self.out, "{name}{{{}}} {value}", set.join(","));
        }
    }

    /// A histogram: cumulative `_bucket` lines, then `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let mut cumulative = 0;
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            let le = SECONDS_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(self.out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(self.out, "{name}_sum {}", h.sum);
        let _ = writeln!(self.out, "{name}_count {cumulative}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(text: &str) -> String {
    escape_help(text).replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_with_help_and_type() {
        let mut e = Exposition::default();
        e.counter("x_total", "Things.\nMore", 3);
        e.gauge("y", "Now.", 1.5);
        e.labelled_counter("z_total", "By module.", "module", [("a\"b", 2)]);
        assert_eq!(
            e.finish(),
            "# HELP x_total Things.\\nMore\n# TYPE x_total counter\nx_total 3\n\
             # HELP y Now.\n# TYPE y gauge\ny 1.5\n\
             # HELP z_total By module.\n# TYPE z_total counter\nz_total{module=\"a\\\"b\"} 2\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.0005);
        h.observe(0.003);
        h.observe(100.0);
        assert_eq!(h.count(), 3);
        let mut e = Exposition::default();
        e.histogram("t_seconds", "Time.", &h);
        let text = e.finish();
        assert!(
            text.contains("t_seconds_bucket{le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{le=\"30\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("t_seconds_sum 100.0035\n"), "{text}");
        assert!(text.ends_with("t_seconds_count 3\n"), "{text}");
    }
}
