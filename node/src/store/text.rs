//! The stored text forms of chain values: addresses, hashes and byte strings as lower-case 0x-hex, wei as decimal
//! text. A stored text that does not parse is [`StoreError::Corrupt`].

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes};

use super::StoreError;

/// Lower-case 0x-hex, the stored form of addresses.
pub fn addr_text(a: Address) -> String {
    format!("{a:#x}")
}

/// Lower-case 0x-hex, the stored form of hashes.
pub fn b256_text(h: B256) -> String {
    format!("{h:#x}")
}

/// Lower-case 0x-hex, the stored form of calldata and signed transactions.
pub fn bytes_text(b: &Bytes) -> String {
    b.to_string()
}

pub fn parse_addr(s: &str) -> Result<Address, StoreError> {
    Address::from_str(s).map_err(|e| StoreError::Corrupt(format!("address {s:?}: {e}")))
}

pub fn parse_b256(s: &str) -> Result<B256, StoreError> {
    B256::from_str(s).map_err(|e| StoreError::Corrupt(format!("hash {s:?}: {e}")))
}

pub fn parse_bytes(s: &str) -> Result<Bytes, StoreError> {
    s.parse::<Bytes>()
        .map_err(|e| StoreError::Corrupt(format!("hex bytes: {e}")))
}

/// A fee in wei, stored as decimal text.
pub fn parse_wei(s: &str) -> Result<u128, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("fee {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() -> Result<(), StoreError> {
        let a = Address::repeat_byte(0xab);
        assert_eq!(parse_addr(&addr_text(a))?, a);
        assert_eq!(addr_text(a), format!("0x{}", "ab".repeat(20)));
        let h = B256::repeat_byte(0x0c);
        assert_eq!(parse_b256(&b256_text(h))?, h);
        let b = Bytes::from(vec![1u8, 2, 0xff]);
        assert_eq!(bytes_text(&b), "0x0102ff");
        assert_eq!(parse_bytes(&bytes_text(&b))?, b);
        assert_eq!(parse_wei("1000000007")?, 1_000_000_007);
        for bad in [parse_addr("0x12").err(), parse_b256("nope").err()] {
            assert!(matches!(bad, Some(StoreError::Corrupt(_))));
        }
        assert!(matches!(parse_bytes("0xz"), Err(StoreError::Corrupt(_))));
        assert!(matches!(parse_wei("-1"), Err(StoreError::Corrupt(_))));
        Ok(())
    }
}
