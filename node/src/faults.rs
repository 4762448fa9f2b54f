//! Injected faults, for crash and fault tests only: `REMESA_FAULTS="<point>=<action>,…"` makes the node crash or
//! stall at a named point of its code, so a test can reproduce "the process died right here" exactly instead of
//! hoping a SIGKILL lands in a window of a few milliseconds. Empty (the default) means no fault: every point is a
//! lookup in an empty map.
//!
//! Actions: `abort` (the process dies at once, like a SIGKILL: no destructor, no response, no shutdown code),
//! `hang` (the request never goes on; the timeout layer or a kill ends it), `sleep:<ms>`.
//!
//! Points: `partner.<accept|complete|fail>.before_work` (the partner's `Idempotency-Key` is recorded, the work is
//! not done) and `partner.<accept|complete|fail>.after_work` (the work is committed, the response not yet stored).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What happens at a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    Abort,
    Hang,
    Sleep { ms: u64 },
}

/// The configured faults (cheap to clone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults(Arc<HashMap<String, FaultAction>>);

/// Most points in one specification.
const POINTS_MAX: usize = 32;

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Parses `point=action,…` (whitespace around items ignored; an empty string is no fault).
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut map = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (point, action) = item
                .split_once('=')
                .ok_or_else(|| format!("fault `{item}`: expected <point>=<action>"))?;
            let point = point.trim();
            if point.is_empty() || point.len() > 128 || !point.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("fault `{item}`: bad point name"));
            }
            let action = match action.trim() {
                "abort" => FaultAction::Abort,
                "hang" => FaultAction::Hang,
                a => match a.strip_prefix("sleep:").map(str::parse::<u64>) {
                    Some(Ok(ms)) => FaultAction::Sleep { ms },
                    _ => {
                        return Err(format!("fault `{item}`: the action is abort, hang or sleep:<ms>"));
                    }
                },
            };
            map.insert(point.to_owned(), action);
            if map.len() > POINTS_MAX {
                return Err(format!("at most {POINTS_MAX} fault points"));
            }
        }
        Ok(Faults(Arc::new(map)))
    }

    /// Runs the fault configured for `point`, if any.
    pub async fn hit(&self, point: &str) {
        let Some(action) = self.0.get(point) else {
            return;
        };
        tracing::warn!(target: "faults", point, ?action, "injected fault");
        match *action {
            FaultAction::Abort => std::process::abort(),
            FaultAction::Hang => std::future::pending::<()>().await,
            FaultAction::Sleep { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let f = Faults::parse(" partner.accept.after_work=abort , x=sleep:5,y=hang").unwrap();
        assert_eq!(f.0.get("partner.accept.after_work"), Some(&FaultAction::Abort));
        assert_eq!(f.0.get("x"), Some(&FaultAction::Sleep { ms: 5 }));
        assert_eq!(f.0.get("y"), Some(&FaultAction::Hang));
        assert!(Faults::parse("").unwrap().is_empty());
        for bad in ["x", "x=explode", "=abort", "x=sleep:-1", "x=sleep:"] {
            assert!(Faults::parse(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..40).map(|i| format!("p{i}=abort")).collect();
        assert!(Faults::parse(&many.join(",")).is_err());
    }

    #[tokio::test]
    async fn sleep_and_unknown_points_return() {
        let f = Faults::parse("slow=sleep:1").unwrap();
        f.hit("slow").await;
        f.hit("not-configured").await;
    }
}
