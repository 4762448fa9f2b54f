//! The recipient's pickup code: the wallet's [`remesa_wallet::terms::PickupCode`] (12 Crockford base32 characters
//! whose zero-padded ASCII is the escrow's release preimage; `Debug` redacted, zeroized on drop).

pub use remesa_wallet::terms::{PickupCode, PickupCodeError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_wallets_pickup_code() {
        let c = PickupCode::parse("abcd-efgh-jkmn").expect("code");
        assert_eq!(c.display_grouped(), "ABCD-EFGH-JKMN");
        assert_eq!(&c.preimage()[..12], b"ABCDEFGHJKMN");
        assert_eq!(PickupCode::parse("ABC"), Err(PickupCodeError::Invalid));
        assert!(!format!("{c:?}").contains("ABCD"));
    }
}
