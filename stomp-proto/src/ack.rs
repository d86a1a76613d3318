//! Acknowledgement modes.

use std::fmt;

use crate::version::Version;

/// How a subscription's messages are acknowledged (the SUBSCRIBE `ack` header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// The server considers a message acknowledged once it is sent (`auto`).
    #[default]
    Auto,
    /// The client ACKs; an ACK is cumulative: it acknowledges that message and
    /// every earlier one delivered to the same subscription (`client`).
    Client,
    /// The client ACKs each message on its own (`client-individual`, 1.1+).
    ClientIndividual,
}

impl AckMode {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }

    /// Parses an `ack` header value valid in `version`.
    pub fn parse(value: &str, version: Version) -> Option<AckMode> {
        match value {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" if version >= Version::V1_1 => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }

    /// Whether messages need an ACK or NACK from the client.
    pub const fn needs_ack(self) -> bool {
        !matches!(self, AckMode::Auto)
    }
}

impl fmt::Display for AckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_individual_is_1_1_and_later() {
        assert_eq!(AckMode::parse("client-individual", Version::V1_0), None);
        assert_eq!(
            AckMode::parse("client-individual", Version::V1_1),
            Some(AckMode::ClientIndividual)
        );
        for mode in [AckMode::Auto, AckMode::Client, AckMode::ClientIndividual] {
            assert_eq!(AckMode::parse(mode.as_str(), Version::V1_2), Some(mode));
        }
        assert_eq!(AckMode::parse("Auto", Version::V1_2), None);
    }
}
