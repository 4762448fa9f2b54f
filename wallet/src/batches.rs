//! The escrow's deposit batches off chain (escrow v3, `contracts/src/interfaces/IRemittanceEscrow.sol`): the Merkle
//! tree of a batch's leaves, single and multi proofs, where a remittance sits ([`Placement`]), and the packed
//! calldata of `depositBatch` and `releaseBatch`.
//!
//! A batch of n items has leaves `ids[i]` (zero where an item was skipped), zero-padded to the next power of two;
//! an inner node is `keccak256(left ‖ right)`; a batch of one is its id. The escrow's `Deposited(root, leaves,
//! senderAmounts)` event publishes the leaves, so anyone can rebuild every proof from the logs.

use alloy::primitives::{Address, B256, Bytes, keccak256};

use crate::contracts::IRemittanceEscrow;
use crate::terms::RemittanceTerms;

/// Largest batch the escrow accepts (its `MAX_BATCH`): items per deposit batch, releases per transaction.
pub const MAX_BATCH: usize = 64;

/// Bytes of one packed deposit item and of one packed release leaf.
pub const DEPOSIT_ITEM_BYTES: usize = 144;
pub const RELEASE_LEAF_BYTES: usize = 70;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch needs at least one item")]
    Empty,
    #[error("a batch holds at most {MAX_BATCH} items, not {0}")]
    TooLarge(usize),
    #[error("remittance {0}: the amount does not fit the escrow's packed layout (96 bits)")]
    AmountTooLarge(B256),
    #[error("remittance {0}: a time does not fit the escrow's packed layout (40 bits of unix seconds)")]
    TimeTooLarge(B256),
    #[error("leaf index {index} is outside a batch of {n}")]
    IndexOutOfRange { index: usize, n: usize },
    #[error("remittance {id} is not leaf {index} of its batch")]
    NotTheLeaf { id: B256, index: usize },
    #[error("remittance {0} appears twice in one release")]
    Duplicate(B256),
}

fn hash_pair(a: B256, b: B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(a.as_slice());
    buf[32..].copy_from_slice(b.as_slice());
    keccak256(buf)
}

/// The tree's levels: `levels[0]` the leaves padded to a power of two, the last `[root]`.
fn levels(leaves: &[B256]) -> Vec<Vec<B256>> {
    let width = leaves.len().max(1).next_power_of_two();
    let mut level = leaves.to_vec();
    level.resize(width, B256::ZERO);
    let mut out = vec![level];
    while out.last().is_some_and(|l| l.len() > 1) {
        let prev = out.last().map(Vec::as_slice).unwrap_or_default();
        let next = prev.chunks(2).map(|p| hash_pair(p[0], p[1])).collect();
        out.push(next);
    }
    out
}

/// The root of a batch's leaves (what the escrow stores and `rootOf` computes).
pub fn root(leaves: &[B256]) -> B256 {
    levels(leaves)
        .last()
        .and_then(|l| l.first().copied())
        .unwrap_or_default()
}

/// Where a deposited remittance sits: its batch's leaves and its index among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub leaves: Vec<B256>,
    pub index: usize,
}

impl Placement {
    /// Remittance `id` at `index` of a batch with these leaves; checked.
    pub fn new(id: B256, leaves: Vec<B256>, index: usize) -> Result<Self, BatchError> {
        if leaves.is_empty() || leaves.len() > MAX_BATCH {
            return Err(BatchError::TooLarge(leaves.len()));
        }
        match leaves.get(index) {
            None => Err(BatchError::IndexOutOfRange {
                index,
                n: leaves.len(),
            }),
            Some(l) if *l != id => Err(BatchError::NotTheLeaf { id, index }),
            Some(_) => Ok(Self { leaves, index }),
        }
    }

    /// A remittance deposited alone (`deposit`): a batch of one, its own root.
    pub fn single(id: B256) -> Self {
        Self {
            leaves: vec![id],
            index: 0,
        }
    }

    pub fn id(&self) -> B256 {
        self.leaves[self.index]
    }

    pub fn root(&self) -> B256 {
        root(&self.leaves)
    }

    /// The sibling hashes from the leaf up (what `release`, `refund` and `cancel` take).
    pub fn proof(&self) -> Vec<B256> {
        let lv = levels(&self.leaves);
        let mut index = self.index;
        let mut out = Vec::with_capacity(lv.len().saturating_sub(1));
        for level in lv.iter().take(lv.len().saturating_sub(1)) {
            out.push(level[index ^ 1]);
            index >>= 1;
        }
        out
    }

    /// The index as the escrow's `uint256`.
    pub fn index_u256(&self) -> alloy::primitives::U256 {
        alloy::primitives::U256::from(self.index)
    }
}

/// The multiproof for strictly ascending `indexes` of one batch, in the order `releaseBatch` consumes hashes:
/// level by level, left to right, every sibling the given leaves do not determine.
pub fn multiproof(leaves: &[B256], indexes: &[usize]) -> Vec<B256> {
    let lv = levels(leaves);
    let mut idx = indexes.to_vec();
    let mut out = Vec::new();
    for level in lv.iter().take(lv.len().saturating_sub(1)) {
        let mut next = Vec::with_capacity(idx.len());
        let mut k = 0;
        while k < idx.len() {
            let ix = idx[k];
            if ix & 1 == 0 && idx.get(k + 1) == Some(&(ix + 1)) {
                k += 2;
            } else {
                out.push(level[ix ^ 1]);
                k += 1;
            }
            next.push(ix >> 1);
        }
        idx = next;
    }
    out
}

/// The remittance id of sol terms at `escrow` (the one definition: [`RemittanceTerms::id`]).
fn id_of(escrow: Address, t: &IRemittanceEscrow::Terms) -> B256 {
    RemittanceTerms::from_sol(escrow, t).id()
}

fn u96(id: B256, v: alloy::primitives::U256) -> Result<[u8; 12], BatchError> {
    if v.bit_len() > 96 {
        return Err(BatchError::AmountTooLarge(id));
    }
    let b: [u8; 32] = v.to_be_bytes();
    let mut out = [0u8; 12];
    out.copy_from_slice(&b[20..]);
    Ok(out)
}

fn u40(id: B256, v: u64) -> Result<[u8; 5], BatchError> {
    if v >> 40 != 0 {
        return Err(BatchError::TimeTooLarge(id));
    }
    let b = v.to_be_bytes();
    let mut out = [0u8; 5];
    out.copy_from_slice(&b[3..]);
    Ok(out)
}

fn u40_u256(id: B256, v: alloy::primitives::U256) -> Result<[u8; 5], BatchError> {
    u64::try_from(v)
        .map_err(|_| BatchError::TimeTooLarge(id))
        .and_then(|v| u40(id, v))
}

fn same_partner(a: &IRemittanceEscrow::Terms, b: &IRemittanceEscrow::Terms) -> bool {
    a.partnerId == b.partnerId && a.settlement == b.settlement && a.partnerSigner == b.partnerSigner
}

fn partner_header(t: &IRemittanceEscrow::Terms, out: &mut Vec<u8>) {
    out.extend_from_slice(&t.partnerId.to_be_bytes());
    out.extend_from_slice(t.settlement.as_slice());
    out.extend_from_slice(t.partnerSigner.as_slice());
}

/// Whether one deposit fits the packed layout (amount within 96 bits, expiry and authorization window within 40
/// bits of unix seconds), without building it.
pub fn check_deposit(
    escrow: Address,
    t: &IRemittanceEscrow::Terms,
    a: &IRemittanceEscrow::Authorization,
) -> Result<(), BatchError> {
    let id = id_of(escrow, t);
    u96(id, t.amount)?;
    u40(id, t.expiry)?;
    u40_u256(id, a.validAfter)?;
    u40_u256(id, a.validBefore)?;
    Ok(())
}

/// `depositBatch` calldata's `packed` argument for these items, in this order (leaf i = item i): a new section
/// wherever the partner terms change, so sort by partner first to keep sections few.
pub fn pack_deposits(
    escrow: Address,
    items: &[(IRemittanceEscrow::Terms, IRemittanceEscrow::Authorization)],
) -> Result<Bytes, BatchError> {
    if items.is_empty() {
        return Err(BatchError::Empty);
    }
    if items.len() > MAX_BATCH {
        return Err(BatchError::TooLarge(items.len()));
    }
    let mut out = Vec::with_capacity(1 + items.len() * (DEPOSIT_ITEM_BYTES + 49));
    out.push(0); // section count, set below
    let mut sections = 0u8;
    let mut from = 0;
    while from < items.len() {
        let mut to = from + 1;
        while to < items.len() && same_partner(&items[from].0, &items[to].0) {
            to += 1;
        }
        partner_header(&items[from].0, &mut out);
        out.push(u8::try_from(to - from).map_err(|_| BatchError::TooLarge(to - from))?);
        for (t, a) in &items[from..to] {
            let id = id_of(escrow, t);
            out.extend_from_slice(t.sender.as_slice());
            out.extend_from_slice(&u96(id, t.amount)?);
            out.extend_from_slice(&u40(id, t.expiry)?);
            out.extend_from_slice(t.claimHash.as_slice());
            out.extend_from_slice(&u40_u256(id, a.validAfter)?);
            out.extend_from_slice(&u40_u256(id, a.validBefore)?);
            out.push(a.v);
            out.extend_from_slice(a.r.as_slice());
            out.extend_from_slice(a.s.as_slice());
        }
        sections += 1;
        from = to;
    }
    out[0] = sections;
    Ok(out.into())
}

/// One remittance to release: its terms, claim preimage and where it sits.
#[derive(Clone)]
pub struct ReleaseItem<'a> {
    pub terms: IRemittanceEscrow::Terms,
    pub preimage: B256,
    pub placement: &'a Placement,
}

/// The preimage is the recipient's pickup code until the release: never printed.
impl std::fmt::Debug for ReleaseItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseItem")
            .field("terms", &self.terms)
            .field("preimage", &"<redacted>")
            .field("placement", &self.placement)
            .finish()
    }
}

/// `releaseBatch` calldata's `packed` argument: items grouped by deposit batch and partner terms, groups ordered
/// by (partner id, settlement address) so each partner's payout is one token transfer, leaves ascending within a
/// group with the multiproof the group needs.
pub fn pack_releases(escrow: Address, items: &[ReleaseItem<'_>]) -> Result<Bytes, BatchError> {
    if items.is_empty() {
        return Err(BatchError::Empty);
    }
    if items.len() > MAX_BATCH {
        return Err(BatchError::TooLarge(items.len()));
    }
    let mut order: Vec<(usize, B256)> = Vec::with_capacity(items.len());
    for (k, it) in items.iter().enumerate() {
        let id = id_of(escrow, &it.terms);
        if it.placement.id() != id {
            return Err(BatchError::NotTheLeaf {
                id,
                index: it.placement.index,
            });
        }
        order.push((k, it.placement.root()));
    }
    order.sort_by(|(a, ra), (b, rb)| {
        let (ta, tb) = (&items[*a].terms, &items[*b].terms);
        (
            ta.partnerId,
            ta.settlement,
            ta.partnerSigner,
            ra,
            items[*a].placement.index,
        )
            .cmp(&(
                tb.partnerId,
                tb.settlement,
                tb.partnerSigner,
                rb,
                items[*b].placement.index,
            ))
    });
    let mut out = vec![0u8];
    let mut groups = 0u8;
    let mut g = 0;
    while g < order.len() {
        let (first, root) = order[g];
        let mut end = g + 1;
        while end < order.len()
            && order[end].1 == root
            && same_partner(&items[first].terms, &items[order[end].0].terms)
        {
            if items[order[end].0].placement.index == items[order[end - 1].0].placement.index {
                return Err(BatchError::Duplicate(items[order[end].0].placement.id()));
            }
            end += 1;
        }
        let group = &order[g..end];
        let indexes: Vec<usize> = group.iter().map(|(k, _)| items[*k].placement.index).collect();
        let proof = multiproof(&items[first].placement.leaves, &indexes);
        partner_header(&items[first].terms, &mut out);
        out.push(u8::try_from(group.len()).map_err(|_| BatchError::TooLarge(group.len()))?);
        out.push(u8::try_from(proof.len()).map_err(|_| BatchError::TooLarge(proof.len()))?);
        for (k, _) in group {
            let it = &items[*k];
            let id = it.placement.id();
            out.push(
                u8::try_from(it.placement.index).map_err(|_| BatchError::IndexOutOfRange {
                    index: it.placement.index,
                    n: it.placement.leaves.len(),
                })?,
            );
            out.extend_from_slice(it.terms.sender.as_slice());
            out.extend_from_slice(&u96(id, it.terms.amount)?);
            out.extend_from_slice(&u40(id, it.terms.expiry)?);
            out.extend_from_slice(it.preimage.as_slice());
        }
        for h in &proof {
            out.extend_from_slice(h.as_slice());
        }
        groups += 1;
        g = end;
    }
    out[0] = groups;
    Ok(out.into())
}

/// A `Deposited` event's batch: its root, leaves and per leaf the sender and amount (zero where skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositedBatch {
    pub root: B256,
    pub leaves: Vec<B256>,
    pub senders: Vec<Address>,
    pub amounts: Vec<alloy::primitives::U256>,
}

impl DepositedBatch {
    /// Decodes the event's fields (`senderAmounts[i] = sender << 96 | amount`).
    pub fn from_event(root: B256, leaves: Vec<B256>, sender_amounts: &[alloy::primitives::U256]) -> Self {
        let mask = (alloy::primitives::U256::from(1u8) << 96) - alloy::primitives::U256::from(1u8);
        let senders = sender_amounts
            .iter()
            .map(|w| {
                let b: [u8; 32] = (*w >> 96usize).to_be_bytes::<32>();
                Address::from_slice(&b[12..])
            })
            .collect();
        let amounts = sender_amounts.iter().map(|w| *w & mask).collect();
        Self {
            root,
            leaves,
            senders,
            amounts,
        }
    }

    /// Where `id` sits in this batch, if it is one of its leaves.
    pub fn placement_of(&self, id: B256) -> Option<Placement> {
        if id == B256::ZERO {
            return None;
        }
        let index = self.leaves.iter().position(|l| *l == id)?;
        Some(Placement {
            leaves: self.leaves.clone(),
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> B256 {
        keccak256([i])
    }

    /// Recomputes the root from a leaf and its proof, as the escrow's `_locate` does.
    fn climb(id: B256, mut index: usize, proof: &[B256]) -> B256 {
        let mut h = id;
        for s in proof {
            h = if index & 1 == 0 {
                hash_pair(h, *s)
            } else {
                hash_pair(*s, h)
            };
            index >>= 1;
        }
        h
    }

    /// The escrow's multiproof walk (`_multiRoot`), for checking `multiproof`.
    fn multi_root(indexes: &[usize], hashes: &[B256], proof: &[B256]) -> (B256, usize) {
        let mut idx = indexes.to_vec();
        let mut h = hashes.to_vec();
        let mut p = 0;
        let mut depth = 0;
        while idx.len() > 1 || idx[0] != 0 || p < proof.len() {
            let (mut ni, mut nh) = (Vec::new(), Vec::new());
            let mut k = 0;
            while k < idx.len() {
                let ix = idx[k];
                let node = if ix & 1 == 0 && idx.get(k + 1) == Some(&(ix + 1)) {
                    k += 2;
                    hash_pair(h[k - 2], h[k - 1])
                } else {
                    let s = proof[p];
                    p += 1;
                    k += 1;
                    if ix & 1 == 0 {
                        hash_pair(h[k - 1], s)
                    } else {
                        hash_pair(s, h[k - 1])
                    }
                };
                ni.push(ix >> 1);
                nh.push(node);
            }
            idx = ni;
            h = nh;
            depth += 1;
        }
        (h[0], depth)
    }

    #[test]
    fn root_of_one_is_the_leaf_and_padding_is_zero() {
        assert_eq!(root(&[leaf(1)]), leaf(1));
        let three = [leaf(1), B256::ZERO, leaf(3)];
        assert_eq!(
            root(&three),
            hash_pair(hash_pair(leaf(1), B256::ZERO), hash_pair(leaf(3), B256::ZERO))
        );
    }

    #[test]
    fn every_leaf_proves_to_the_root() {
        for n in 1..=MAX_BATCH {
            let leaves: Vec<B256> = (0..n).map(|i| leaf(u8::try_from(i).expect("n <= 64"))).collect();
            let r = root(&leaves);
            for i in 0..n {
                let p = Placement::new(leaves[i], leaves.clone(), i).expect("leaf i of the batch");
                assert_eq!(p.proof().len(), n.next_power_of_two().trailing_zeros() as usize);
                assert_eq!(climb(leaves[i], i, &p.proof()), r, "n={n} i={i}");
            }
        }
    }

    #[test]
    fn multiproofs_rebuild_the_root_at_the_batch_depth() {
        let leaves: Vec<B256> = (0..37).map(leaf).collect();
        let r = root(&leaves);
        for pick in [
            vec![0],
            vec![36],
            vec![0, 1],
            vec![3, 4, 5, 30],
            (0..37).collect::<Vec<_>>(),
        ] {
            let hashes: Vec<B256> = pick.iter().map(|i| leaves[*i]).collect();
            let proof = multiproof(&leaves, &pick);
            let (got, depth) = multi_root(&pick, &hashes, &proof);
            assert_eq!(got, r, "{pick:?}");
            assert_eq!(depth, 6);
        }
        assert!(multiproof(&leaves[..32], &(0..32).collect::<Vec<_>>()).is_empty());
    }

    #[test]
    fn placement_is_checked() {
        let leaves = vec![leaf(1), leaf(2)];
        assert_eq!(
            Placement::new(leaf(2), leaves.clone(), 0),
            Err(BatchError::NotTheLeaf {
                id: leaf(2),
                index: 0
            })
        );
        assert_eq!(
            Placement::new(leaf(2), leaves.clone(), 2),
            Err(BatchError::IndexOutOfRange { index: 2, n: 2 })
        );
        assert!(Placement::new(leaf(2), leaves, 1).is_ok());
        assert_eq!(Placement::single(leaf(9)).root(), leaf(9));
        assert!(Placement::single(leaf(9)).proof().is_empty());
    }

    #[test]
    fn packed_layout_bounds_are_checked() {
        use alloy::primitives::U256;
        let t = IRemittanceEscrow::Terms {
            sender: Address::repeat_byte(1),
            amount: U256::from(1u8) << 96,
            partnerId: 1,
            expiry: 1_900_000_000,
            settlement: Address::repeat_byte(2),
            partnerSigner: Address::repeat_byte(3),
            claimHash: B256::repeat_byte(4),
        };
        let a = IRemittanceEscrow::Authorization {
            validAfter: U256::ZERO,
            validBefore: U256::from(1_900_000_000u64),
            v: 27,
            r: B256::repeat_byte(5),
            s: B256::repeat_byte(6),
        };
        let escrow = Address::repeat_byte(9);
        assert!(matches!(
            check_deposit(escrow, &t, &a),
            Err(BatchError::AmountTooLarge(_))
        ));
        let fits = IRemittanceEscrow::Terms {
            amount: (U256::from(1u8) << 96) - U256::from(1u8),
            ..t.clone()
        };
        assert_eq!(check_deposit(escrow, &fits, &a), Ok(()));
        let late = IRemittanceEscrow::Authorization {
            validBefore: U256::from(1u64 << 40),
            ..a.clone()
        };
        assert!(matches!(
            check_deposit(escrow, &fits, &late),
            Err(BatchError::TimeTooLarge(_))
        ));
        // What passes the check packs: 49 header bytes + 144 per item, after the section count.
        let packed = pack_deposits(escrow, &[(fits, a)]).expect("fits");
        assert_eq!(packed.len(), 1 + 49 + DEPOSIT_ITEM_BYTES);
    }

    #[test]
    fn deposited_event_words_split_into_sender_and_amount() {
        let sender = Address::repeat_byte(0xab);
        let amount = alloy::primitives::U256::from(123_456_789u64);
        let word = (alloy::primitives::U256::from_be_slice(sender.as_slice()) << 96) | amount;
        let b = DepositedBatch::from_event(B256::ZERO, vec![leaf(1)], &[word]);
        assert_eq!(b.senders, vec![sender]);
        assert_eq!(b.amounts, vec![amount]);
        assert_eq!(b.placement_of(leaf(1)).map(|p| p.index), Some(0));
        assert_eq!(b.placement_of(B256::ZERO), None);
    }
}
