//! Exact token amounts: `U256` base units with the token's decimals beside them.
//!
//! No floating point anywhere. Parsing from a decimal string is exact: more fractional digits than the token has is
//! an error unless the extra digits are all zero ("1.5000000" with 6 decimals is exactly 1.5). Conversions to and from
//! [`rust_decimal::Decimal`] state their rounding in their names: exact, round down (payouts), round up
//! (fees).

use std::cmp::Ordering;
use std::fmt;

use alloy::primitives::U256;
use rust_decimal::Decimal;

/// Longest input [`TokenAmount::parse`] looks at (bounds the work on hostile input).
pub const MAX_INPUT_LEN: usize = 100;

/// Why a decimal amount was refused. Each class of bad input is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the amount is empty")]
    Empty,
    #[error("the amount is not a decimal number (use digits and at most one '.', e.g. 12.50)")]
    Invalid,
    #[error("the amount is negative")]
    Negative,
    #[error("the amount has more decimal places than the token's {decimals}")]
    TooPrecise { decimals: u8 },
    #[error("the amount is too large")]
    Overflow,
    #[error("the amount must be greater than zero")]
    Zero,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rounding {
    Exact,
    Down,
    Up,
}

/// An amount of a token in base units (`U256`), with the token's decimals (read from the chain) beside it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenAmount {
    base_units: U256,
    decimals: u8,
}

impl TokenAmount {
    pub const fn from_base_units(base_units: U256, decimals: u8) -> Self {
        Self { base_units, decimals }
    }

    pub const fn zero(decimals: u8) -> Self {
        Self {
            base_units: U256::ZERO,
            decimals,
        }
    }

    pub const fn base_units(&self) -> U256 {
        self.base_units
    }

    pub const fn decimals(&self) -> u8 {
        self.decimals
    }

    pub fn is_zero(&self) -> bool {
        self.base_units.is_zero()
    }

    /// Parses a decimal string in whole tokens ("100.25") exactly. Surrounding whitespace is ignored; a leading
    /// `+` is allowed; exponents, thousands separators and more than one `.` are not.
    pub fn parse(input: &str, decimals: u8) -> Result<Self, MoneyError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (negative, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) {
            return Err(MoneyError::Invalid);
        }
        if negative {
            // "-0" is still zero, but a sign on an amount is a mistake worth reporting.
            return Err(MoneyError::Negative);
        }
        // Past MAX_INPUT_LEN only as far as the token's own longest rendering ("0." and `decimals` digits), so that
        // every amount's `to_fixed_string` parses back.
        if s.len() > MAX_INPUT_LEN.max(usize::from(decimals) + 2) {
            return Err(MoneyError::Overflow);
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > usize::from(decimals) {
            return Err(MoneyError::TooPrecise { decimals });
        }
        let mut units = U256::ZERO;
        let ten = U256::from(10u8);
        let padding = usize::from(decimals) - frac.len();
        for b in int.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(ten)
                .and_then(|u| u.checked_add(U256::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        for _ in 0..padding {
            units = units.checked_mul(ten).ok_or(MoneyError::Overflow)?;
        }
        Ok(Self {
            base_units: units,
            decimals,
        })
    }

    /// Like [`parse`](Self::parse), and refuses zero.
    pub fn parse_positive(input: &str, decimals: u8) -> Result<Self, MoneyError> {
        let a = Self::parse(input, decimals)?;
        if a.is_zero() {
            return Err(MoneyError::Zero);
        }
        Ok(a)
    }

    /// The exact decimal string with all of the token's decimal places ("100.250000").
    pub fn to_fixed_string(&self) -> String {
        let digits = self.base_units.to_string();
        let d = usize::from(self.decimals);
        if d == 0 {
            return digits;
        }
        let padded = if digits.len() <= d {
            format!("{}{digits}", "0".repeat(d + 1 - digits.len()))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - d);
        format!("{int}.{frac}")
    }

    /// Exact conversion to a [`Decimal`] in whole tokens; `Overflow` when it does not fit (Decimal holds 96 bits
    /// and at most 28 decimal places). Never rounds.
    pub fn to_decimal(&self) -> Result<Decimal, MoneyError> {
        let v: u128 = self.base_units.try_into().map_err(|_| MoneyError::Overflow)?;
        let i = i128::try_from(v).map_err(|_| MoneyError::Overflow)?;
        Decimal::try_from_i128_with_scale(i, u32::from(self.decimals)).map_err(|_| MoneyError::Overflow)
    }

    /// From a [`Decimal`] in whole tokens, exactly: `TooPrecise` if it has more (non-zero) decimal places than the
    /// token.
    pub fn from_decimal_exact(d: Decimal, decimals: u8) -> Result<Self, MoneyError> {
        Self::from_decimal(d, decimals, Rounding::Exact)
    }

    /// From a [`Decimal`] in whole tokens, rounding toward zero (down) to the token's base unit. Use this for amounts
    /// paid out; never for amounts charged.
    pub fn from_decimal_round_down(d: Decimal, decimals: u8) -> Result<Self, MoneyError> {
        Self::from_decimal(d, decimals, Rounding::Down)
    }

    /// From a [`Decimal`] in whole tokens, rounding away from zero (up) to the token's base unit. Use this for fees
    /// and amounts charged.
    pub fn from_decimal_round_up(d: Decimal, decimals: u8) -> Result<Self, MoneyError> {
        Self::from_decimal(d, decimals, Rounding::Up)
    }

    fn from_decimal(d: Decimal, decimals: u8, rounding: Rounding) -> Result<Self, MoneyError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::Negative);
        }
        let d = d.normalize();
        let scale = d.scale();
        let (mantissa, scale, remainder) = if scale > u32::from(decimals) {
            if rounding == Rounding::Exact {
                return Err(MoneyError::TooPrecise { decimals });
            }
            let t = d.trunc_with_scale(u32::from(decimals));
            (t.mantissa(), t.scale(), t != d)
        } else {
            (d.mantissa(), scale, false)
        };
        let m: u128 = mantissa.unsigned_abs();
        let exp = u32::from(decimals) - scale;
        let factor = U256::from(10u8)
            .checked_pow(U256::from(exp))
            .ok_or(MoneyError::Overflow)?;
        let mut units = U256::from(m).checked_mul(factor).ok_or(MoneyError::Overflow)?;
        if remainder && rounding == Rounding::Up {
            units = units.checked_add(U256::from(1u8)).ok_or(MoneyError::Overflow)?;
        }
        Ok(Self {
            base_units: units,
            decimals,
        })
    }

    pub fn checked_add(&self, other: &Self) -> Option<Self> {
        (self.decimals == other.decimals).then_some(())?;
        Some(Self {
            base_units: self.base_units.checked_add(other.base_units)?,
            decimals: self.decimals,
        })
    }

    pub fn checked_sub(&self, other: &Self) -> Option<Self> {
        (self.decimals == other.decimals).then_some(())?;
        Some(Self {
            base_units: self.base_units.checked_sub(other.base_units)?,
            decimals: self.decimals,
        })
    }
}

impl PartialOrd for TokenAmount {
    /// Only amounts of equal decimals compare.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (self.decimals == other.decimals).then(|| self.base_units.cmp(&other.base_units))
    }
}

/// Shortest exact form: trailing fractional zeros dropped ("100.25", "3").
impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.to_fixed_string();
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            &s
        };
        f.write_str(s)
    }
}

impl fmt::Debug for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenAmount({} base units, {} decimals)",
            self.base_units, self.decimals
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn amt(units: u64, decimals: u8) -> TokenAmount {
        TokenAmount::from_base_units(U256::from(units), decimals)
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(TokenAmount::parse("100.25", 6), Ok(amt(100_250_000, 6)));
        assert_eq!(TokenAmount::parse(" 7 ", 6), Ok(amt(7_000_000, 6)));
        assert_eq!(TokenAmount::parse(".5", 6), Ok(amt(500_000, 6)));
        assert_eq!(TokenAmount::parse("5.", 6), Ok(amt(5_000_000, 6)));
        assert_eq!(TokenAmount::parse("+1.5000000000", 6), Ok(amt(1_500_000, 6)));
        assert_eq!(TokenAmount::parse("0", 6), Ok(amt(0, 6)));
        assert_eq!(TokenAmount::parse("12", 0), Ok(amt(12, 0)));
    }

    #[test]
    fn each_error_class() {
        assert_eq!(TokenAmount::parse("", 6), Err(MoneyError::Empty));
        assert_eq!(TokenAmount::parse("   ", 6), Err(MoneyError::Empty));
        for garbage in ["abc", "1e3", "1,000", "1.2.3", ".", "-", "0x10", "１"] {
            assert_eq!(
                TokenAmount::parse(garbage, 6),
                Err(MoneyError::Invalid),
                "{garbage}"
            );
        }
        assert_eq!(TokenAmount::parse("-1", 6), Err(MoneyError::Negative));
        assert_eq!(
            TokenAmount::parse("0.0000001", 6),
            Err(MoneyError::TooPrecise { decimals: 6 })
        );
        assert_eq!(TokenAmount::parse(&"9".repeat(80), 0), Err(MoneyError::Overflow));
        assert_eq!(TokenAmount::parse("1", 78), Err(MoneyError::Overflow));
        assert_eq!(TokenAmount::parse_positive("0.000", 6), Err(MoneyError::Zero));
    }

    /// The node's `money` fuzz target checks that a parsed amount's rendering parses back: with 99 or more decimals
    /// the smallest amounts render longer than MAX_INPUT_LEN, and their `to_fixed_string` did not (Overflow).
    #[test]
    fn longest_renderings_parse_back() {
        let one = amt(1, 99);
        assert_eq!(one.to_fixed_string().len(), 101);
        assert_eq!(TokenAmount::parse(&one.to_fixed_string(), 99), Ok(one));
        let a = amt(u64::MAX, 255);
        assert_eq!(TokenAmount::parse(&a.to_fixed_string(), 255), Ok(a));
        assert_eq!(
            TokenAmount::parse(&format!("0.{}", "0".repeat(256)), 255),
            Err(MoneyError::Overflow)
        );
        assert_eq!(TokenAmount::parse(&"0".repeat(101), 6), Err(MoneyError::Overflow));
    }

    #[test]
    fn formats() {
        assert_eq!(amt(100_250_000, 6).to_string(), "100.25");
        assert_eq!(amt(100_250_000, 6).to_fixed_string(), "100.250000");
        assert_eq!(amt(5, 6).to_fixed_string(), "0.000005");
        assert_eq!(amt(3_000_000, 6).to_string(), "3");
        assert_eq!(amt(0, 6).to_string(), "0");
        assert_eq!(amt(42, 0).to_string(), "42");
    }

    #[test]
    fn decimal_conversions_state_their_rounding() {
        let d: Decimal = "1.2345678".parse().expect("decimal");
        assert_eq!(
            TokenAmount::from_decimal_exact(d, 6),
            Err(MoneyError::TooPrecise { decimals: 6 })
        );
        assert_eq!(TokenAmount::from_decimal_round_down(d, 6), Ok(amt(1_234_567, 6)));
        assert_eq!(TokenAmount::from_decimal_round_up(d, 6), Ok(amt(1_234_568, 6)));
        assert_eq!(
            TokenAmount::from_decimal_exact(Decimal::NEGATIVE_ONE, 6),
            Err(MoneyError::Negative)
        );
        assert_eq!(
            amt(1_234_567, 6).to_decimal().map(|d| d.to_string()),
            Ok("1.234567".into())
        );
        let huge = TokenAmount::from_base_units(U256::MAX, 6);
        assert_eq!(huge.to_decimal(), Err(MoneyError::Overflow));
    }

    #[test]
    fn arithmetic_and_ordering_need_equal_decimals() {
        assert_eq!(amt(1, 6).checked_add(&amt(2, 6)), Some(amt(3, 6)));
        assert_eq!(amt(1, 6).checked_add(&amt(2, 18)), None);
        assert_eq!(amt(1, 6).checked_sub(&amt(2, 6)), None);
        assert!(amt(1, 6) < amt(2, 6));
        assert_eq!(amt(1, 6).partial_cmp(&amt(1, 18)), None);
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(hi in any::<u128>(), lo in any::<u128>(), decimals in any::<u8>()) {
            let units = (U256::from(hi) << 128) | U256::from(lo);
            let a = TokenAmount::from_base_units(units, decimals);
            prop_assert_eq!(TokenAmount::parse(&a.to_string(), decimals), Ok(a));
            prop_assert_eq!(TokenAmount::parse(&a.to_fixed_string(), decimals), Ok(a));
        }

        #[test]
        fn decimal_round_trip(units in any::<u64>(), decimals in 0u8..=18) {
            let a = TokenAmount::from_base_units(U256::from(units), decimals);
            let d = a.to_decimal().expect("fits");
            prop_assert_eq!(TokenAmount::from_decimal_exact(d, decimals), Ok(a));
            prop_assert_eq!(TokenAmount::from_decimal_round_down(d, decimals), Ok(a));
            prop_assert_eq!(TokenAmount::from_decimal_round_up(d, decimals), Ok(a));
        }

        #[test]
        fn round_down_never_exceeds(units in any::<u64>(), extra in 1u64..10, decimals in 0u8..=12) {
            // one more decimal place than the token has, non-zero
            let d = Decimal::from_i128_with_scale(
                i128::from(units) * 10 + i128::from(extra),
                u32::from(decimals) + 1,
            );
            let a = TokenAmount::from_decimal_round_down(d, decimals).expect("fits");
            prop_assert_eq!(a.base_units(), U256::from(units));
            let up = TokenAmount::from_decimal_round_up(d, decimals).expect("fits");
            prop_assert_eq!(up.base_units(), U256::from(units) + U256::from(1u8));
            prop_assert_eq!(
                TokenAmount::from_decimal_exact(d, decimals),
                Err(MoneyError::TooPrecise { decimals })
            );
        }

        #[test]
        fn parse_never_panics(s in ".{0,120}", decimals in any::<u8>()) {
            let _ = TokenAmount::parse(&s, decimals);
        }

        #[test]
        fn garbage_is_invalid(s in "[0-9]{0,5}[a-zA-Z_,;#][0-9a-z]{0,5}") {
            prop_assume!(!s.trim().is_empty());
            prop_assert_eq!(TokenAmount::parse(&s, 6), Err(MoneyError::Invalid));
        }

        #[test]
        fn negatives_are_negative(units in 0u64.., frac in "[0-9]{0,6}") {
            let s = format!("-{units}.{frac}");
            prop_assert_eq!(TokenAmount::parse(&s, 6), Err(MoneyError::Negative));
        }

        #[test]
        fn excess_precision_is_too_precise(units in 0u64.., frac in "[0-9]{6}[1-9]") {
            let s = format!("{units}.{frac}");
            prop_assert_eq!(TokenAmount::parse(&s, 6), Err(MoneyError::TooPrecise { decimals: 6 }));
        }

        #[test]
        fn blank_is_empty(s in "[ \t\n\r]{0,10}", decimals in any::<u8>()) {
            prop_assert_eq!(TokenAmount::parse(&s, decimals), Err(MoneyError::Empty));
        }

        #[test]
        fn zeros_are_zero_for_parse_positive(int in "0{1,5}", frac in "0{0,5}") {
            let s = format!("{int}.{frac}");
            prop_assert_eq!(TokenAmount::parse_positive(&s, 6), Err(MoneyError::Zero));
            prop_assert_eq!(TokenAmount::parse(&s, 6), Ok(TokenAmount::zero(6)));
        }

        #[test]
        fn beyond_u256_overflows(extra in "[1-9][0-9]{78,90}") {
            prop_assert_eq!(TokenAmount::parse(&extra, 0), Err(MoneyError::Overflow));
        }
    }
}
