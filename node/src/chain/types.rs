//! Jobs the engine enqueues and events the indexer delivers.

use std::fmt;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;
use serde::{Deserialize, Serialize};

use super::abi::IRemittanceEscrow;

/// The terms of one remittance, exactly as the escrow hashes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub sender: Address,
    pub amount_base_units: U256,
    pub partner_id: u64,
    pub expiry_unix_s: u64,
    /// Where a release pays: bound by the sender's signature, never looked up at release time.
    pub settlement: Address,
    /// Whose EIP-712 `Decline(id)` allows a refund before expiry.
    pub partner_signer: Address,
    pub claim_hash: B256,
}

impl Terms {
    /// `keccak256(abi.encode(escrow, sender, amount, partnerId, expiry, settlement, partnerSigner, claimHash))`:
    /// the remittance id.
    pub fn remittance_id(&self, escrow: Address) -> B256 {
        keccak256(
            (
                escrow,
                self.sender,
                self.amount_base_units,
                self.partner_id,
                self.expiry_unix_s,
                self.settlement,
                self.partner_signer,
                self.claim_hash,
            )
                .abi_encode_params(),
        )
    }

    pub(crate) fn to_sol(&self) -> IRemittanceEscrow::Terms {
        IRemittanceEscrow::Terms {
            sender: self.sender,
            amount: self.amount_base_units,
            partnerId: self.partner_id,
            expiry: self.expiry_unix_s,
            settlement: self.settlement,
            partnerSigner: self.partner_signer,
            claimHash: self.claim_hash,
        }
    }
}

/// An EIP-3009 `ReceiveWithAuthorization` signature (from = sender, to = escrow, nonce = remittance id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub valid_after_unix_s: U256,
    pub valid_before_unix_s: U256,
    pub v: u8,
    pub r: B256,
    pub s: B256,
}

impl Authorization {
    pub(crate) fn to_sol(&self) -> IRemittanceEscrow::Authorization {
        IRemittanceEscrow::Authorization {
            validAfter: self.valid_after_unix_s,
            validBefore: self.valid_before_unix_s,
            v: self.v,
            r: self.r,
            s: self.s,
        }
    }
}

/// Lock a remittance: a packed `depositBatch` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositJob {
    pub remittance_id: B256,
    pub terms: Terms,
    pub authorization: Authorization,
}

/// Release a remittance to its partner: a packed `releaseBatch` leaf (with the proof of where its deposit put it,
/// read when the transaction is built). The preimage is the pickup code: never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseJob {
    pub remittance_id: B256,
    pub terms: Terms,
    pub preimage: B256,
}

impl fmt::Debug for ReleaseJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseJob")
            .field("remittance_id", &self.remittance_id)
            .field("terms", &self.terms)
            .field("preimage", &"<redacted>")
            .finish()
    }
}

/// Refund an expired remittance to its sender: a `refundBatch` item (with its proof, read when the transaction is
/// built).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundJob {
    pub remittance_id: B256,
    pub terms: Terms,
}

/// Refund a remittance before its expiry with its partner signer's EIP-712 `Decline(id)` signature: the escrow's
/// `cancel`, one transaction per job (it carries a signature, so it cannot join a `refundBatch`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelJob {
    pub remittance_id: B256,
    pub terms: Terms,
    /// 65 bytes `r‖s‖v` (or an ERC-1271 signer's signature).
    pub decline_signature: alloy::primitives::Bytes,
}

/// A gasless P2P payment between two Remesa wallets: the token's EIP-3009 `transferWithAuthorization`, signed by
/// the sender (`from`) for the recipient (`to`), whose `nonce` is the remittance id. It never touches the escrow and
/// cannot be batched: one job, one transaction, sent to the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferJob {
    pub remittance_id: B256,
    pub from: Address,
    pub to: Address,
    pub value_base_units: U256,
    pub authorization: Authorization,
}

/// What a job asks the chain to do; one transaction carries jobs of one kind (escrow batches), or exactly one
/// token transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Deposit,
    Release,
    Refund,
    Transfer,
    Cancel,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Deposit,
        JobKind::Release,
        JobKind::Refund,
        JobKind::Transfer,
        JobKind::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Deposit => "deposit",
            JobKind::Release => "release",
            JobKind::Refund => "refund",
            JobKind::Transfer => "transfer",
            JobKind::Cancel => "cancel",
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "deposit" => Some(JobKind::Deposit),
            "release" => Some(JobKind::Release),
            "refund" => Some(JobKind::Refund),
            "transfer" => Some(JobKind::Transfer),
            "cancel" => Some(JobKind::Cancel),
            _ => None,
        }
    }

    /// Whether jobs of this kind go to the token (one per transaction) rather than to the escrow (batched).
    pub fn is_token_call(self) -> bool {
        self == JobKind::Transfer
    }

    /// Whether each job of this kind is a transaction of its own (a token transfer, an escrow `cancel`).
    pub fn is_single(self) -> bool {
        matches!(self, JobKind::Transfer | JobKind::Cancel)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's payload as stored in `chain_jobs.payload` (JSON).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobPayload {
    Deposit(DepositJob),
    Release(ReleaseJob),
    Refund(RefundJob),
    Transfer(TransferJob),
    Cancel(CancelJob),
}

impl fmt::Debug for JobPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobPayload::Deposit(j) => j.fmt(f),
            JobPayload::Release(j) => j.fmt(f),
            JobPayload::Refund(j) => j.fmt(f),
            JobPayload::Transfer(j) => j.fmt(f),
            JobPayload::Cancel(j) => j.fmt(f),
        }
    }
}

impl JobPayload {
    pub fn kind(&self) -> JobKind {
        match self {
            JobPayload::Deposit(_) => JobKind::Deposit,
            JobPayload::Release(_) => JobKind::Release,
            JobPayload::Refund(_) => JobKind::Refund,
            JobPayload::Transfer(_) => JobKind::Transfer,
            JobPayload::Cancel(_) => JobKind::Cancel,
        }
    }

    pub fn remittance_id(&self) -> B256 {
        match self {
            JobPayload::Deposit(j) => j.remittance_id,
            JobPayload::Release(j) => j.remittance_id,
            JobPayload::Refund(j) => j.remittance_id,
            JobPayload::Transfer(j) => j.remittance_id,
            JobPayload::Cancel(j) => j.remittance_id,
        }
    }

    /// The escrow terms of an escrow job (`None` for a P2P transfer, which has no escrow terms).
    pub fn terms(&self) -> Option<&Terms> {
        match self {
            JobPayload::Deposit(j) => Some(&j.terms),
            JobPayload::Release(j) => Some(&j.terms),
            JobPayload::Refund(j) => Some(&j.terms),
            JobPayload::Cancel(j) => Some(&j.terms),
            JobPayload::Transfer(_) => None,
        }
    }
}

/// A job the outbox gave up on after `job_attempts_max` attempts (gas estimates failed or transactions reverted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedJob {
    pub job_id: String,
    pub kind: JobKind,
    pub remittance_id: B256,
    pub attempts: u32,
    pub error: String,
}

/// Why the escrow skipped a batch item (mirrors `IRemittanceEscrow.SkipReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    WrongState,
    AuthorizationFailed,
    BadPreimage,
    NotExpired,
    InvalidTerms,
    /// A release at or after expiry (the sender may refund).
    Expired,
    /// The token refused the payout (a blacklisted or paused party): the remittance stays locked.
    TransferFailed,
    /// The proof did not place the remittance in a deposited batch (a reorg moved its deposit, or a stale
    /// proof): tried again with a fresh one.
    BadProof,
    /// A reason this build does not know (a newer contract).
    Unknown(u8),
}

impl SkipReason {
    pub fn from_u8(v: u8) -> SkipReason {
        match v {
            0 => SkipReason::WrongState,
            1 => SkipReason::AuthorizationFailed,
            2 => SkipReason::BadPreimage,
            3 => SkipReason::NotExpired,
            4 => SkipReason::InvalidTerms,
            5 => SkipReason::Expired,
            6 => SkipReason::TransferFailed,
            7 => SkipReason::BadProof,
            other => SkipReason::Unknown(other),
        }
    }
}

/// What a skipped batch item means for the job that sent it, from the escrow's reason and the token's revert data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipClass {
    /// Try again later: the token is paused, or the item ran out of its gas cap (no revert data). The
    /// authorization stays valid; the job goes back to the queue as a failed attempt.
    Transient,
    /// The token's issuer blacklisted a party (the sender, or the payee of a release or refund): only the issuer or
    /// an operator can resolve it. The job fails at once; the money stays where it was.
    Blocked,
    /// Refused for good: a bad or used authorization, a bad preimage, invalid terms, too early or too late.
    Refused,
    /// Nothing to do: the escrow already holds the state the job wanted.
    AlreadyDone,
}

/// The reason a token gave in its revert data: the string of `Error(string)` (read by its stated length, so a
/// stray byte after it does not matter), else the data as UTF-8 when it is text. `None` when there is none.
pub fn revert_reason(detail: &[u8]) -> Option<String> {
    const ERROR_STRING: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    if detail.len() >= 68 && detail[..4] == ERROR_STRING {
        let len = U256::from_be_slice(&detail[36..68]);
        let len = usize::try_from(len).ok()?.min(detail.len() - 68).min(1024);
        return Some(String::from_utf8_lossy(&detail[68..68 + len]).into_owned());
    }
    let text = std::str::from_utf8(detail).ok()?;
    (!text.is_empty() && text.chars().all(|c| !c.is_control())).then(|| text.chars().take(1024).collect())
}

/// See [`SkipClass`]. USDC says "Pausable: paused" and "Blacklistable: account is blacklisted".
pub fn classify_skip(reason: SkipReason, detail: &[u8]) -> SkipClass {
    match reason {
        SkipReason::WrongState => SkipClass::AlreadyDone,
        SkipReason::BadProof => SkipClass::Transient,
        SkipReason::AuthorizationFailed | SkipReason::TransferFailed => {
            if detail.is_empty() {
                return SkipClass::Transient;
            }
            let text = revert_reason(detail).unwrap_or_default().to_ascii_lowercase();
            if text.contains("paused") {
                SkipClass::Transient
            } else if text.contains("blacklist") {
                SkipClass::Blocked
            } else if reason == SkipReason::TransferFailed {
                // The escrow holds the coins; a payout the token refuses for another reason needs an operator.
                SkipClass::Blocked
            } else {
                SkipClass::Refused
            }
        }
        _ => SkipClass::Refused,
    }
}

impl Skipped {
    pub fn class(&self) -> SkipClass {
        classify_skip(self.reason, &self.detail)
    }

    /// `AuthorizationFailed: Pausable: paused`, for errors and logs.
    pub fn describe(&self) -> String {
        describe_skip(self.reason, &self.detail)
    }
}

/// A skipped item's reason with the token's revert reason, when it gave one.
pub fn describe_skip(reason: SkipReason, detail: &[u8]) -> String {
    match revert_reason(detail) {
        Some(r) => format!("{reason:?}: {r}"),
        None if detail.is_empty() => format!("{reason:?}"),
        None => format!("{reason:?}: 0x{}", hex::encode(&detail[..detail.len().min(64)])),
    }
}

/// Where an event sits on the chain. `id` is unique per chain view: `<block hash>:<log index>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub id: String,
    pub block_number: u64,
    pub block_hash: B256,
    pub tx_hash: B256,
    pub log_index: u64,
}

/// One remittance of an escrow `Deposited(root, leaves, senderAmounts)` event (one event per deposit batch; the
/// indexer delivers one of these per deposited leaf, `meta.id` suffixed with the leaf index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposited {
    pub meta: EventMeta,
    pub remittance_id: B256,
    pub sender: Address,
    pub amount_base_units: U256,
    /// The deposit batch's Merkle root and the remittance's leaf in it.
    pub batch_root: B256,
    pub leaf_index: u64,
}

/// One remittance of an escrow `Released(root, partnerId, bits)` event: a leaf of deposit batch `batch_root` paid
/// to partner `partner_id`; its amount is the deposited one (the escrow pays exactly that).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    pub meta: EventMeta,
    pub remittance_id: B256,
    pub partner_id: u64,
    pub amount_base_units: U256,
    pub batch_root: B256,
    pub leaf_index: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub meta: EventMeta,
    pub partner_id: u64,
    pub settlement: Address,
    pub amount_base_units: U256,
    pub count: U256,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunded {
    pub meta: EventMeta,
    pub remittance_id: B256,
    pub sender: Address,
    pub amount_base_units: U256,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub meta: EventMeta,
    pub remittance_id: B256,
    pub reason: SkipReason,
    /// The token's revert data when the token refused (authorization or payout), else empty.
    pub detail: alloy::primitives::Bytes,
    /// Which batch skipped it, when the transaction is one of this node's outbox transactions.
    pub batch: Option<JobKind>,
}

/// A token `Transfer` whose recipient is a custodial address. Transfers out of the escrow (refunds to a custodial
/// sender) are reported too, with `from_escrow = true`: the engine already books those from `Refunded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodialTransfer {
    pub meta: EventMeta,
    pub token: Address,
    pub from: Address,
    pub to: Address,
    pub amount_base_units: U256,
    pub from_escrow: bool,
}

/// Any event the indexer applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainEvent {
    Deposited(Deposited),
    Released(Released),
    Settled(Settled),
    Refunded(Refunded),
    Skipped(Skipped),
    CustodialTransfer(CustodialTransfer),
}

impl ChainEvent {
    pub fn meta(&self) -> &EventMeta {
        match self {
            ChainEvent::Deposited(e) => &e.meta,
            ChainEvent::Released(e) => &e.meta,
            ChainEvent::Settled(e) => &e.meta,
            ChainEvent::Refunded(e) => &e.meta,
            ChainEvent::Skipped(e) => &e.meta,
            ChainEvent::CustodialTransfer(e) => &e.meta,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ChainEvent::Deposited(_) => "deposited",
            ChainEvent::Released(_) => "released",
            ChainEvent::Settled(_) => "settled",
            ChainEvent::Refunded(_) => "refunded",
            ChainEvent::Skipped(_) => "skipped",
            ChainEvent::CustodialTransfer(_) => "custodial_transfer",
        }
    }

    pub fn remittance_id(&self) -> Option<B256> {
        match self {
            ChainEvent::Deposited(e) => Some(e.remittance_id),
            ChainEvent::Released(e) => Some(e.remittance_id),
            ChainEvent::Refunded(e) => Some(e.remittance_id),
            ChainEvent::Skipped(e) => Some(e.remittance_id),
            ChainEvent::Settled(_) | ChainEvent::CustodialTransfer(_) => None,
        }
    }
}

/// One event a reorg removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedEvent {
    pub id: String,
    pub kind: String,
    pub block_number: u64,
    pub remittance_id: Option<B256>,
}

/// What a reorg removed: every applied block in `from_block..=to_block` is gone (the cursor moved back to
/// `from_block - 1`), together with these events. Their replacements (if any) are delivered again afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub from_block: u64,
    pub to_block: u64,
    pub events: Vec<RemovedEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            sender: Address::repeat_byte(0x11),
            amount_base_units: U256::from(100_000_000u64),
            partner_id: 7,
            expiry_unix_s: 1_900_000_000,
            settlement: Address::repeat_byte(0x5e),
            partner_signer: Address::repeat_byte(0x51),
            claim_hash: keccak256([0u8; 32]),
        }
    }

    #[test]
    fn remittance_id_is_abi_encode_of_escrow_and_terms() {
        let escrow = Address::repeat_byte(0xee);
        let t = terms();
        // abi.encode of eight static words: each value left-padded to 32 bytes.
        let mut buf = Vec::new();
        buf.extend_from_slice(B256::left_padding_from(escrow.as_slice()).as_slice());
        buf.extend_from_slice(B256::left_padding_from(t.sender.as_slice()).as_slice());
        buf.extend_from_slice(&t.amount_base_units.to_be_bytes::<32>());
        buf.extend_from_slice(U256::from(t.partner_id).to_be_bytes::<32>().as_slice());
        buf.extend_from_slice(U256::from(t.expiry_unix_s).to_be_bytes::<32>().as_slice());
        buf.extend_from_slice(B256::left_padding_from(t.settlement.as_slice()).as_slice());
        buf.extend_from_slice(B256::left_padding_from(t.partner_signer.as_slice()).as_slice());
        buf.extend_from_slice(t.claim_hash.as_slice());
        assert_eq!(t.remittance_id(escrow), keccak256(&buf));
    }

    fn error_string(text: &str, stray: &[u8]) -> Vec<u8> {
        let mut out = vec![0x08, 0xc3, 0x79, 0xa0];
        out.extend_from_slice(&U256::from(32u8).to_be_bytes::<32>());
        out.extend_from_slice(&U256::from(text.len()).to_be_bytes::<32>());
        let mut body = text.as_bytes().to_vec();
        body.resize(text.len().div_ceil(32) * 32, 0);
        out.extend_from_slice(&body);
        out.extend_from_slice(stray);
        out
    }

    #[test]
    fn skipped_items_are_classified_by_the_tokens_reason() {
        let paused = error_string("Pausable: paused", &[0x01]);
        let blacklisted = error_string("Blacklistable: account is blacklisted", &[]);
        let bad_sig = error_string("FiatTokenV2: invalid signature", &[]);
        assert_eq!(revert_reason(&paused).as_deref(), Some("Pausable: paused"));
        use SkipReason::*;
        for (reason, detail, class) in [
            (AuthorizationFailed, &paused[..], SkipClass::Transient),
            (TransferFailed, &paused[..], SkipClass::Transient),
            (AuthorizationFailed, &[][..], SkipClass::Transient),
            (AuthorizationFailed, &blacklisted[..], SkipClass::Blocked),
            (TransferFailed, &blacklisted[..], SkipClass::Blocked),
            (TransferFailed, &bad_sig[..], SkipClass::Blocked),
            (AuthorizationFailed, &bad_sig[..], SkipClass::Refused),
            (WrongState, &[][..], SkipClass::AlreadyDone),
            (BadPreimage, &[][..], SkipClass::Refused),
            (Expired, &[][..], SkipClass::Refused),
            (Unknown(9), &paused[..], SkipClass::Refused),
        ] {
            assert_eq!(
                classify_skip(reason, detail),
                class,
                "{reason:?} {:?}",
                revert_reason(detail)
            );
        }
        assert_eq!(
            describe_skip(AuthorizationFailed, &blacklisted),
            "AuthorizationFailed: Blacklistable: account is blacklisted"
        );
        assert_eq!(describe_skip(Expired, &[]), "Expired");
        // A length word far beyond the data is bounded by the data.
        let mut lying = error_string("short", &[]);
        lying[36..68].copy_from_slice(&U256::MAX.to_be_bytes::<32>());
        assert!(revert_reason(&lying).is_none());
        let mut long = error_string("short", &[]);
        long[36..68].copy_from_slice(&U256::from(10_000u32).to_be_bytes::<32>());
        assert_eq!(revert_reason(&long).map(|s| s.len()), Some(32));
    }

    #[test]
    fn release_job_debug_hides_preimage() {
        let preimage = B256::repeat_byte(0x42);
        let job = ReleaseJob {
            remittance_id: B256::ZERO,
            terms: terms(),
            preimage,
        };
        let printed = format!("{job:?} {:?}", JobPayload::Release(job.clone()));
        assert!(!printed.contains("4242"), "{printed}");
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn payload_json_round_trips() {
        let p = JobPayload::Refund(RefundJob {
            remittance_id: B256::repeat_byte(1),
            terms: terms(),
        });
        let json = serde_json::to_string(&p).expect("serialize");
        let back: JobPayload = serde_json::from_str(&json).expect("parse");
        assert_eq!(p, back);
        assert_eq!(back.kind(), JobKind::Refund);
    }

    #[test]
    fn skip_reason_codes() {
        assert_eq!(SkipReason::from_u8(2), SkipReason::BadPreimage);
        assert_eq!(SkipReason::from_u8(9), SkipReason::Unknown(9));
    }
}
