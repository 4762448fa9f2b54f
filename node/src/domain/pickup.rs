//! The recipient's pickup code and the claim secret it is part of: the wallet's
//! [`remesa_wallet::terms::PickupCode`] (12 Crockford base32 characters) and [`remesa_wallet::terms::ClaimSecret`]
//! (a 128-bit salt and the code: the escrow's release preimage). `Debug` redacted, zeroized on drop.

pub use remesa_wallet::terms::{ClaimSecret, PickupCode, PickupCodeError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_wallets_pickup_code() {
        let c = PickupCode::parse("abcd-efgh-jkmn").expect("code");
        assert_eq!(c.display_grouped(), "ABCD-EFGH-JKMN");
        assert_eq!(
            &ClaimSecret::new([0; 16], c.clone()).preimage()[16..28],
            b"ABCDEFGHJKMN"
        );
        assert_eq!(PickupCode::parse("ABC"), Err(PickupCodeError::Invalid));
        assert!(!format!("{c:?}").contains("ABCD"));
    }
}
