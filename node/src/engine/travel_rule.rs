//! The travel rule (FATF Recommendation 16): a payout at or above the threshold of its corridor
//! (`EngineConfig::travel_rule`: 1,000 USD by default, 0 for the EU's corridors) carries the originator's and the
//! beneficiary's data as IVMS101 (`domain::ivms101`), stored on the remittance when it is created and passed to the
//! payout partner with the payout (partner API and webhooks). The originator's data are the sender's KYC tier-1
//! fields; a sender without them is refused ([`EngineError::TravelRuleDataRequired`]) before anything is stored.

use rust_decimal::Decimal;

use super::{Engine, EngineError, Result};
use crate::domain::ivms101::{
    self, Beneficiary, DateAndPlaceOfBirth, NationalIdentification, NaturalPerson, Originator, Person,
    TravelRule, Vasp,
};
use crate::domain::{IdType, KycField, Region};
use crate::store::{customers, users};

/// What the payload is built from, besides the sender's KYC fields.
#[derive(Debug)]
pub(super) struct TravelRuleParties<'a> {
    pub sender_address: &'a str,
    pub country: &'a str,
    pub send_usd: Decimal,
    pub recipient_name: &'a str,
    /// The recipient's bank or mobile-money account, else their phone (a cash pickup's).
    pub recipient_account: &'a str,
}

impl Engine {
    /// The IVMS101 payload (JSON) of a send, `None` below its corridor's threshold. Refused when the send needs it
    /// and the sender has not given the KYC tier-1 fields.
    pub(super) async fn travel_rule_payload(
        &self,
        conn: &mut sqlx::AnyConnection,
        p: &TravelRuleParties<'_>,
    ) -> Result<Option<String>> {
        let rule = &self.config().travel_rule;
        if !rule.applies(p.country, p.send_usd) {
            return Ok(None);
        }
        let refused = || EngineError::TravelRuleDataRequired {
            threshold_usd: rule.threshold_for(p.country),
        };
        let user = users::by_address(&mut *conn, p.sender_address)
            .await?
            .ok_or_else(refused)?;
        let tier = customers::tier(&mut *conn, &user.id).await?.unwrap_or(0);
        let row = customers::get(&mut *conn, &user.id).await?;
        let fields = match row {
            Some(r) if tier >= 1 => r.fields()?,
            _ => return Err(refused()),
        };
        let full_name = fields.get(&KycField::FullName).ok_or_else(refused)?;
        let national_identification = match (fields.get(&KycField::IdType), fields.get(&KycField::IdNumber)) {
            (Some(t), Some(n)) => t.parse::<IdType>().ok().map(|t| NationalIdentification {
                national_identifier: n.clone(),
                national_identifier_type: ivms101::national_identifier_type(t).to_owned(),
            }),
            _ => None,
        };
        let country = user
            .phone
            .as_deref()
            .and_then(Region::of_e164)
            .map(|r| r.alpha2().to_owned());
        let originator = Person {
            natural_person: NaturalPerson {
                name: ivms101::legal_name(full_name),
                geographic_address: fields
                    .get(&KycField::Address)
                    .map(|a| ivms101::Address {
                        address_type: "HOME".into(),
                        address_line: vec![a.clone()],
                        country,
                    })
                    .into_iter()
                    .collect(),
                national_identification,
                date_and_place_of_birth: fields.get(&KycField::BirthDate).map(|d| DateAndPlaceOfBirth {
                    date_of_birth: d.clone(),
                }),
            },
        };
        let payload = TravelRule {
            originator: Originator {
                originator_persons: vec![originator],
                account_number: vec![p.sender_address.to_owned()],
            },
            beneficiary: Beneficiary {
                beneficiary_persons: vec![Person {
                    natural_person: NaturalPerson {
                        name: ivms101::legal_name(p.recipient_name),
                        geographic_address: Vec::new(),
                        national_identification: None,
                        date_and_place_of_birth: None,
                    },
                }],
                account_number: vec![p.recipient_account.to_owned()],
            },
            originating_vasp: Vasp {
                name: rule.vasp_name.clone(),
            },
        };
        let json = serde_json::to_string(&payload).map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Some(json))
    }
}
