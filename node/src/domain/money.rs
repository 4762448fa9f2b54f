use std::fmt;

use alloy::primitives::U256;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be a positive decimal number")]
    NotPositive,
    #[error("amount has more than {decimals} decimal places")]
    TooPrecise { decimals: u8 },
    #[error("amount is too large")]
    TooLarge,
    #[error("unknown or unsupported currency {0:?}")]
    Currency(String),
}

/// An amount of the stablecoin in base units (`U256`), with the token's decimals beside it: the wallet's
/// [`remesa_wallet::TokenAmount`] with the node's positive-only constructors and error type.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenAmount(remesa_wallet::TokenAmount);

impl From<remesa_wallet::MoneyError> for MoneyError {
    fn from(e: remesa_wallet::MoneyError) -> Self {
        use remesa_wallet::MoneyError as W;
        match e {
            W::Empty | W::Invalid | W::Negative | W::Zero => MoneyError::NotPositive,
            W::TooPrecise { decimals } => MoneyError::TooPrecise { decimals },
            W::Overflow => MoneyError::TooLarge,
        }
    }
}

impl TokenAmount {
    /// Parses a decimal string in whole tokens ("100.25") exactly: more decimal places than the token has is an error.
    pub fn parse_decimal(s: &str, decimals: u8) -> Result<Self, MoneyError> {
        Ok(Self(remesa_wallet::TokenAmount::parse_positive(s, decimals)?))
    }

    /// From a decimal in whole tokens; exact, never rounded.
    pub fn from_decimal(d: Decimal, decimals: u8) -> Result<Self, MoneyError> {
        if d <= Decimal::ZERO {
            return Err(MoneyError::NotPositive);
        }
        Ok(Self(remesa_wallet::TokenAmount::from_decimal_exact(d, decimals)?))
    }

    pub fn from_base_units(base_units: U256, decimals: u8) -> Self {
        Self(remesa_wallet::TokenAmount::from_base_units(base_units, decimals))
    }

    pub fn base_units(&self) -> U256 {
        self.0.base_units()
    }

    pub fn decimals(&self) -> u8 {
        self.0.decimals()
    }

    /// As a decimal in whole tokens (exact for anything below 2^96 base units).
    pub fn to_decimal(&self) -> Option<Decimal> {
        self.0.to_decimal().ok()
    }

    /// The wallet's amount type.
    pub fn as_wallet(&self) -> remesa_wallet::TokenAmount {
        self.0
    }
}

impl PartialOrd for TokenAmount {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TokenAmount {
    /// By base units, then decimals.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.base_units(), self.decimals()).cmp(&(other.base_units(), other.decimals()))
    }
}

/// All of the token's decimal places ("100.250000").
impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_fixed_string())
    }
}
impl fmt::Debug for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenAmount({} base units, {} decimals)",
            self.base_units(),
            self.decimals()
        )
    }
}

/// ISO 4217 minor-unit exponent for the payout currencies Remesa knows (default 2).
pub fn currency_exponent(code: &str) -> u32 {
    match code {
        "JPY" | "KRW" | "CLP" | "PYG" | "VND" | "XOF" | "XAF" | "UGX" | "RWF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
        _ => 2,
    }
}

/// A three-letter upper-case ISO 4217 code.
pub fn parse_currency(s: &str) -> Result<String, MoneyError> {
    let t = s.trim().to_ascii_uppercase();
    if t.len() == 3 && t.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(t)
    } else {
        Err(MoneyError::Currency(s.chars().take(16).collect()))
    }
}

/// How the recipient is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutMethod {
    /// Cash at a partner's agent, with a pickup code.
    CashPickup,
    /// Credit to a bank account.
    BankDeposit,
    /// Credit to a mobile-money wallet.
    MobileWallet,
    /// Straight into the recipient's Remesa wallet (instant P2P, no partner).
    RemesaWallet,
}

impl PayoutMethod {
    pub const ALL: [PayoutMethod; 4] = [
        Self::CashPickup,
        Self::BankDeposit,
        Self::MobileWallet,
        Self::RemesaWallet,
    ];
    /// Stable snake_case name (the API's and the database's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CashPickup => "cash_pickup",
            Self::BankDeposit => "bank_deposit",
            Self::MobileWallet => "mobile_wallet",
            Self::RemesaWallet => "remesa_wallet",
        }
    }
    /// Inverse of [`PayoutMethod::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        let a = TokenAmount::parse_decimal("100.25", 6).expect("amount");
        assert_eq!(a.base_units(), U256::from(100_250_000u64));
        assert_eq!(a.to_string(), "100.250000");
        assert_eq!(
            TokenAmount::parse_decimal("0.0000001", 6),
            Err(MoneyError::TooPrecise { decimals: 6 })
        );
        assert_eq!(TokenAmount::parse_decimal("-1", 6), Err(MoneyError::NotPositive));
        assert_eq!(TokenAmount::parse_decimal("0", 6), Err(MoneyError::NotPositive));
        assert!(TokenAmount::parse_decimal("1e3", 6).is_err());
    }

    #[test]
    fn currencies() {
        assert_eq!(parse_currency("gtq"), Ok("GTQ".into()));
        assert!(parse_currency("GT").is_err());
        assert_eq!(currency_exponent("JPY"), 0);
        assert_eq!(currency_exponent("GTQ"), 2);
    }

    proptest! {
        #[test]
        fn base_units_round_trip(units in 1u64..u64::MAX, decimals in 0u8..=18) {
            let a = TokenAmount::from_base_units(U256::from(units), decimals);
            let d = a.to_decimal().expect("fits");
            prop_assert_eq!(TokenAmount::from_decimal(d, decimals), Ok(a));
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}", decimals in 0u8..=30) {
            let _ = TokenAmount::parse_decimal(&s, decimals);
        }
    }
}
