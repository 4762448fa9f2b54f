//! Quote arithmetic, exact and with stated rounding: the fee rounds up to the token's base unit, the payout rounds
//! down to the payout currency's minor unit, and the all-in cost compares what the recipient gets with the total
//! the sender pays converted at the mid-market rate.

use rust_decimal::{Decimal, RoundingStrategy};

/// A partner's posted terms for one corridor and payout method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedRate {
    /// Payout currency per one token (USD).
    pub rate: Decimal,
    /// Fixed fee in tokens.
    pub fee_fixed: Decimal,
    /// Variable fee in basis points of the send amount.
    pub fee_bps: u32,
    /// Smallest and largest send amount in tokens (inclusive).
    pub send_min: Decimal,
    pub send_max: Decimal,
}

/// The priced quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub send_amount: Decimal,
    /// fixed + bps, rounded up to the token's base unit.
    pub fee: Decimal,
    /// send + fee: what the sender pays and the escrow locks.
    pub total: Decimal,
    /// send × rate, rounded down to the payout currency's minor unit.
    pub payout_amount: Decimal,
    /// Mid-market rate used for the all-in cost (the posted rate when no reference is known).
    pub mid_market_rate: Decimal,
    /// total − payout / mid, in tokens, rounded up to the base unit: what the sender loses to fees and FX margin.
    pub all_in_cost: Decimal,
    /// all_in_cost / total × 100, rounded half-up to two places.
    pub all_in_cost_percent: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("amount {amount} is outside this corridor's limits ({min} to {max})")]
    OutOfLimits {
        amount: Decimal,
        min: Decimal,
        max: Decimal,
    },
    #[error("amount has more decimal places than the token ({0})")]
    TooPrecise(u32),
    #[error("amount too large")]
    Overflow,
    #[error("the posted rate is not positive")]
    BadRate,
}

/// Prices `send_amount` (tokens with at most `token_decimals` places) against `posted`.
pub fn price(
    send_amount: Decimal,
    token_decimals: u32,
    payout_exponent: u32,
    posted: &PostedRate,
    mid_market_rate: Option<Decimal>,
) -> Result<Priced, PricingError> {
    if posted.rate <= Decimal::ZERO {
        return Err(PricingError::BadRate);
    }
    if send_amount.normalize().scale() > token_decimals {
        return Err(PricingError::TooPrecise(token_decimals));
    }
    if send_amount < posted.send_min || send_amount > posted.send_max || send_amount <= Decimal::ZERO {
        return Err(PricingError::OutOfLimits {
            amount: send_amount,
            min: posted.send_min,
            max: posted.send_max,
        });
    }
    let variable = send_amount
        .checked_mul(Decimal::from(posted.fee_bps))
        .and_then(|v| v.checked_div(Decimal::from(10_000u32)))
        .ok_or(PricingError::Overflow)?;
    let fee = posted
        .fee_fixed
        .checked_add(variable)
        .ok_or(PricingError::Overflow)?
        .round_dp_with_strategy(token_decimals, RoundingStrategy::AwayFromZero);
    let total = send_amount.checked_add(fee).ok_or(PricingError::Overflow)?;
    let payout_amount = send_amount
        .checked_mul(posted.rate)
        .ok_or(PricingError::Overflow)?
        .round_dp_with_strategy(payout_exponent, RoundingStrategy::ToZero);
    let mid = match mid_market_rate {
        Some(m) if m > Decimal::ZERO => m,
        _ => posted.rate,
    };
    let payout_in_tokens = payout_amount.checked_div(mid).ok_or(PricingError::Overflow)?;
    let all_in_cost = (total - payout_in_tokens)
        .max(Decimal::ZERO)
        .round_dp_with_strategy(token_decimals, RoundingStrategy::AwayFromZero);
    let all_in_cost_percent = all_in_cost
        .checked_mul(Decimal::from(100u32))
        .and_then(|v| v.checked_div(total))
        .ok_or(PricingError::Overflow)?
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    Ok(Priced {
        send_amount,
        fee,
        total,
        payout_amount,
        mid_market_rate: mid,
        all_in_cost,
        all_in_cost_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn posted() -> PostedRate {
        PostedRate {
            rate: d("7.6543"),
            fee_fixed: d("1.50"),
            fee_bps: 75,
            send_min: d("1"),
            send_max: d("2500"),
        }
    }

    #[test]
    fn worked_example() {
        let p = price(d("100"), 6, 2, &posted(), Some(d("7.70"))).expect("priced");
        assert_eq!(p.fee, d("2.25")); // 1.50 + 0.75
        assert_eq!(p.total, d("102.25"));
        assert_eq!(p.payout_amount, d("765.43")); // 765.43 exactly
        // 102.25 − 765.43 / 7.70 = 102.25 − 99.406493… = 2.843507 (rounded up to the base unit)
        assert_eq!(p.all_in_cost, d("2.843507"));
        assert_eq!(p.all_in_cost_percent, d("2.78"));
    }

    #[test]
    fn fee_rounds_up_and_payout_rounds_down() {
        let mut r = posted();
        r.fee_fixed = Decimal::ZERO;
        r.fee_bps = 1; // 0.01 % of 0.333333 = 0.0000333333 → 0.000034
        r.rate = d("3.333");
        r.send_min = d("0.000001");
        let p = price(d("0.333333"), 6, 2, &r, None).expect("priced");
        assert_eq!(p.fee, d("0.000034"));
        assert_eq!(p.payout_amount, d("1.11")); // 1.110998889 → 1.11
    }

    #[test]
    fn limits_and_precision() {
        assert!(matches!(
            price(d("0.5"), 6, 2, &posted(), None),
            Err(PricingError::OutOfLimits { .. })
        ));
        assert!(matches!(
            price(d("2500.01"), 6, 2, &posted(), None),
            Err(PricingError::OutOfLimits { .. })
        ));
        assert_eq!(
            price(d("10.0000001"), 6, 2, &posted(), None),
            Err(PricingError::TooPrecise(6))
        );
    }

    proptest! {
        #[test]
        fn invariants(cents in 100u64..250_000u64, bps in 0u32..500, fixed_cents in 0u64..1000, rate_milli in 1u64..100_000_000) {
            let r = PostedRate {
                rate: Decimal::new(i64::try_from(rate_milli).unwrap_or(1), 3),
                fee_fixed: Decimal::new(i64::try_from(fixed_cents).unwrap_or(0), 2),
                fee_bps: bps,
                send_min: d("1"),
                send_max: d("2500"),
            };
            let send = Decimal::new(i64::try_from(cents).unwrap_or(100), 2);
            let p = price(send, 6, 2, &r, None).expect("priced");
            // fee never below the exact fee, never more than one base unit above
            let exact = r.fee_fixed + send * Decimal::from(bps) / Decimal::from(10_000);
            prop_assert!(p.fee >= exact && p.fee - exact < d("0.000001"));
            // payout never above the exact conversion, less than one minor unit below
            let exact_payout = send * r.rate;
            prop_assert!(p.payout_amount <= exact_payout && exact_payout - p.payout_amount < d("0.01"));
            prop_assert_eq!(p.total, send + p.fee);
            prop_assert!(p.all_in_cost >= Decimal::ZERO);
        }
    }
}
