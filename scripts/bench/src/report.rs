//! The figures and how `BENCHMARKS.md` shows them.

use crate::machine::Machine;
use crate::stats::Samples;

/// A goal on the median of a metric.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met_by(self, v: f64) -> bool {
        match self {
            Goal::AtMost(g) => v <= g,
            Goal::AtLeast(g) => v >= g,
        }
    }
}

/// One measured quantity of a figure, with one sample per run.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    pub decimals: usize,
    pub samples: Samples,
    pub goal: Option<Goal>,
}

impl Metric {
    pub fn new(name: impl Into<String>, unit: impl Into<String>, decimals: usize) -> Self {
        Self {
            name: name.into(),
            unit: unit.into(),
            decimals,
            samples: Samples::new(),
            goal: None,
        }
    }

    pub fn with_goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal);
        self
    }

    fn num(&self, v: f64) -> String {
        let s = format!("{v:.*}", self.decimals);
        group_thousands(&s)
    }

    /// `median unit (min–max, n runs)`, or `—` when there are no samples.
    pub fn summary(&self) -> String {
        match (self.samples.median(), self.samples.min(), self.samples.max()) {
            (Some(med), Some(lo), Some(hi)) => {
                let n = self.samples.len();
                if n == 1 || lo == hi {
                    format!(
                        "{} {} ({} run{})",
                        self.num(med),
                        self.unit,
                        n,
                        if n == 1 { "" } else { "s, all equal" }
                    )
                } else {
                    format!(
                        "{} {} ({}–{}, {} runs)",
                        self.num(med),
                        self.unit,
                        self.num(lo),
                        self.num(hi),
                        n
                    )
                }
            }
            _ => "—".to_owned(),
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Some(Goal::AtMost(g)) => format!("≤ {} {}", self.num(g), self.unit),
            Some(Goal::AtLeast(g)) => format!("≥ {} {}", self.num(g), self.unit),
            None => "—".to_owned(),
        }
    }

    /// Whether the median meets the goal (`None` without a goal or samples).
    pub fn verdict(&self) -> Option<bool> {
        Some(self.goal?.met_by(self.samples.median()?))
    }
}

/// An integer with thousands separators (`81555.3` → `81,555`).
pub fn int(v: f64) -> String {
    group_thousands(&format!("{v:.0}"))
}

fn group_thousands(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.len() <= 3 {
        return s.to_owned();
    }
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

#[derive(Debug, Clone)]
pub struct Measurement {
    /// The figure's own metrics; the first is the headline.
    pub metrics: Vec<Metric>,
    pub baseline: Option<Metric>,
    /// Headline ÷ baseline, run by run (or baseline-relative, as the figure defines it).
    pub ratio: Option<Metric>,
    /// How it was measured, in a sentence or two.
    pub method: String,
    /// What limits the figure, from what was observed.
    pub limits: String,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Measured(Box<Measurement>),
    NotMeasured(String),
}

#[derive(Debug, Clone)]
pub struct Figure {
    /// The figure's label ("2", "2b").
    pub number: &'static str,
    pub title: String,
    pub goal: String,
    pub outcome: Outcome,
}

impl Figure {
    pub fn not_measured(number: &'static str, title: &str, goal: &str, why: impl Into<String>) -> Self {
        Self {
            number,
            title: title.to_owned(),
            goal: goal.to_owned(),
            outcome: Outcome::NotMeasured(why.into()),
        }
    }

    pub fn verdict(&self) -> Option<bool> {
        let Outcome::Measured(m) = &self.outcome else {
            return None;
        };
        let verdicts: Vec<bool> = m
            .metrics
            .iter()
            .chain(m.ratio.iter())
            .filter_map(Metric::verdict)
            .collect();
        if verdicts.is_empty() {
            None
        } else {
            Some(verdicts.iter().all(|v| *v))
        }
    }
}

fn verdict_text(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "—",
    }
}

/// The whole report as Markdown.
pub fn render(figures: &[Figure], machine: &Machine, smoke: bool, runs: usize, command: &str) -> String {
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    if smoke {
        out.push_str(
            "**Smoke run** (tiny sizes, to check the suite still works; these numbers mean nothing).\n\n",
        );
    }
    out.push_str(&format!(
        "Written by `{command}`. Every figure is measured beside its baseline in the same run, on the same machine, \
         run by run ({runs} run{} each; ratios are taken per run and then the median), because the machine is shared \
         and noisy. Values are medians with min–max. A figure that could not be measured says why; nothing here is \
         estimated.\n\n",
        if runs == 1 { "" } else { "s" }
    ));
    out.push_str(
        "Run it: `scripts/bench.sh` (release build, 3 runs per figure, rewrites this file; ~20 minutes on 2 cores, \
         best on a quiet machine). `scripts/bench.sh --smoke` (dev build, tiny sizes, one run, a temporary report) \
         runs in CI from `scripts/test.sh` and fails if any figure cannot be measured. \
         `scripts/bench.sh -- --only 2,5 --runs 5` runs a subset. The code is `scripts/bench/` (`remesa-bench`).\n\n",
    );
    out.push_str("## Machine\n\n");
    out.push_str(&machine.markdown());
    out.push_str("\n## Summary\n\n");
    out.push_str("| # | figure | measured (median, min–max) | baseline | ratio | goal | goal met |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
    for f in figures {
        match &f.outcome {
            Outcome::NotMeasured(why) => {
                out.push_str(&format!(
                    "| {} | {} | not measured: {} | — | — | {} | — |\n",
                    f.number, f.title, why, f.goal
                ));
            }
            Outcome::Measured(m) => {
                for (i, metric) in m.metrics.iter().enumerate() {
                    let (baseline, ratio) = if i == 0 {
                        (
                            m.baseline
                                .as_ref()
                                .map_or("—".to_owned(), |b| format!("{}: {}", b.name, b.summary())),
                            m.ratio.as_ref().map_or("—".to_owned(), Metric::summary),
                        )
                    } else {
                        (String::new(), String::new())
                    };
                    let goal = match (&metric.goal, i, &m.ratio) {
                        (Some(_), _, _) => metric.goal_text(),
                        (None, 0, Some(r)) if r.goal.is_some() => format!("ratio {}", r.goal_text()),
                        _ => "—".to_owned(),
                    };
                    let verdict = match (metric.goal, i, &m.ratio) {
                        (Some(_), _, _) => metric.verdict(),
                        (None, 0, Some(r)) => r.verdict(),
                        _ => None,
                    };
                    let title = if i == 0 { f.title.clone() } else { String::new() };
                    let num = if i == 0 {
                        f.number.to_owned()
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "| {num} | {title}{}{} | {} | {baseline} | {ratio} | {goal} | {} |\n",
                        if title.is_empty() { "" } else { ": " },
                        metric.name,
                        metric.summary(),
                        verdict_text(verdict)
                    ));
                }
            }
        }
    }
    out.push_str("\n## Figures\n");
    for f in figures {
        out.push_str(&format!(
            "\n### {}. {}\n\nGoal: {}.\n\n",
            f.number, f.title, f.goal
        ));
        match &f.outcome {
            Outcome::NotMeasured(why) => out.push_str(&format!("**Not measured:** {why}\n")),
            Outcome::Measured(m) => {
                out.push_str(&format!("How: {}\n\n", m.method));
                out.push_str("| metric | median (min–max) | runs |\n| --- | --- | --- |\n");
                for metric in m.metrics.iter().chain(m.baseline.iter()).chain(m.ratio.iter()) {
                    let runs: Vec<String> = metric.samples.values().iter().map(|v| metric.num(*v)).collect();
                    out.push_str(&format!(
                        "| {} | {} | {} |\n",
                        metric.name,
                        metric.summary(),
                        runs.join(", ")
                    ));
                }
                out.push_str(&format!("\nGoal met: {}.", verdict_text(f.verdict())));
                out.push_str(&format!(" What limits it: {}\n", m.limits));
                for n in &m.notes {
                    out.push_str(&format!("\n- {n}"));
                }
                if !m.notes.is_empty() {
                    out.push('\n');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands("123"), "123");
        assert_eq!(group_thousands("1234"), "1,234");
        assert_eq!(group_thousands("12345"), "12,345");
        assert_eq!(group_thousands("1234567.25"), "1,234,567.25");
        assert_eq!(group_thousands("-123456"), "-123,456");
    }

    #[test]
    fn verdict_follows_median() {
        let mut m = Metric::new("x", "ms", 1).with_goal(Goal::AtMost(10.0));
        m.samples = Samples::from_values(vec![9.0, 11.0, 12.0]);
        assert_eq!(m.verdict(), Some(false));
        m.samples = Samples::from_values(vec![9.0, 8.0, 12.0]);
        assert_eq!(m.verdict(), Some(true));
    }
}
