//! Conservation of money over random operation sequences: deposits, withdrawals (some
//! overdrawing), orders placed, accepted (some without the funds), delivered, confirmed,
//! cancelled, disputed and resolved (some rulings above the escrow), fee changes and treasury
//! payouts, with amounts up to `u64::MAX`. After every step:
//!
//! - Σ balances + Σ escrows + treasury = deposited − withdrawn, and those totals equal what the
//!   successful deposits and withdrawals in the receipts add up to;
//! - an escrow is held only by an accepted, delivered or disputed order, and never exceeds its
//!   price;
//! - a refused transaction moved no money (nothing but the signer's nonce changed).
//!
//! The same sequence replayed on a fresh chain gives the same receipts and state.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Deposit {
        who: usize,
        amount: u64,
    },
    Withdraw {
        who: usize,
        amount: u64,
    },
    Place {
        buyer: usize,
        product: usize,
    },
    Accept {
        order: usize,
    },
    Deliver {
        order: usize,
    },
    Confirm {
        order: usize,
    },
    Cancel {
        order: usize,
        by_buyer: bool,
    },
    Dispute {
        order: usize,
    },
    /// The provider's share as a per-mille of the order's price (above 1000: more than the
    /// escrow, which must be refused); `None` refunds all.
    Resolve {
        order: usize,
        share_per_mille: Option<u64>,
    },
    SetFee {
        basis_points: u32,
    },
    Payout {
        who: usize,
        amount: u64,
    },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 1u64..=50_000,
        1 => any::<u64>(),
        1 => (u64::MAX - 20_000)..=u64::MAX,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0usize..4;
    let order = any::<usize>();
    prop_oneof![
        3 => (who.clone(), amount()).prop_map(|(who, amount)| Step::Deposit { who, amount }),
        2 => (who.clone(), amount()).prop_map(|(who, amount)| Step::Withdraw { who, amount }),
        3 => (0usize..2, 0usize..3).prop_map(|(buyer, product)| Step::Place { buyer, product }),
        3 => order.prop_map(|order| Step::Accept { order }),
        2 => order.prop_map(|order| Step::Deliver { order }),
        2 => order.prop_map(|order| Step::Confirm { order }),
        1 => (order, any::<bool>())
            .prop_map(|(order, by_buyer)| Step::Cancel { order, by_buyer }),
        1 => order.prop_map(|order| Step::Dispute { order }),
        1 => (order, proptest::option::of(0u64..=1_100))
            .prop_map(|(order, share_per_mille)| Step::Resolve { order, share_per_mille }),
        1 => (0u32..=10_000).prop_map(|basis_points| Step::SetFee { basis_points }),
        1 => (who, 1u64..=5_000).prop_map(|(who, amount)| Step::Payout { who, amount }),
    ]
}

/// Buyers 0 and 1, providers 2 and 3; three products with very different prices.
struct Sim {
    w: World,
    people: Vec<Keypair>,
    products: Vec<(ProductId, usize)>,
    /// (order, buyer index, provider index, price) of every order placed.
    orders: Vec<(OrderId, usize, usize, u64)>,
    deposited: u128,
    withdrawn: u128,
}

fn sim() -> Sim {
    let mut w = World::new();
    let people: Vec<Keypair> = (1..=4).map(kp).collect();
    w.admit(&people[0], &[Role::Consumer]);
    w.admit(&people[1], &[Role::Consumer]);
    w.admit(&people[2], &[Role::Provider]);
    w.admit(&people[3], &[Role::Provider]);
    w.rate(&people[2].public(), 1);
    w.rate(&people[3].public(), 1);
    let mut products = Vec::new();
    for (provider, price) in [(2, 10_000u64), (3, 1), (3, u64::MAX / 3)] {
        let p = people[provider].clone();
        let id = ProductId::derive(CHAIN, &p.public(), w.nonce(&p.public()));
        let mut s = spec(1, ProductConditions::default());
        s.price = price;
        w.ok(&p, Operation::ListProduct { spec: s });
        products.push((id, provider));
    }
    // A fee from the start and funded buyers, so that short sequences complete trades.
    w.govern(ProposalAction::SetPlatformFee { basis_points: 300 });
    w.fund(&people[0].public(), 1_000_000);
    w.fund(&people[1].public(), 1_000_000);
    Sim { w, people, products, orders: Vec::new(), deposited: 2_000_000, withdrawn: 0 }
}

impl Sim {
    /// The signer and operation of a step; `None` when it names no order yet.
    fn op(&mut self, s: &Step) -> Option<(Keypair, Operation)> {
        // Mostly one of the last three orders, so that orders go through their life cycle.
        let pick = |n: usize| -> Option<(OrderId, usize, usize, u64)> {
            let len = self.orders.len();
            (len > 0).then(|| self.orders[len - 1 - n % len.min(3)])
        };
        let bank = self.w.bank.clone();
        let op = match *s {
            Step::Deposit { who, amount } => (
                bank,
                Operation::Deposit {
                    account: self.people[who].public(),
                    amount,
                    reference: self.w.next_ref(),
                },
            ),
            Step::Withdraw { who, amount } => (
                bank,
                Operation::Withdraw {
                    account: self.people[who].public(),
                    amount,
                    reference: self.w.next_ref(),
                },
            ),
            Step::Place { buyer, product } => {
                let b = self.people[buyer].clone();
                let (pid, provider) = self.products[product];
                let id = OrderId::derive(CHAIN, &b.public(), self.w.nonce(&b.public()));
                let price = self.w.get::<Product>(&keys::product(&pid)).unwrap().spec.price;
                self.orders.push((id, buyer, provider, price));
                let op = Operation::PlaceOrder {
                    product: pid,
                    grant: None,
                    purpose: String::new(),
                    demand: None,
                };
                (b, op)
            }
            Step::Accept { order } => {
                let (id, _, p, _) = pick(order)?;
                (self.people[p].clone(), Operation::AcceptOrder { order: id })
            }
            Step::Deliver { order } => {
                let (id, _, p, _) = pick(order)?;
                let op = Operation::DeliverOrder { order: id, delivery_hash: Hash::ZERO };
                (self.people[p].clone(), op)
            }
            Step::Confirm { order } => {
                let (id, b, _, _) = pick(order)?;
                (self.people[b].clone(), Operation::ConfirmOrder { order: id })
            }
            Step::Cancel { order, by_buyer } => {
                let (id, b, p, _) = pick(order)?;
                (
                    self.people[if by_buyer { b } else { p }].clone(),
                    Operation::CancelOrder { order: id },
                )
            }
            Step::Dispute { order } => {
                let (id, b, _, _) = pick(order)?;
                let op = Operation::DisputeOrder { order: id, reason_hash: Hash::ZERO };
                (self.people[b].clone(), op)
            }
            Step::Resolve { order, share_per_mille } => {
                let (id, _, _, price) = pick(order)?;
                let share = share_per_mille.map(|pm| {
                    u64::try_from(u128::from(price) * u128::from(pm) / 1000).unwrap_or(u64::MAX)
                });
                let op = Operation::ResolveDispute { order: id, settle_amount: share };
                (self.w.operator.clone(), op)
            }
            Step::SetFee { basis_points } => (
                self.w.agency().clone(),
                Operation::Propose { action: ProposalAction::SetPlatformFee { basis_points } },
            ),
            Step::Payout { who, amount } => (
                self.w.agency().clone(),
                Operation::Propose {
                    action: ProposalAction::PayFromTreasury {
                        account: self.people[who].public(),
                        amount,
                    },
                },
            ),
        };
        Some(op)
    }

    /// Run one step and check every invariant after it.
    fn run(&mut self, s: &Step) -> Result<(), TestCaseError> {
        let Some((who, op)) = self.op(s) else { return Ok(()) };
        let before = self.w.st.clone();
        let r = self.w.run(&who, op);
        if r.is_ok() {
            for e in r.events_of("money.deposited") {
                self.deposited += u128::from(e.get("amount").unwrap().parse::<u64>().unwrap());
            }
            for e in r.events_of("money.withdrawn") {
                self.withdrawn += u128::from(e.get("amount").unwrap().parse::<u64>().unwrap());
            }
        } else {
            let nonce = keys::nonce(&who.public());
            let mut after = self.w.st.map.clone();
            let mut was = before.map;
            after.remove(&nonce);
            was.remove(&nonce);
            prop_assert!(after == was, "refused {s:?} changed state: {}", r.reason);
            prop_assert!(!r.reason.contains("panic"), "{}", r.reason);
        }
        let (held, net) = money_held(&self.w.st);
        prop_assert_eq!(held, net, "conservation after {:?}", s);
        prop_assert_eq!(net, self.deposited - self.withdrawn, "supply vs receipts after {:?}", s);
        let supply = supply(&self.w.st).unwrap();
        prop_assert_eq!(u128::from(supply.deposited), self.deposited);
        prop_assert_eq!(u128::from(supply.withdrawn), self.withdrawn);
        for o in all_of::<Order>(&self.w.st, keys::PREFIX_ORDER) {
            let holding = matches!(
                o.status,
                OrderStatus::Accepted | OrderStatus::Delivered | OrderStatus::Disputed
            );
            prop_assert_eq!(o.escrow, if holding { o.price } else { 0 }, "order {:?}", o);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn money_is_conserved_over_random_sequences(steps in proptest::collection::vec(step(), 1..60)) {
        let mut a = sim();
        for s in &steps {
            a.run(s)?;
        }
        // Determinism: the same steps on a fresh chain, the same receipts and state.
        let mut b = sim();
        for s in &steps {
            b.run(s)?;
        }
        prop_assert_eq!(&a.w.receipts, &b.w.receipts);
        prop_assert_eq!(a.w.st.root(), b.w.st.root());
    }
}
