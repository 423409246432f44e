//! A validator that never says anything (crashed for good, or withholding votes).

use super::{Behaviour, ByzCtx, Send};
use dpx_consensus::SignedMessage;

#[derive(Debug, Default)]
pub struct Silent;

impl Behaviour for Silent {
    fn on_message(&mut self, _: &mut ByzCtx<'_>, _: usize, _: &SignedMessage) -> Vec<Send> {
        Vec::new()
    }
    fn on_tick(&mut self, _: &mut ByzCtx<'_>) -> Vec<Send> {
        Vec::new()
    }
}
