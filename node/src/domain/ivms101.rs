//! The travel-rule payload in the interVASP Messaging Standard (IVMS101) JSON form: the originator and the
//! beneficiary as natural persons (legal name, geographic address, national identification, date of birth) with
//! their account numbers. Only the parts Remesa fills are modelled; field names are IVMS101's.

use serde::{Deserialize, Serialize};

use super::kyc::IdType;

/// The payload passed to the payout partner with a payout at or above the travel-rule threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TravelRule {
    pub originator: Originator,
    pub beneficiary: Beneficiary,
    /// The originating institution's name (the operator's node).
    #[serde(rename = "originatingVASP")]
    pub originating_vasp: Vasp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Originator {
    pub originator_persons: Vec<Person>,
    pub account_number: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Beneficiary {
    pub beneficiary_persons: Vec<Person>,
    pub account_number: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub natural_person: NaturalPerson,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NaturalPerson {
    pub name: PersonName,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geographic_address: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_identification: Option<NationalIdentification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_and_place_of_birth: Option<DateAndPlaceOfBirth>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonName {
    pub name_identifier: Vec<NameIdentifier>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameIdentifier {
    /// The surname(s).
    pub primary_identifier: String,
    /// The given names.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secondary_identifier: String,
    /// `LEGL`: the legal name.
    pub name_identifier_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// `HOME`.
    pub address_type: String,
    pub address_line: Vec<String>,
    /// ISO 3166-1 alpha-2, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NationalIdentification {
    pub national_identifier: String,
    /// `CCPT` (passport), `IDCD` (identity card), `DRLC` (driver's license).
    pub national_identifier_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateAndPlaceOfBirth {
    /// YYYY-MM-DD.
    pub date_of_birth: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vasp {
    pub name: String,
}

/// A legal name split the IVMS101 way: the last word is the surname (primary identifier), the rest the given names.
/// Spanish double surnames cannot be told from a middle name by position alone, so a name is kept whole when it
/// has no space.
pub fn legal_name(full_name: &str) -> PersonName {
    let words: Vec<&str> = full_name.split_whitespace().collect();
    let (given, surname) = match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => (rest.join(" "), (*last).to_owned()),
        _ => (String::new(), full_name.trim().to_owned()),
    };
    PersonName {
        name_identifier: vec![NameIdentifier {
            primary_identifier: surname,
            secondary_identifier: given,
            name_identifier_type: "LEGL".to_owned(),
        }],
    }
}

/// IVMS101's code for an identity document type.
pub fn national_identifier_type(t: IdType) -> &'static str {
    match t {
        IdType::Passport => "CCPT",
        IdType::NationalId => "IDCD",
        IdType::DriversLicense => "DRLC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_and_serialize_with_ivms101_field_names() {
        let n = legal_name("Ana María Gómez");
        assert_eq!(n.name_identifier[0].primary_identifier, "Gómez");
        assert_eq!(n.name_identifier[0].secondary_identifier, "Ana María");
        let one = legal_name("Cher");
        assert_eq!(
            (
                one.name_identifier[0].primary_identifier.as_str(),
                one.name_identifier[0].secondary_identifier.as_str()
            ),
            ("Cher", "")
        );
        let v = serde_json::to_value(Person {
            natural_person: NaturalPerson {
                name: n,
                geographic_address: vec![],
                national_identification: Some(NationalIdentification {
                    national_identifier: "X1".into(),
                    national_identifier_type: national_identifier_type(IdType::Passport).into(),
                }),
                date_and_place_of_birth: None,
            },
        })
        .expect("json");
        assert_eq!(
            v["naturalPerson"]["name"]["nameIdentifier"][0]["nameIdentifierType"],
            "LEGL"
        );
        assert_eq!(
            v["naturalPerson"]["nationalIdentification"]["nationalIdentifierType"],
            "CCPT"
        );
        assert!(v["naturalPerson"].get("geographicAddress").is_none());
    }
}
