//! An email address that passed the plausibility check, shown masked wherever it is debug-printed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validation::{MAX_EMAIL_LEN, Violations, mask_email};

/// A plausible address (one `@`, a dotted domain, no spaces, at most
/// [`MAX_EMAIL_LEN`] bytes); not RFC 5322, which no one sends mail by.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.com`: what logs and spans may show of it.
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = Violations;

    fn try_from(address: String) -> Result<Self, Violations> {
        let plausible = address.len() <= MAX_EMAIL_LEN
            && !address.chars().any(char::is_whitespace)
            && address
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'));
        if plausible {
            Ok(Self(address))
        } else {
            // The refused address is echoed masked: a problem answer is logged.
            Err(Violations::of_value(format!(
                "not an email address: {}",
                mask_email(&address)
            )))
        }
    }
}

impl TryFrom<&str> for Email {
    type Error = Violations;

    fn try_from(address: &str) -> Result<Self, Violations> {
        Self::try_from(address.to_owned())
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

/// Masked, so a request printed with `{:?}` does not put an address in a log.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plausible_address_is_accepted() {
        let email = Email::try_from("jane.doe@example.com").expect("plausible");
        assert_eq!(email.as_str(), "jane.doe@example.com");
        let longest = format!("{}@example.com", "j".repeat(MAX_EMAIL_LEN - "@example.com".len()));
        assert!(Email::try_from(longest).is_ok(), "{MAX_EMAIL_LEN} bytes is allowed");
    }

    #[test]
    fn each_implausible_address_is_refused() {
        let too_long = format!("{}@example.com", "j".repeat(MAX_EMAIL_LEN));
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@localhost",
            "ja ne@example.com",
            "jane@exa\tmple.com",
            "a@b@c.com",
            &too_long,
        ] {
            assert!(Email::try_from(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_refused_address_is_not_echoed_whole() {
        let refused = Email::try_from("jane doe@example.com").expect_err("has a space");
        assert_eq!(refused.to_string(), "not an email address: j***@example.com");
    }

    #[test]
    fn debug_printing_masks_the_address() {
        let email = Email::try_from("jane.doe@example.com").expect("plausible");
        assert_eq!(format!("{email:?}"), "Email(j***@example.com)");
    }

    #[test]
    fn deserializes_only_when_plausible() {
        let email: Email = serde_json::from_str("\"jane.doe@example.com\"").expect("plausible");
        assert_eq!(serde_json::to_string(&email).expect("json"), "\"jane.doe@example.com\"");
        let refused = serde_json::from_str::<Email>("\"jane\"").expect_err("implausible");
        assert!(refused.to_string().contains("not an email address: j***"), "{refused}");
    }
}
