//! Identifiers and small enums shared by every part of the marketplace.

use std::fmt;
use std::str::FromStr;

use dpx_crypto::{Domain, Hash, HashWriter, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;

/// Domain of derived object ids (products, demands, orders, proposals).
pub const OBJECT_ID_DOMAIN: Domain = Domain::new("dpx/object-id/v1");

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Hash);

        impl $name {
            /// The object kind this id names, used when deriving it.
            pub const KIND: &'static str = $kind;

            /// The id the chain gives to the object created by `signer`'s transaction with
            /// `nonce`. Clients can compute it before the transaction is executed.
            pub fn derive(chain_id: &str, signer: &PublicKey, nonce: u64) -> Self {
                let mut w = HashWriter::new(OBJECT_ID_DOMAIN, chain_id);
                w.update($kind.as_bytes()).update(signer.as_bytes()).update(&nonce.to_le_bytes());
                Self(w.finish())
            }

            pub(crate) fn from_wire(bytes: &[u8], field: &'static str) -> Result<Self, DecodeError> {
                crate::codec::hash(bytes, field).map(Self)
            }

            pub(crate) fn to_wire(self) -> Vec<u8> {
                self.0.0.to_vec()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.short())
            }
        }

        impl FromStr for $name {
            type Err = dpx_crypto::CryptoError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_type!(
    /// A product listed by a provider.
    ProductId, "product"
);
id_type!(
    /// A posted demand (需求).
    DemandId, "demand"
);
id_type!(
    /// An order (one trade).
    OrderId, "order"
);
id_type!(
    /// A one-use authorization grant, chosen by the data subject when signing it.
    GrantId, "grant"
);
id_type!(
    /// A governance proposal.
    ProposalId, "proposal"
);
id_type!(
    /// A compute job: a computation over products' data whose result alone reaches the
    /// consumer (see the `compute` module).
    JobId, "job"
);

/// A data subject's pseudonymous identifier: `blake3::keyed_hash(registrar secret, real
/// identifier)`, computed off-ledger by the registrar (`dpx hash --keyed`). The ledger never
/// sees the identifier, and without the registrar's secret nobody can test ID numbers against
/// it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubjectId(pub Hash);

impl SubjectId {
    /// The subject id of `identifier` under a registrar's 32-byte secret.
    pub fn keyed(registrar_secret: &[u8; 32], identifier: &[u8]) -> Self {
        Self(Hash(*blake3::keyed_hash(registrar_secret, identifier).as_bytes()))
    }

    pub(crate) fn from_wire(bytes: &[u8], field: &'static str) -> Result<Self, DecodeError> {
        crate::codec::hash(bytes, field).map(Self)
    }

    pub(crate) fn to_wire(self) -> Vec<u8> {
        self.0.0.to_vec()
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({})", self.0.short())
    }
}

impl FromStr for SubjectId {
    type Err = dpx_crypto::CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Declares a small enum stored as a `u32` code and shown as a snake_case name.
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $code:literal => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $var),+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$var),+];

            /// The stored code.
            pub const fn code(self) -> u32 {
                match self { $(Self::$var => $code),+ }
            }

            /// The value of a stored code.
            pub fn from_code(code: u32) -> Option<Self> {
                match code { $($code => Some(Self::$var),)+ _ => None }
            }

            /// The snake_case name (also used in policies and JSON).
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$var => $s),+ }
            }

            #[allow(dead_code)]
            pub(crate) fn from_wire(code: u32, field: &'static str) -> Result<Self, crate::error::DecodeError> {
                Self::from_code(code).ok_or_else(|| crate::error::DecodeError::field(field, format!("unknown code {code}")))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use code_enum;

code_enum!(
    /// What an organisation is admitted as.
    Role {
        Agency = 1 => "agency",
        Operator = 2 => "operator",
        Provider = 3 => "provider",
        Consumer = 4 => "consumer",
        Regulator = 5 => "regulator",
        Auditor = 6 => "auditor",
        RatingBody = 7 => "rating_body",
        /// An identity service that enrols data subjects; admitted only by governance.
        Registrar = 8 => "registrar",
        /// A bank that records deposits and withdrawals made off the ledger; admitted only by
        /// governance.
        SettlementBank = 9 => "settlement_bank",
        /// Runs compute jobs over products' data and attests what ran; admitted only by
        /// governance.
        ComputeNode = 10 => "compute_node",
    }
);

code_enum!(
    /// Status of an enrolled data subject.
    SubjectStatus {
        /// Its current key may sign grants and the subject's own operations.
        Active = 0 => "active",
    }
);

code_enum!(
    /// Whitelist / negative-list status set by a regulator.
    ListStatus {
        Normal = 0 => "normal",
        Whitelisted = 1 => "whitelisted",
        NegativeListed = 2 => "negative_listed",
    }
);

code_enum!(
    /// Product category, as in the supermarket's catalogue.
    Category {
        DataService = 1 => "data_service",
        Software = 2 => "software",
        Report = 3 => "report",
        Other = 4 => "other",
    }
);

code_enum!(
    /// Life cycle of a demand posting.
    DemandStatus {
        Open = 0 => "open",
        Awarded = 1 => "awarded",
        Closed = 2 => "closed",
    }
);

code_enum!(
    /// Life cycle of an order (see the `trades` module).
    OrderStatus {
        Ordered = 0 => "ordered",
        /// The price is held in escrow.
        Accepted = 1 => "accepted",
        Delivered = 2 => "delivered",
        /// Reached by no order since confirmation releases the escrow itself (→ `Settled`);
        /// kept so the code stays reserved.
        Confirmed = 3 => "confirmed",
        Settled = 4 => "settled",
        Cancelled = 5 => "cancelled",
        Disputed = 6 => "disputed",
    }
);

code_enum!(
    /// What a settlement bank recorded.
    BankRecordKind {
        /// Money received off the ledger, credited to the account.
        Deposit = 1 => "deposit",
        /// Money paid out off the ledger, debited from the account.
        Withdrawal = 2 => "withdrawal",
    }
);

code_enum!(
    /// State of a one-use grant. Only `Issued` ever changes, and only once.
    GrantState {
        Issued = 0 => "issued",
        Consumed = 1 => "consumed",
        Revoked = 2 => "revoked",
        Expired = 3 => "expired",
    }
);

code_enum!(
    /// The stages of the data's life cycle (采集、传输、存储、加工、交换、销毁) attested by its
    /// holder. Codes 1–3 predate the full life cycle and keep their meaning (processing,
    /// exchange, destruction); the earlier stages took new codes. The life-cycle order is
    /// [`Stage::rank`], not the code; the rule is in the `lifecycle` module.
    Stage {
        /// 加工: the holder processed the data (code kept from the three-stage life cycle).
        Processed = 1 => "processed",
        /// 交换: the holder exchanged (shared) the data onward.
        SharedOnward = 2 => "shared_onward",
        /// 销毁: the holder destroyed the data; last, and once.
        Destroyed = 3 => "destroyed",
        /// 采集: the holder collected (received) the data.
        Collected = 4 => "collected",
        /// 传输: the data reached the holder's systems.
        Transmitted = 5 => "transmitted",
        /// 存储: the holder stored the data.
        Stored = 6 => "stored",
    }
);

impl Stage {
    /// The life cycle in its order.
    pub const LIFE_CYCLE: [Self; 6] = [
        Self::Collected,
        Self::Transmitted,
        Self::Stored,
        Self::Processed,
        Self::SharedOnward,
        Self::Destroyed,
    ];

    /// Position in [`Stage::LIFE_CYCLE`].
    pub fn rank(self) -> usize {
        match self {
            Self::Collected => 0,
            Self::Transmitted => 1,
            Self::Stored => 2,
            Self::Processed => 3,
            Self::SharedOnward => 4,
            Self::Destroyed => 5,
        }
    }
}

code_enum!(
    /// A regulator's verdict on a life-cycle attestation.
    Verdict {
        Confirmed = 1 => "confirmed",
        Rejected = 2 => "rejected",
    }
);

code_enum!(
    /// Life cycle of a compute job (see the `compute` module).
    JobStatus {
        /// Requested by the consumer; its grants are consumed, its orders used.
        Requested = 0 => "requested",
        /// The compute node attested what ran and that the inputs were destroyed.
        Attested = 1 => "attested",
        /// The consumer confirmed receipt of the attested result.
        Received = 2 => "received",
        /// Cancelled by the consumer before attestation.
        Cancelled = 3 => "cancelled",
        /// Refused by the compute node before running it.
        Rejected = 4 => "rejected",
    }
);

code_enum!(
    /// State of a governance proposal.
    ProposalStatus {
        Open = 0 => "open",
        Executed = 1 => "executed",
    }
);

code_enum!(
    /// Outcome class of a transaction.
    Code {
        /// Executed; its writes are applied.
        Ok = 0 => "ok",
        /// Refused before execution (nonce, expiry, unknown signer): nothing changed, not even
        /// the nonce.
        Invalid = 1 => "invalid",
        /// Refused by a policy decision: only the nonce moved.
        Denied = 2 => "denied",
        /// Refused by a marketplace rule: only the nonce moved.
        Failed = 3 => "failed",
        /// The bytes were not a valid signed transaction: nothing changed.
        Undecodable = 4 => "undecodable",
    }
);

/// Highest certification rating a rating body can give.
pub const MAX_RATING: u8 = 5;
/// Highest data classification grade (1 = open … 4 = most restricted).
pub const MAX_GRADE: u8 = 4;
/// Longest name, title, domain or purpose, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
