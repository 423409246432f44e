//! Twins (Bano et al., "Twins: BFT Systems Made Robust"): one validator key run by two honest
//! cores at once. Each twin talks only to one side of the honest validators, so the two may
//! sign conflicting proposals and votes without knowing it. The simulator treats the pair as
//! one byzantine validator.

/// Can `from` send to `to`? `twin_side[i]` is `Some(side)` for twin instances; honest
/// instances have `honest_side[i]`.
pub fn linked(twin_side: &[Option<usize>], honest_side: &[usize], from: usize, to: usize) -> bool {
    match (twin_side[from], twin_side[to]) {
        (Some(a), None) => honest_side[to] == a,
        (None, Some(b)) => honest_side[from] == b,
        (Some(_), Some(_)) => false,
        (None, None) => true,
    }
}
