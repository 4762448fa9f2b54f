//! Domain newtypes: built only by parsing, so a value of the type is valid by construction.

pub mod account;
mod ids;
pub mod ivms101;
pub mod kyc;
mod money;
mod phone;
mod pickup;
pub mod sanctions;

pub use ids::{IdError, IdempotencyKey, PartnerId, RemittanceId};
pub use kyc::{IdType, KycError, KycField, KycStatus};
pub use money::{MoneyError, PayoutMethod, TokenAmount, currency_exponent, parse_currency};
pub use phone::{PhoneError, PhoneNumber, Region};
pub use pickup::{ClaimSecret, PickupCode, PickupCodeError};
