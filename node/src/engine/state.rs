//! The remittance state machine (DESIGN.md): quoted → pending_funds → funds_locked → payout_assigned →
//! payout_accepted → paid → settled, with refund_pending → refunded and expired / failed / cancelled as exits; a
//! sanctions screening hit holds a remittance off chain (quoted → on_hold) until the operator releases it (back to
//! quoted, then authorized afresh) or rejects it (cancelled).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a remittance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created from a quote; waiting for the sender's authorization (self-custody).
    Quoted,
    /// Held off chain by a sanctions screening hit, before any authorization was used: nothing is locked. The
    /// operator releases it (→ quoted, then a fresh authorization) or rejects it (→ cancelled); past its expiry it
    /// expires.
    OnHold,
    /// Authorized; the deposit is queued or in flight.
    PendingFunds,
    /// The escrow holds the funds (confirmed deposit).
    FundsLocked,
    /// The payout is offered to the quote's partner.
    PayoutAssigned,
    /// The partner took the payout.
    PayoutAccepted,
    /// The partner paid the recipient; the release to the partner is queued.
    Paid,
    /// Released to the partner on chain. Final.
    Settled,
    /// Will be refunded to the sender once the escrow's expiry is reached.
    RefundPending,
    /// Returned to the sender on chain. Final.
    Refunded,
    /// Never funded in time. Final.
    Expired,
    /// Could not be funded (e.g. the authorization was refused on chain). Final unless funds arrive late.
    Failed,
    /// Cancelled by the sender before the funds were locked. Final unless funds arrive late.
    Cancelled,
}

impl State {
    pub const ALL: [State; 13] = [
        State::Quoted,
        State::OnHold,
        State::PendingFunds,
        State::FundsLocked,
        State::PayoutAssigned,
        State::PayoutAccepted,
        State::Paid,
        State::Settled,
        State::RefundPending,
        State::Refunded,
        State::Expired,
        State::Failed,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Quoted => "quoted",
            State::OnHold => "on_hold",
            State::PendingFunds => "pending_funds",
            State::FundsLocked => "funds_locked",
            State::PayoutAssigned => "payout_assigned",
            State::PayoutAccepted => "payout_accepted",
            State::Paid => "paid",
            State::Settled => "settled",
            State::RefundPending => "refund_pending",
            State::Refunded => "refunded",
            State::Expired => "expired",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further transition is expected (late on-chain funds can still reopen failed/cancelled/expired).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Settled | State::Refunded | State::Expired | State::Failed | State::Cancelled
        )
    }

    /// The escrow holds this remittance's funds.
    pub fn is_locked(self) -> bool {
        matches!(
            self,
            State::FundsLocked
                | State::PayoutAssigned
                | State::PayoutAccepted
                | State::Paid
                | State::RefundPending
        )
    }

    /// Whether `self → to` is a forward transition of the machine. Reorg rollbacks are checked separately
    /// ([`State::can_roll_back_to`]).
    pub fn can_go_to(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Quoted, PendingFunds | OnHold | Cancelled | Expired | Failed)
                | (OnHold, Quoted | Cancelled | Expired)
                | (PendingFunds, FundsLocked | Cancelled | Failed | Expired)
                | (FundsLocked, PayoutAssigned | RefundPending)
                | (PayoutAssigned, PayoutAccepted | RefundPending)
                | (PayoutAccepted, Paid | RefundPending)
                | (Paid, Settled | RefundPending)
                | (RefundPending, Refunded | Settled)
                // funds that arrive after the remittance was given up are returned at expiry
                | (Cancelled | Failed | Expired, RefundPending)
        )
    }

    /// Whether `self → to` is a forward transition of a direct P2P transfer into a Remesa wallet (payout method
    /// `remesa_wallet`): no escrow and no partner, so quoted → pending_funds (authorized, transfer queued) →
    /// settled (the token `Transfer` was indexed), or failed when the transfer could not be sent.
    pub fn can_go_to_direct(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Quoted, PendingFunds | OnHold | Cancelled | Expired | Failed)
                | (OnHold, Quoted | Cancelled | Expired)
                | (PendingFunds, Settled | Failed)
        )
    }

    /// Whether a reorg that removed the transfer of a direct P2P payment may move it from `self` back to `to`.
    pub fn can_roll_back_direct_to(self, to: State) -> bool {
        matches!((self, to), (State::Settled, State::PendingFunds))
    }

    /// Whether a reorg that removed the event which led to `self` may move it back to `to`.
    pub fn can_roll_back_to(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (
                FundsLocked | PayoutAssigned | PayoutAccepted | RefundPending,
                PendingFunds
            ) | (Settled, Paid | RefundPending)
                | (Refunded, RefundPending)
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("nope"), None);
    }

    #[test]
    fn happy_path_is_allowed_and_no_skipping() {
        use State::*;
        let path = [
            Quoted,
            PendingFunds,
            FundsLocked,
            PayoutAssigned,
            PayoutAccepted,
            Paid,
            Settled,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_go_to(w[1]), "{} -> {}", w[0], w[1]);
        }
        assert!(!Quoted.can_go_to(FundsLocked));
        assert!(!FundsLocked.can_go_to(Paid));
        assert!(!PayoutAssigned.can_go_to(Settled));
        assert!(!Settled.can_go_to(Refunded));
        assert!(!Refunded.can_go_to(Settled));
        assert!(!FundsLocked.can_go_to(Cancelled));
    }

    #[test]
    fn direct_transfers_have_their_own_short_path() {
        use State::*;
        assert!(Quoted.can_go_to_direct(PendingFunds));
        assert!(PendingFunds.can_go_to_direct(Settled));
        assert!(PendingFunds.can_go_to_direct(Failed));
        // the escrow machine never skips to settled, the direct one never visits the escrow states
        assert!(!PendingFunds.can_go_to(Settled));
        for s in [
            FundsLocked,
            PayoutAssigned,
            PayoutAccepted,
            Paid,
            RefundPending,
            Refunded,
        ] {
            assert!(!PendingFunds.can_go_to_direct(s), "{s}");
            assert!(!s.can_go_to_direct(Settled), "{s}");
        }
        assert!(!Settled.can_go_to_direct(Refunded));
        assert!(!PendingFunds.can_go_to_direct(Cancelled));
        assert!(Settled.can_roll_back_direct_to(PendingFunds));
        assert!(!Settled.can_roll_back_direct_to(Paid));
    }

    #[test]
    fn a_hold_is_left_only_by_a_decision_or_expiry() {
        use State::*;
        for machine in [State::can_go_to, State::can_go_to_direct] {
            assert!(machine(Quoted, OnHold));
            let exits: Vec<State> = State::ALL.into_iter().filter(|to| machine(OnHold, *to)).collect();
            assert_eq!(exits, vec![Quoted, Expired, Cancelled]);
            // nothing on chain or in flight is ever put on hold
            for from in State::ALL.into_iter().filter(|s| *s != Quoted) {
                assert!(!machine(from, OnHold), "{from} -> on_hold");
            }
        }
        assert!(!OnHold.is_locked() && !OnHold.is_terminal());
    }

    #[test]
    fn terminal_states_only_reopen_for_late_funds() {
        for from in State::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in State::ALL {
                if from.can_go_to(to) {
                    assert_eq!(to, State::RefundPending, "{from} -> {to}");
                    assert!(matches!(from, State::Cancelled | State::Failed | State::Expired));
                }
            }
        }
    }
}
