//! Model-based test: random, chain-consistent sequences of escrow events, partner actions, expiries and reorgs,
//! delivered to the engine as the indexer and the API would. After every step the ledger balances, and the ledger's
//! escrow account equals what a model of the escrow contract holds.

use std::str::FromStr;

use alloy::primitives::B256;
use rand::{Rng, SeedableRng};
use remesa::chain::{ChainEventSink, EventMeta, RemovedEvent, RolledBack};
use remesa::domain::IdempotencyKey;
use remesa::engine::{CreateRemittance, PayoutProof, Recipient, Remittance, SenderRef};

use crate::helpers::TestEnv;
use remesa_testkit::{both_dbs, pid, rid};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OnChain {
    None,
    Locked,
    Released,
    Refunded,
}

struct Item {
    r: Remittance,
    chain: OnChain,
    /// The last applied event that changed `chain`, for reorgs: (meta, kind, previous status).
    last: Option<(EventMeta, &'static str, OnChain)>,
}

async fn random_sequences(t: TestEnv) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("model").await;
    t.fund(&u.address, 10_000_000_000).await;
    let mut counts = [0u32; 4]; // deposits, releases, refunds, rollbacks
    for seed in 0..20u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut items = Vec::new();
        for i in 0..3 {
            let q = t
                .engine
                .quote(TestEnv::quote_req(&format!("{}", 5 + i)))
                .await
                .expect("quote");
            let (r, _) = t
                .engine
                .create_remittance(
                    CreateRemittance {
                        quote_id: q.id,
                        sender: SenderRef::User {
                            user_id: u.id.clone(),
                        },
                        recipient: Recipient {
                            phone: remesa_testkit::phone("+50255550101"),
                            name: "Maria".into(),
                            account: None,
                        },
                    },
                    &IdempotencyKey::parse(&format!("model-{seed}-{i}")).expect("key"),
                )
                .await
                .expect("create");
            items.push(Item {
                r,
                chain: OnChain::None,
                last: None,
            });
        }
        let escrow_before = t.ledger_ok().await;
        let mut locked_total: i64 = 0;
        for _step in 0..40 {
            let idx = rng.gen_range(0..items.len());
            let action = rng.gen_range(0..9);
            let it = &mut items[idx];
            let id = it.r.id.clone();
            let total: i64 = it.r.total_base_units.parse().expect("total");
            match action {
                0 | 1 if it.chain == OnChain::None => {
                    let meta = t
                        .deposit(&id, &it.r.sender_address, u64::try_from(total).unwrap_or(0))
                        .await;
                    it.last = Some((meta, "deposited", OnChain::None));
                    counts[0] += 1;
                    it.chain = OnChain::Locked;
                    locked_total += total;
                }
                2 => {
                    let _ = t.engine.payout_accepted(&rid(&id), pid(1)).await;
                }
                3 => {
                    let code = t
                        .engine
                        .pickup_code(&rid(&id))
                        .await
                        .expect("code")
                        .expect("cash");
                    let _ = t
                        .engine
                        .payout_paid(
                            &rid(&id),
                            pid(1),
                            PayoutProof::PickupCode {
                                code: code.expose().to_owned(),
                            },
                        )
                        .await;
                }
                4 => {
                    let _ = t
                        .engine
                        .payout_failed(&rid(&id), pid(1), "model says no", None)
                        .await;
                }
                5 if it.chain == OnChain::Locked => {
                    // anyone holding the preimage may release while locked
                    let before = t.meta_peek();
                    t.release(&id, u64::try_from(total).unwrap_or(0), 1).await;
                    it.last = Some((before, "released", OnChain::Locked));
                    counts[1] += 1;
                    it.chain = OnChain::Released;
                    locked_total -= total;
                }
                6 if it.chain == OnChain::Locked => {
                    let mut tx = t.db.db.begin().await.expect("tx");
                    let _ = t
                        .engine
                        .expired_locked(&mut tx, it.r.expiry_unix_s, 10)
                        .await
                        .expect("keeper");
                    tx.commit().await.expect("commit");
                    let before = t.meta_peek();
                    t.refund(&id, &it.r.sender_address, u64::try_from(total).unwrap_or(0))
                        .await;
                    it.last = Some((before, "refunded", OnChain::Locked));
                    counts[2] += 1;
                    it.chain = OnChain::Refunded;
                    locked_total -= total;
                }
                7 => {
                    if let Some((meta, kind, prev)) = it.last.take() {
                        let mut tx = t.db.db.begin().await.expect("tx");
                        t.engine
                            .on_rolled_back(
                                &mut tx,
                                &RolledBack {
                                    from_block: meta.block_number,
                                    to_block: meta.block_number,
                                    events: vec![RemovedEvent {
                                        id: meta.id.clone(),
                                        kind: kind.into(),
                                        block_number: meta.block_number,
                                        remittance_id: Some(B256::from_str(&id).expect("id")),
                                    }],
                                },
                            )
                            .await
                            .expect("rollback");
                        tx.commit().await.expect("commit");
                        match (kind, prev) {
                            ("deposited", _) => locked_total -= total,
                            (_, OnChain::Locked) => locked_total += total,
                            _ => {}
                        }
                        it.chain = prev;
                        counts[3] += 1;
                    }
                }
                _ => {
                    let _ = t.engine.cancel(&rid(&id), None).await;
                }
            }
            let escrow = t.ledger_ok().await - escrow_before;
            assert_eq!(
                escrow, locked_total,
                "seed {seed}: the ledger's escrow equals the modelled contract"
            );
            assert!(escrow >= 0);
            // the engine's view never contradicts the chain
            let state = t
                .engine
                .remittance(&rid(&id))
                .await
                .expect("get")
                .expect("some")
                .state;
            match it.chain {
                OnChain::Released => assert_eq!(state.as_str(), "settled", "seed {seed}"),
                OnChain::Refunded => assert_eq!(state.as_str(), "refunded", "seed {seed}"),
                OnChain::Locked => assert!(state.is_locked(), "seed {seed}: {state} while locked on chain"),
                // a deposit reorged out after the partner paid keeps `paid`: the outbox re-sends the deposit and the
                // release follows; the partner's cash payout is not undone
                OnChain::None if state.as_str() == "paid" => {}
                OnChain::None => assert!(
                    !state.is_locked() || state.as_str() == "refund_pending",
                    "seed {seed}: {state} without funds"
                ),
            }
        }
    }
    assert!(
        counts.iter().all(|c| *c > 0),
        "every kind of event was exercised: {counts:?}"
    );
}
both_dbs!(model_t, random_sequences);
