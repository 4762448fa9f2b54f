//! Compliance configuration: sending limits per KYC tier and corridor (`[[limits]]` tables in the TOML file, or
//! `REMESA_LIMITS='[{tier = 0, country = "*", per_tx_usd = "500", per_day_usd = "1000", per_30d_usd = "3000"}]'`).
//! Amounts are in US dollars (the stablecoin sent), as decimal strings; a window left out is not limited.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The highest KYC tier (0: a phone number only; 1: identity fields; 2: an operator-approved document).
pub const KYC_TIER_MAX: u8 = 2;
/// Most limit rules.
pub const LIMIT_RULES_MAX: usize = 1_000;

/// One limit rule as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// KYC tier the rule applies to (0 to [`KYC_TIER_MAX`]).
    pub tier: u8,
    /// Destination country (ISO 3166-1 alpha-2, the corridor), or `*` for every corridor without its own rule.
    #[serde(default = "any_country")]
    pub country: String,
    /// Most per remittance (send amount), USD.
    #[serde(default)]
    pub per_tx_usd: Option<String>,
    /// Most sent in the last 24 hours, USD.
    #[serde(default)]
    pub per_day_usd: Option<String>,
    /// Most sent in the last 30 days, USD.
    #[serde(default)]
    pub per_30d_usd: Option<String>,
}

fn any_country() -> String {
    "*".to_owned()
}

/// A checked limit rule: amounts parsed, country upper case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub tier: u8,
    /// `None`: any corridor.
    pub country: Option<String>,
    pub per_tx_usd: Option<Decimal>,
    pub per_day_usd: Option<Decimal>,
    pub per_30d_usd: Option<Decimal>,
}

/// Checks the configured rules; the message names the rule and what is wrong.
pub fn parse_limits(rules: &[LimitRule]) -> Result<Vec<Limits>, String> {
    if rules.len() > LIMIT_RULES_MAX {
        return Err(format!("at most {LIMIT_RULES_MAX} limit rules"));
    }
    let mut out: Vec<Limits> = Vec::with_capacity(rules.len());
    for (n, r) in rules.iter().enumerate() {
        let at = format!("limits[{n}] (tier {}, country {:?})", r.tier, r.country);
        if r.tier > KYC_TIER_MAX {
            return Err(format!(
                "{at}: unknown tier {} (tiers are 0 to {KYC_TIER_MAX})",
                r.tier
            ));
        }
        let country = match r.country.trim() {
            "*" => None,
            c if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => Some(c.to_ascii_uppercase()),
            c => {
                return Err(format!(
                    "{at}: unknown corridor {c:?} (an ISO 3166-1 alpha-2 country code, or *)"
                ));
            }
        };
        let amount = |what: &str, v: &Option<String>| -> Result<Option<Decimal>, String> {
            v.as_deref()
                .map(|s| match Decimal::from_str(s.trim()) {
                    Ok(d) if d > Decimal::ZERO && d.scale() <= 6 => Ok(d),
                    _ => Err(format!(
                        "{at}: {what} must be a positive amount in USD with at most 6 decimals, not {s:?}"
                    )),
                })
                .transpose()
        };
        let l = Limits {
            tier: r.tier,
            country,
            per_tx_usd: amount("per_tx_usd", &r.per_tx_usd)?,
            per_day_usd: amount("per_day_usd", &r.per_day_usd)?,
            per_30d_usd: amount("per_30d_usd", &r.per_30d_usd)?,
        };
        if let (Some(d), Some(m)) = (l.per_day_usd, l.per_30d_usd)
            && d > m
        {
            return Err(format!("{at}: per_day_usd is more than per_30d_usd"));
        }
        if out.iter().any(|o| o.tier == l.tier && o.country == l.country) {
            return Err(format!("{at}: a second rule for the same tier and corridor"));
        }
        out.push(l);
    }
    Ok(out)
}

/// Sanctions screening (`[sanctions]` in the TOML file, or `REMESA_SANCTIONS__<FIELD>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SanctionsConfig {
    /// A directory holding OFAC's `SDN.CSV`, `ALT.CSV` and `ADD.CSV`, loaded at start (as `remesa sanctions load
    /// --format ofac-csv DIR`). A file that does not parse is refused whole and the stored list stays in force.
    pub ofac_dir: Option<std::path::PathBuf>,
    /// The UN consolidated list (XML), loaded at start (as `remesa sanctions load --format un-xml FILE`).
    pub un_xml: Option<std::path::PathBuf>,
    /// Score from which a name is a hit, in percent (50 to 100; default 91).
    pub threshold_percent: u8,
    /// Refuse sends while no list is loaded, and sends whose sender has no known name (production: `true`). When
    /// `false`, a node without a list screens nothing and says so in `/readyz` and its start-up log.
    pub required: bool,
}

/// KYC tiers (`[kyc]` in the TOML file, or `REMESA_KYC__TIER1_FIELDS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KycConfig {
    /// The fields tier 1 needs (`full_name`, `birth_date`, `address`, `id_type`, `id_number`, `document_ref`);
    /// tier 2 needs them and a `document_ref`, and an operator's approval.
    pub tier1_fields: Vec<String>,
    /// Corridors (ISO 3166-1 alpha-2) where the recipient, too, must be a verified customer (tier 1 or more)
    /// before a payout to them is created; default none.
    pub recipient_countries: Vec<String>,
}

impl Default for KycConfig {
    fn default() -> Self {
        Self {
            tier1_fields: ["full_name", "birth_date", "address", "id_type", "id_number"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            recipient_countries: Vec::new(),
        }
    }
}

impl KycConfig {
    /// The recipient-KYC corridors, upper case; an entry that is not a country code names itself.
    pub fn recipient_countries(&self) -> Result<Vec<String>, String> {
        self.recipient_countries
            .iter()
            .map(|c| {
                let c = c.trim();
                if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                    Ok(c.to_ascii_uppercase())
                } else {
                    Err(format!(
                        "kyc.recipient_countries: unknown corridor {c:?} (ISO 3166-1 alpha-2)"
                    ))
                }
            })
            .collect()
    }

    /// The tier-1 fields, parsed; an unknown field names itself.
    pub fn tier1(&self) -> Result<Vec<crate::domain::KycField>, String> {
        let mut out = Vec::new();
        for f in &self.tier1_fields {
            let field = crate::domain::KycField::parse(f).ok_or_else(|| {
                format!(
                    "kyc.tier1_fields: unknown field {f:?} (full_name, birth_date, address, id_type, id_number, \
                     document_ref)"
                )
            })?;
            if !out.contains(&field) {
                out.push(field);
            }
        }
        if !out.contains(&crate::domain::KycField::FullName) {
            return Err("kyc.tier1_fields must include full_name (it is screened)".into());
        }
        Ok(out)
    }
}

/// The travel rule (`[travel_rule]` in the TOML file, or `REMESA_TRAVEL_RULE__<FIELD>`): from which send amount the
/// originator's and beneficiary's data travel with the payout (FATF Recommendation 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TravelRuleConfig {
    /// USD, decimal string (default 1000: FATF R.16's de minimis).
    pub threshold_usd: String,
    /// Corridors where every transfer carries the data (default: the EU's 27, as the EU Transfer of Funds
    /// Regulation 2023/1113 requires).
    pub zero_threshold_countries: Vec<String>,
    /// The originating institution's name in the payload (the operator's legal name).
    pub vasp_name: String,
}

/// The EU's member states (ISO 3166-1 alpha-2).
pub const EU_COUNTRIES: [&str; 27] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
    "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

impl Default for TravelRuleConfig {
    fn default() -> Self {
        Self {
            threshold_usd: "1000".into(),
            zero_threshold_countries: EU_COUNTRIES.iter().map(|c| (*c).to_owned()).collect(),
            vasp_name: "Remesa".into(),
        }
    }
}

/// The travel rule as the engine applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TravelRule {
    pub threshold_usd: Decimal,
    pub zero_threshold_countries: Vec<String>,
    pub vasp_name: String,
}

impl TravelRule {
    /// Whether a send of `send_usd` to `country` carries the data.
    pub fn applies(&self, country: &str, send_usd: Decimal) -> bool {
        self.zero_threshold_countries.iter().any(|c| c == country) || send_usd >= self.threshold_usd
    }

    /// The threshold for `country`, USD.
    pub fn threshold_for(&self, country: &str) -> Decimal {
        if self.zero_threshold_countries.iter().any(|c| c == country) {
            Decimal::ZERO
        } else {
            self.threshold_usd
        }
    }
}

impl TravelRuleConfig {
    /// Checks and parses; the message names the key.
    pub fn parse(&self) -> Result<TravelRule, String> {
        let threshold_usd = match Decimal::from_str(self.threshold_usd.trim()) {
            Ok(d) if d >= Decimal::ZERO && d.scale() <= 6 => d,
            _ => {
                return Err(format!(
                    "travel_rule.threshold_usd must be an amount in USD (0 or more), not {:?}",
                    self.threshold_usd
                ));
            }
        };
        let mut zero = Vec::new();
        for c in &self.zero_threshold_countries {
            let c = c.trim();
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!(
                    "travel_rule.zero_threshold_countries: unknown corridor {c:?} (ISO 3166-1 alpha-2)"
                ));
            }
            zero.push(c.to_ascii_uppercase());
        }
        let vasp_name = self.vasp_name.trim();
        if vasp_name.is_empty() || vasp_name.chars().count() > 100 {
            return Err("travel_rule.vasp_name must be 1 to 100 characters".into());
        }
        Ok(TravelRule {
            threshold_usd,
            zero_threshold_countries: zero,
            vasp_name: vasp_name.to_owned(),
        })
    }
}

/// The default match threshold, percent.
pub const SANCTIONS_THRESHOLD_PERCENT_DEFAULT: u8 = 91;

impl Default for SanctionsConfig {
    fn default() -> Self {
        Self {
            ofac_dir: None,
            un_xml: None,
            threshold_percent: SANCTIONS_THRESHOLD_PERCENT_DEFAULT,
            required: false,
        }
    }
}

impl SanctionsConfig {
    /// Checks the threshold; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(50..=100).contains(&self.threshold_percent) {
            return Err(format!(
                "sanctions.threshold_percent must be 50 to 100, not {}",
                self.threshold_percent
            ));
        }
        Ok(())
    }
}

/// The rule for a sender of `tier` sending to `country`: the corridor's own rule, else the tier's `*` rule.
pub fn rule_for<'a>(limits: &'a [Limits], tier: u8, country: &str) -> Option<&'a Limits> {
    limits
        .iter()
        .find(|l| l.tier == tier && l.country.as_deref() == Some(country))
        .or_else(|| limits.iter().find(|l| l.tier == tier && l.country.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(tier: u8, country: &str, tx: Option<&str>, day: Option<&str>, m: Option<&str>) -> LimitRule {
        LimitRule {
            tier,
            country: country.into(),
            per_tx_usd: tx.map(Into::into),
            per_day_usd: day.map(Into::into),
            per_30d_usd: m.map(Into::into),
        }
    }

    #[test]
    fn rules_are_checked_and_matched_most_specific_first() {
        let l = parse_limits(&[
            rule(0, "*", Some("500"), Some("1000"), Some("3000")),
            rule(0, "mx", Some("300"), None, None),
        ])
        .expect("valid");
        assert_eq!(
            rule_for(&l, 0, "MX").and_then(|r| r.per_tx_usd),
            Some(Decimal::from(300))
        );
        assert_eq!(
            rule_for(&l, 0, "GT").and_then(|r| r.per_tx_usd),
            Some(Decimal::from(500))
        );
        assert!(rule_for(&l, 1, "GT").is_none(), "no rule: not limited");
        for (bad, why) in [
            (vec![rule(3, "*", Some("1"), None, None)], "unknown tier 3"),
            (
                vec![rule(0, "Guatemala", Some("1"), None, None)],
                "unknown corridor",
            ),
            (vec![rule(0, "*", Some("-5"), None, None)], "positive amount"),
            (
                vec![rule(0, "*", Some("1.0000001"), None, None)],
                "at most 6 decimals",
            ),
            (
                vec![rule(0, "*", None, Some("10"), Some("5"))],
                "more than per_30d_usd",
            ),
            (
                vec![rule(0, "gt", None, None, None), rule(0, "GT", None, None, None)],
                "same tier and corridor",
            ),
        ] {
            let e = parse_limits(&bad).expect_err(why);
            assert!(e.contains(why), "{e}");
        }
    }
}
