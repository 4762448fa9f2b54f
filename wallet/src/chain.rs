//! A connection to the chain: HTTP(S) or WebSocket, chain id checked, every RPC call bounded by a timeout.
//! Token metadata and balances, the token's EIP-712 domain, escrow status.

use std::future::IntoFuture;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::sol_types::SolInterface;
use alloy::transports::{RpcError, TransportErrorKind};

use crate::contracts::{EscrowStatus, RemittanceEscrow, TestStablecoin};
use crate::eip3009::TokenDomain;
use crate::money::TokenAmount;

/// Default bound on one RPC call.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the RPC URL {0:?} is not valid (use http://, https://, ws:// or wss://)")]
    InvalidUrl(String),
    #[error("cannot reach the RPC endpoint {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("chain id mismatch at {url}: expected {expected}, the node reports {actual}")]
    ChainIdMismatch { url: String, expected: u64, actual: u64 },
    #[error("{what} timed out after {after_s} s (RPC {url})")]
    Timeout { what: String, url: String, after_s: u64 },
    #[error("{what} failed: the RPC node answered: {message}")]
    Rpc { what: String, message: String },
    #[error("{what} was refused by the contract: {reason}")]
    Refused { what: String, reason: String },
    #[error("the token {token} cannot be used for EIP-3009 signatures: {reason}")]
    TokenDomain { token: Address, reason: String },
    #[error("the relayer account {relayer} cannot pay for gas: fund it with the chain's native coin")]
    RelayerUnfunded { relayer: Address },
    #[error("there is no contract at {address} on this chain (is the deployment file for this chain?)")]
    NoContract { address: Address },
    #[error("transaction {tx_hash} failed on chain (reverted, {gas_used} gas used)")]
    TxFailed { tx_hash: B256, gas_used: u64 },
    #[error(
        "transaction {tx_hash} (nonce {nonce}) did not reach {confirmations} confirmation(s) within {after_s} s; \
         it may still be mined"
    )]
    ConfirmationTimeout {
        tx_hash: B256,
        nonce: u64,
        confirmations: u64,
        after_s: u64,
    },
}

impl ChainError {
    /// True when the person asking can fix it by changing their input (bad URL, request refused by a contract);
    /// false for chain and network failures.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            ChainError::InvalidUrl(_)
                | ChainError::Refused { .. }
                | ChainError::NoContract { .. }
                | ChainError::RelayerUnfunded { .. }
                | ChainError::TokenDomain { .. }
        )
    }
}

/// Shows an RPC URL without credentials: user info and query dropped, long path segments (API keys) elided.
/// Blocks per `eth_getLogs` request when the wallet scans the escrow's deposits (public RPCs cap ranges).
pub const LOGS_BLOCK_RANGE: u64 = 10_000;

pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let path: Vec<&str> = path
        .split('/')
        .map(|seg| if seg.len() > 16 { "…" } else { seg })
        .collect();
    let sep = if scheme.is_empty() { "" } else { "://" };
    format!("{scheme}{sep}{host}{}", path.join("/"))
}

/// Decodes a revert reason from the escrow's or the token's custom errors (or a plain `Error(string)`).
pub fn decode_revert(data: &[u8]) -> String {
    if let Ok(e) = RemittanceEscrow::RemittanceEscrowErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = TestStablecoin::TestStablecoinErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(s) = <alloy::sol_types::Revert as alloy::sol_types::SolError>::abi_decode(data) {
        return s.reason;
    }
    if data.is_empty() {
        "reverted without a reason".into()
    } else {
        format!("reverted with data 0x{}", hex::encode(data))
    }
}

/// Maps an RPC error: transport failures are "unreachable", reverts are "refused", the rest are RPC errors.
pub fn classify(url: &str, what: &str, e: &RpcError<TransportErrorKind>) -> ChainError {
    match e {
        RpcError::Transport(kind) => ChainError::Unreachable {
            url: redact_url(url),
            reason: kind.to_string(),
        },
        RpcError::ErrorResp(payload) => {
            if let Some(data) = payload.as_revert_data() {
                ChainError::Refused {
                    what: what.to_owned(),
                    reason: decode_revert(&data),
                }
            } else if payload.message.contains("revert") {
                ChainError::Refused {
                    what: what.to_owned(),
                    reason: payload.message.to_string(),
                }
            } else {
                ChainError::Rpc {
                    what: what.to_owned(),
                    message: payload.message.to_string(),
                }
            }
        }
        other => ChainError::Rpc {
            what: what.to_owned(),
            message: other.to_string(),
        },
    }
}

/// Token metadata read from the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub address: Address,
    pub name: String,
    pub symbol: String,
    pub decimals: u8,
}

impl TokenInfo {
    pub fn amount(&self, base_units: U256) -> TokenAmount {
        TokenAmount::from_base_units(base_units, self.decimals)
    }
}

/// A checked connection to one chain.
#[derive(Clone, Debug)]
pub struct Chain {
    provider: DynProvider,
    url: String,
    chain_id: u64,
    rpc_timeout: Duration,
}

impl Chain {
    /// Connects over `http(s)://` or `ws(s)://` and reads the chain id; with `expected_chain_id`, a different chain
    /// is [`ChainError::ChainIdMismatch`].
    pub async fn connect(
        url: &str,
        expected_chain_id: Option<u64>,
        rpc_timeout: Duration,
    ) -> Result<Self, ChainError> {
        let lower = url.to_ascii_lowercase();
        if !["http://", "https://", "ws://", "wss://"]
            .iter()
            .any(|s| lower.starts_with(s))
        {
            return Err(ChainError::InvalidUrl(redact_url(url)));
        }
        let shown = redact_url(url);
        let connect = ProviderBuilder::new().disable_recommended_fillers().connect(url);
        let provider = match tokio::time::timeout(rpc_timeout, connect).await {
            Err(_) => {
                return Err(ChainError::Timeout {
                    what: "connecting".into(),
                    url: shown,
                    after_s: rpc_timeout.as_secs(),
                });
            }
            Ok(Err(e)) => {
                return Err(match e {
                    RpcError::Transport(_) => classify(url, "connecting", &e),
                    other => ChainError::Unreachable {
                        url: shown,
                        reason: other.to_string(),
                    },
                });
            }
            Ok(Ok(p)) => p.erased(),
        };
        let mut chain = Self {
            provider,
            url: url.to_owned(),
            chain_id: 0,
            rpc_timeout,
        };
        let actual = chain
            .rpc(
                "reading the chain id",
                chain.provider.get_chain_id().into_future(),
            )
            .await?;
        if let Some(expected) = expected_chain_id
            && expected != actual
        {
            return Err(ChainError::ChainIdMismatch {
                url: shown,
                expected,
                actual,
            });
        }
        chain.chain_id = actual;
        Ok(chain)
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The URL as given (may hold credentials: show [`redact_url`] of it instead).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    /// Runs one RPC call with the timeout, classifying its error.
    pub async fn rpc<T, F>(&self, what: &str, fut: F) -> Result<T, ChainError>
    where
        F: std::future::Future<Output = Result<T, RpcError<TransportErrorKind>>>,
    {
        match tokio::time::timeout(self.rpc_timeout, fut).await {
            Err(_) => Err(ChainError::Timeout {
                what: what.to_owned(),
                url: redact_url(&self.url),
                after_s: self.rpc_timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(classify(&self.url, what, &e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Runs one contract call with the timeout, classifying its error.
    pub async fn contract_call<T, F>(&self, what: &str, fut: F) -> Result<T, ChainError>
    where
        F: IntoFuture<Output = Result<T, alloy::contract::Error>>,
    {
        match tokio::time::timeout(self.rpc_timeout, fut.into_future()).await {
            Err(_) => Err(ChainError::Timeout {
                what: what.to_owned(),
                url: redact_url(&self.url),
                after_s: self.rpc_timeout.as_secs(),
            }),
            Ok(Err(alloy::contract::Error::TransportError(e))) => Err(classify(&self.url, what, &e)),
            Ok(Err(e)) => Err(ChainError::Rpc {
                what: what.to_owned(),
                message: e.to_string(),
            }),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Fails with [`ChainError::NoContract`] when `address` holds no code.
    pub async fn require_contract(&self, address: Address) -> Result<(), ChainError> {
        let code: Bytes = self
            .rpc(
                "reading contract code",
                self.provider.get_code_at(address).into_future(),
            )
            .await?;
        if code.is_empty() {
            return Err(ChainError::NoContract { address });
        }
        Ok(())
    }

    /// Name, symbol and decimals as the token reports them.
    pub async fn token_info(&self, token: Address) -> Result<TokenInfo, ChainError> {
        self.require_contract(token).await?;
        let t = TestStablecoin::new(token, &self.provider);
        let decimals = self
            .contract_call("reading token decimals", t.decimals().call())
            .await?;
        let symbol = self
            .contract_call("reading token symbol", t.symbol().call())
            .await?;
        let name = self.contract_call("reading token name", t.name().call()).await?;
        Ok(TokenInfo {
            address: token,
            name,
            symbol,
            decimals,
        })
    }

    /// The token's EIP-712 domain: from its `eip712Domain()` (EIP-5267) where it has one; otherwise (USDC) from
    /// `name()`, `version()` (a token without it: "1"), this chain's id and the token's address. Where the token
    /// has `DOMAIN_SEPARATOR()` (USDC, every EIP-2612 token), the domain must hash to it, else
    /// [`ChainError::TokenDomain`]: a signature made with another domain would be refused on chain.
    pub async fn token_domain(&self, token: Address) -> Result<TokenDomain, ChainError> {
        let t = TestStablecoin::new(token, &self.provider);
        let usdc = crate::usdc::FiatTokenV2_2::new(token, &self.provider);
        let missing = |e: &ChainError| matches!(e, ChainError::Rpc { .. } | ChainError::Refused { .. });
        let domain = match self
            .contract_call("reading the token's EIP-712 domain", t.eip712Domain().call())
            .await
        {
            Ok(d) => TokenDomain {
                name: d.name,
                version: d.version,
                chain_id: u64::try_from(d.chainId).map_err(|_| ChainError::TokenDomain {
                    token,
                    reason: format!("eip712Domain() names chain id {}", d.chainId),
                })?,
                token: d.verifyingContract,
            },
            Err(e) if missing(&e) => {
                let name = self
                    .contract_call("reading the token's name", t.name().call())
                    .await?;
                let version = match self
                    .contract_call("reading the token's version", usdc.version().call())
                    .await
                {
                    Ok(v) => v,
                    Err(e) if missing(&e) => "1".to_owned(),
                    Err(e) => return Err(e),
                };
                TokenDomain {
                    name,
                    version,
                    chain_id: self.chain_id,
                    token,
                }
            }
            Err(e) => return Err(e),
        };
        if domain.chain_id != self.chain_id || domain.token != token {
            return Err(ChainError::TokenDomain {
                token,
                reason: format!(
                    "its EIP-712 domain names chain {} and contract {}, not chain {} and {token}",
                    domain.chain_id, domain.token, self.chain_id
                ),
            });
        }
        match self
            .contract_call(
                "reading the token's DOMAIN_SEPARATOR",
                usdc.DOMAIN_SEPARATOR().call(),
            )
            .await
        {
            Ok(separator) if separator != domain.eip712().separator() => Err(ChainError::TokenDomain {
                token,
                reason: format!(
                    "DOMAIN_SEPARATOR() is {separator} but name {:?}, version {:?}, chain {} and the token's \
                     address hash to {}",
                    domain.name,
                    domain.version,
                    domain.chain_id,
                    domain.eip712().separator()
                ),
            }),
            Ok(_) => Ok(domain),
            Err(e) if missing(&e) => Ok(domain),
            Err(e) => Err(e),
        }
    }

    /// Checks that `token` implements EIP-3009's `receiveWithAuthorization` for `payee` (the escrow): it must answer
    /// `authorizationState`, and a forged authorization simulated from the payee must be refused with a reason (a
    /// token without the function reverts with no data, or accepts it through a fallback). Else
    /// [`ChainError::TokenDomain`], naming the token.
    pub async fn require_eip3009(&self, token: Address, payee: Address) -> Result<(), ChainError> {
        use alloy::rpc::types::TransactionRequest;
        use alloy::sol_types::SolCall;
        let unusable = |reason: String| ChainError::TokenDomain { token, reason };
        let t = TestStablecoin::new(token, &self.provider);
        match self
            .contract_call(
                "reading the token's authorizationState",
                t.authorizationState(payee, B256::ZERO).call(),
            )
            .await
        {
            Ok(_) => {}
            Err(ChainError::Rpc { .. } | ChainError::Refused { .. }) => {
                return Err(unusable(
                    "it has no EIP-3009 authorizationState(address,bytes32), so it cannot take gasless \
                     authorizations"
                        .into(),
                ));
            }
            Err(e) => return Err(e),
        }
        // A nonce no one signed and an all-zero signature: every EIP-3009 token refuses it, with a reason.
        let forged = TestStablecoin::receiveWithAuthorizationCall {
            from: payee,
            to: payee,
            value: U256::from(1u8),
            validAfter: U256::ZERO,
            validBefore: U256::MAX,
            nonce: alloy::primitives::keccak256(b"remesa: receiveWithAuthorization probe"),
            v: 27,
            r: B256::ZERO,
            s: B256::ZERO,
        };
        let tx = TransactionRequest::default()
            .from(payee)
            .to(token)
            .input(forged.abi_encode().into());
        let result = tokio::time::timeout(self.rpc_timeout, self.provider.call(tx).into_future()).await;
        match result {
            Err(_) => Err(ChainError::Timeout {
                what: "simulating receiveWithAuthorization".into(),
                url: redact_url(&self.url),
                after_s: self.rpc_timeout.as_secs(),
            }),
            Ok(Ok(_)) => Err(unusable(
                "it accepted a receiveWithAuthorization with a forged signature (no EIP-3009 check)".into(),
            )),
            Ok(Err(e)) => match e.as_error_resp() {
                Some(resp) if resp.as_revert_data().is_some_and(|d| !d.is_empty()) => Ok(()),
                Some(_) => Err(unusable(
                    "it has no receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,\
                     bytes32,bytes32) (a simulated call reverted without a reason)"
                        .into(),
                )),
                None => Err(classify(&self.url, "simulating receiveWithAuthorization", &e)),
            },
        }
    }

    pub async fn token_balance(&self, token: &TokenInfo, owner: Address) -> Result<TokenAmount, ChainError> {
        let t = TestStablecoin::new(token.address, &self.provider);
        let units = self
            .contract_call("reading a token balance", t.balanceOf(owner).call())
            .await?;
        Ok(token.amount(units))
    }

    /// Native coin balance in wei.
    pub async fn eth_balance(&self, owner: Address) -> Result<U256, ChainError> {
        self.rpc(
            "reading a balance",
            self.provider.get_balance(owner).into_future(),
        )
        .await
    }

    /// EIP-2612 nonce of `owner` on the token.
    pub async fn permit_nonce(&self, token: Address, owner: Address) -> Result<U256, ChainError> {
        let t = TestStablecoin::new(token, &self.provider);
        self.contract_call("reading the permit nonce", t.nonces(owner).call())
            .await
    }

    /// Whether an EIP-3009 nonce of `authorizer` has been used.
    pub async fn authorization_used(
        &self,
        token: Address,
        authorizer: Address,
        nonce: B256,
    ) -> Result<bool, ChainError> {
        let t = TestStablecoin::new(token, &self.provider);
        self.contract_call(
            "reading the authorization state",
            t.authorizationState(authorizer, nonce).call(),
        )
        .await
    }

    /// Where remittance `id` sits in the escrow's deposit batches: the `Deposited` event (escrow v3) among the
    /// escrow's logs since `from_block` (the deployment's block) whose leaves hold it, read in ranges of
    /// [`LOGS_BLOCK_RANGE`] blocks. `None` when no batch deposited it.
    pub async fn escrow_placement(
        &self,
        escrow: Address,
        id: B256,
        from_block: u64,
    ) -> Result<Option<crate::batches::Placement>, ChainError> {
        use alloy::rpc::types::Filter;
        use alloy::sol_types::SolEvent;
        let head = self
            .rpc(
                "reading the latest block number",
                self.provider.get_block_number(),
            )
            .await?;
        let mut from = from_block;
        while from <= head {
            let to = from.saturating_add(LOGS_BLOCK_RANGE - 1).min(head);
            let filter = Filter::new()
                .address(escrow)
                .event_signature(RemittanceEscrow::Deposited::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let logs = self
                .rpc("reading the escrow's deposits", self.provider.get_logs(&filter))
                .await?;
            for log in logs {
                let Ok(ev) = RemittanceEscrow::Deposited::decode_log_data(log.data()) else {
                    continue;
                };
                let batch = crate::batches::DepositedBatch::from_event(ev.root, ev.leaves, &ev.senderAmounts);
                if let Some(p) = batch.placement_of(id) {
                    return Ok(Some(p));
                }
            }
            from = to.saturating_add(1);
        }
        Ok(None)
    }

    /// The escrow's status for a remittance at `placement`.
    pub async fn escrow_status_at(
        &self,
        escrow: Address,
        placement: &crate::batches::Placement,
    ) -> Result<EscrowStatus, ChainError> {
        let e = RemittanceEscrow::new(escrow, &self.provider);
        let v = self
            .contract_call(
                "reading the remittance status",
                e.statusOf(placement.id(), placement.index_u256(), placement.proof())
                    .call(),
            )
            .await?;
        EscrowStatus::from_u8(v).ok_or_else(|| ChainError::Rpc {
            what: "reading the remittance status".into(),
            message: format!("unknown status {v}"),
        })
    }

    /// The escrow's status for a remittance id: found among the deposits since `from_block` (`None` when no
    /// deposit holds it), then asked with its proof.
    pub async fn escrow_status(
        &self,
        escrow: Address,
        id: B256,
        from_block: u64,
    ) -> Result<EscrowStatus, ChainError> {
        match self.escrow_placement(escrow, id, from_block).await? {
            Some(p) => self.escrow_status_at(escrow, &p).await,
            None => Ok(EscrowStatus::None),
        }
    }

    /// The escrow's shortest and longest lock in seconds (`minLockSeconds`, `maxLockSeconds`): a deposit's expiry
    /// must be that far from the block's time.
    pub async fn escrow_lock_bounds(&self, escrow: Address) -> Result<(u64, u64), ChainError> {
        let e = RemittanceEscrow::new(escrow, &self.provider);
        let min = self
            .contract_call("reading the escrow's shortest lock", e.minLockSeconds().call())
            .await?;
        let max = self
            .contract_call("reading the escrow's longest lock", e.maxLockSeconds().call())
            .await?;
        Ok((min, max))
    }

    /// The settlement address and signer new deposits to `partner_id` must name: the latest `PartnerSet` event
    /// for it since `from_block` (the deployment's block), confirmed by the escrow's `partnerAccepts`. `None` when
    /// the partner accepts no deposits (never registered, or removed).
    pub async fn partner_registration(
        &self,
        escrow: Address,
        partner_id: u64,
        from_block: u64,
    ) -> Result<Option<(Address, Address)>, ChainError> {
        use alloy::rpc::types::Filter;
        use alloy::sol_types::SolEvent;
        let filter = Filter::new()
            .address(escrow)
            .event_signature(RemittanceEscrow::PartnerSet::SIGNATURE_HASH)
            .topic1(B256::from(U256::from(partner_id)))
            .from_block(from_block);
        let logs = self
            .rpc(
                "reading the partner registry's events",
                self.provider.get_logs(&filter),
            )
            .await?;
        let Some(last) = logs
            .iter()
            .rev()
            .find_map(|l| RemittanceEscrow::PartnerSet::decode_log(&l.inner).ok())
        else {
            return Ok(None);
        };
        let e = RemittanceEscrow::new(escrow, &self.provider);
        let accepts = self
            .contract_call(
                "reading the partner registry",
                e.partnerAccepts(partner_id, last.settlement, last.signer).call(),
            )
            .await?;
        Ok(accepts.then_some((last.settlement, last.signer)))
    }

    /// Timestamp of the latest block (the chain's "now"; on a devnet it can be ahead of the wall clock).
    pub async fn latest_timestamp(&self) -> Result<u64, ChainError> {
        let block = self
            .rpc(
                "reading the latest block",
                self.provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                    .into_future(),
            )
            .await?;
        block.map(|b| b.header.timestamp).ok_or_else(|| ChainError::Rpc {
            what: "reading the latest block".into(),
            message: "no latest block".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact_url("https://user:pw@mainnet.infura.io/v3/0123456789abcdef0123456789abcdef?x=1"),
            "https://mainnet.infura.io/v3/…"
        );
    }

    #[tokio::test]
    async fn refuses_bad_urls_and_reports_unreachable() {
        let e = Chain::connect("ftp://x", None, DEFAULT_RPC_TIMEOUT)
            .await
            .expect_err("bad");
        assert!(e.is_user_error());
        // Port 9 (discard) on localhost: nothing listens there.
        let e = Chain::connect("http://127.0.0.1:9", None, Duration::from_secs(5))
            .await
            .expect_err("unreachable");
        assert!(matches!(e, ChainError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("http://127.0.0.1:9"));
    }
}
