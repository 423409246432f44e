//! Money on the ledger: balances in the chain currency's minor unit, deposits and withdrawals
//! recorded by settlement banks, the escrow of accepted orders, the platform fee and the
//! treasury.
//!
//! **Conservation.** Money enters the ledger only by a bank's `deposit` and leaves it only by a
//! bank's `withdraw`. Every other movement — the escrow taken when an order is accepted,
//! released when it is confirmed, refunded when it is cancelled, split by a dispute ruling, the
//! fee paid to the treasury, a governance payout from the treasury — debits exactly what it
//! credits. So at every height
//!
//! ```text
//! Σ account balances + Σ order escrows + treasury balance = deposited − withdrawn   (Supply)
//! ```
//!
//! which the property tests check after every operation. A debit larger than the balance is
//! refused (no balance goes below zero) and every sum is checked ([`ContractError::Overflow`],
//! never a wrap or a panic). Every amount the ledger holds is part of `deposited`, itself a
//! checked `u64`, so once a deposit is accepted no later credit can overflow.
//!
//! **Banks.** A settlement bank (`Role::SettlementBank`, admitted only by governance's
//! `admit_settlement_bank`, like a registrar) records transfers made off the ledger, each with
//! its own reference (1..=[`MAX_REFERENCE_BYTES`]). A bank uses a reference once, for a deposit
//! or a withdrawal, so a replayed bank message is refused. A suspended or negative-listed bank
//! records nothing.
//!
//! **Barred participants.** A suspended or negative-listed participant receives no deposits
//! (it cannot trade, and new money for a negative-listed party is what supervision is meant to
//! stop), but a bank can always pay it out (withdraw), and it still receives its refunds and
//! its share of a ruling: barring stops business, not property.
//!
//! **Fee.** Governance sets the platform fee in basis points (`set_platform_fee`,
//! 0..=[`MAX_FEE_BASIS_POINTS`]; 0 until set). It is fixed on an order when its escrow is
//! taken, so a later change does not alter an accepted order. The fee on a provider's share is
//! `floor(share × bps / 10 000)`, computed exactly in `u128`: rounding favours the provider by
//! less than one minor unit. Fees go to the ledger-wide [`Treasury`], which only a governance
//! proposal (`pay_from_treasury`) can spend, into a participant's account.
//!
//! **Accounts** are keyed by the participant's account key — its permanent identity, not its
//! current signing key — so a balance follows its owner through key rotations.

use dpx_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::keys;
use crate::participants::{Participant, load_participant};
use crate::receipt::Event;
use crate::state::State;
use crate::trades::Order;
use crate::types::{BankRecordKind, Role};

/// The platform fee's ceiling: 10 000 basis points is 100 %.
pub const MAX_FEE_BASIS_POINTS: u32 = 10_000;
/// Longest bank reference, in bytes.
pub const MAX_REFERENCE_BYTES: usize = 64;
/// Most settlement banks an account remembers (each may read the account).
pub const MAX_ACCOUNT_BANKS: usize = 32;
/// Most decimals a currency may have.
pub const MAX_DECIMALS: u8 = 6;
/// Longest minor-unit name, in bytes.
pub const MAX_MINOR_UNIT_BYTES: usize = 16;

/// The currency every amount on the ledger is in, named in the genesis and never changed.
/// Amounts are integers in the minor unit (`10^decimals` minor units make one major unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Currency {
    /// ISO 4217 code: three upper-case ASCII letters.
    pub code: String,
    /// Name of the minor unit: 1..=16 lower-case ASCII letters.
    pub minor_unit: String,
    /// 0..=[`MAX_DECIMALS`].
    pub decimals: u8,
}

impl Default for Currency {
    /// Renminbi, counted in fen.
    fn default() -> Self {
        Self { code: "CNY".into(), minor_unit: "fen".into(), decimals: 2 }
    }
}

impl Currency {
    pub fn validate(&self) -> Result<(), String> {
        if self.code.len() != 3 || !self.code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("currency code {:?} must be 3 upper-case letters", self.code));
        }
        let unit_ok = !self.minor_unit.is_empty()
            && self.minor_unit.len() <= MAX_MINOR_UNIT_BYTES
            && self.minor_unit.bytes().all(|b| b.is_ascii_lowercase());
        if !unit_ok {
            return Err(format!(
                "minor unit {:?} must be 1..={MAX_MINOR_UNIT_BYTES} lower-case letters",
                self.minor_unit
            ));
        }
        if self.decimals > MAX_DECIMALS {
            return Err(format!("currency decimals must be 0..={MAX_DECIMALS}"));
        }
        Ok(())
    }
}

/// A participant's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The participant's account key.
    pub owner: PublicKey,
    /// In the currency's minor unit.
    pub balance: u64,
    /// The settlement banks that ever recorded a transfer for it, sorted (they may read it).
    pub banks: Vec<PublicKey>,
    pub updated_height: u64,
}

/// A settlement bank's record of one transfer made off the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankRecord {
    pub bank: PublicKey,
    /// The account key of the participant credited or debited.
    pub account: PublicKey,
    pub kind: BankRecordKind,
    pub amount: u64,
    /// The bank's own identifier of the transfer, used once per bank.
    pub reference: String,
    pub height: u64,
    pub tx_hash: dpx_crypto::Hash,
}

/// The platform's fees: collected at settlement, spent only by governance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Treasury {
    pub balance: u64,
    pub fees_collected: u64,
    pub paid_out: u64,
}

/// Everything banks have recorded: the ledger holds exactly `deposited − withdrawn`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    pub deposited: u64,
    pub withdrawn: u64,
}

impl Supply {
    /// What the ledger holds: balances, escrows and the treasury together.
    pub fn held(&self) -> u64 {
        // Withdrawals are debits of deposited money, so they never exceed the deposits.
        assert!(self.withdrawn <= self.deposited, "more withdrawn than deposited: {self:?}");
        self.deposited - self.withdrawn
    }
}

fn keys_to_pb(keys: &[PublicKey]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_bytes().to_vec()).collect()
}

impl Wire for Currency {
    type Pb = pb::Currency;
    const MAX_BYTES: usize = 64;
    fn to_pb(&self) -> pb::Currency {
        pb::Currency {
            code: self.code.clone(),
            minor_unit: self.minor_unit.clone(),
            decimals: u32::from(self.decimals),
        }
    }
    fn from_pb(p: pb::Currency) -> Result<Self, DecodeError> {
        let c = Self {
            code: p.code,
            minor_unit: p.minor_unit,
            decimals: codec::small(p.decimals, "decimals")?,
        };
        c.validate().map_err(|e| DecodeError::field("currency", e))?;
        Ok(c)
    }
}

impl Wire for Account {
    type Pb = pb::Account;
    const MAX_BYTES: usize = 64 + MAX_ACCOUNT_BANKS * 34;
    fn to_pb(&self) -> pb::Account {
        pb::Account {
            owner: self.owner.to_bytes().to_vec(),
            balance: self.balance,
            banks: keys_to_pb(&self.banks),
            updated_height: self.updated_height,
        }
    }
    fn from_pb(p: pb::Account) -> Result<Self, DecodeError> {
        Ok(Self {
            owner: codec::key(&p.owner, "owner")?,
            balance: p.balance,
            banks: p.banks.iter().map(|b| codec::key(b, "banks")).collect::<Result<_, _>>()?,
            updated_height: p.updated_height,
        })
    }
}

impl Wire for BankRecord {
    type Pb = pb::BankRecord;
    const MAX_BYTES: usize = 256 + MAX_REFERENCE_BYTES;
    fn to_pb(&self) -> pb::BankRecord {
        pb::BankRecord {
            bank: self.bank.to_bytes().to_vec(),
            account: self.account.to_bytes().to_vec(),
            kind: self.kind.code(),
            amount: self.amount,
            reference: self.reference.clone(),
            height: self.height,
            tx_hash: self.tx_hash.0.to_vec(),
        }
    }
    fn from_pb(p: pb::BankRecord) -> Result<Self, DecodeError> {
        Ok(Self {
            bank: codec::key(&p.bank, "bank")?,
            account: codec::key(&p.account, "account")?,
            kind: BankRecordKind::from_wire(p.kind, "kind")?,
            amount: p.amount,
            reference: p.reference,
            height: p.height,
            tx_hash: codec::hash(&p.tx_hash, "tx_hash")?,
        })
    }
}

impl Wire for Treasury {
    type Pb = pb::Treasury;
    const MAX_BYTES: usize = 64;
    fn to_pb(&self) -> pb::Treasury {
        pb::Treasury {
            balance: self.balance,
            fees_collected: self.fees_collected,
            paid_out: self.paid_out,
        }
    }
    fn from_pb(p: pb::Treasury) -> Result<Self, DecodeError> {
        Ok(Self { balance: p.balance, fees_collected: p.fees_collected, paid_out: p.paid_out })
    }
}

impl Wire for Supply {
    type Pb = pb::MoneySupply;
    const MAX_BYTES: usize = 64;
    fn to_pb(&self) -> pb::MoneySupply {
        pb::MoneySupply { deposited: self.deposited, withdrawn: self.withdrawn }
    }
    fn from_pb(p: pb::MoneySupply) -> Result<Self, DecodeError> {
        if p.withdrawn > p.deposited {
            return Err(DecodeError::field("withdrawn", "exceeds deposited"));
        }
        Ok(Self { deposited: p.deposited, withdrawn: p.withdrawn })
    }
}

// ----- reading ------------------------------------------------------------------------------

fn read<T: Wire, S: State + ?Sized>(st: &S, key: &[u8]) -> Result<Option<T>, ContractError> {
    Ok(st.get(key).map(|b| codec::decode(&b)).transpose()?)
}

/// The chain's currency (the default when the genesis named none).
pub fn currency<S: State + ?Sized>(st: &S) -> Result<Currency, ContractError> {
    Ok(read(st, keys::CURRENCY)?.unwrap_or_default())
}

/// The platform fee in force, in basis points (0 until governance sets one).
pub fn platform_fee_bps<S: State + ?Sized>(st: &S) -> Result<u32, ContractError> {
    match st.get(keys::PLATFORM_FEE) {
        None => Ok(0),
        Some(b) => <[u8; 4]>::try_from(b.as_slice())
            .map(u32::from_be_bytes)
            .ok()
            .filter(|bps| *bps <= MAX_FEE_BASIS_POINTS)
            .ok_or_else(|| ContractError::Corrupt { reason: "platform fee".into() }),
    }
}

pub(crate) fn store_platform_fee<S: State + ?Sized>(st: &mut S, bps: u32) {
    st.put(keys::PLATFORM_FEE.to_vec(), bps.to_be_bytes().to_vec());
}

/// A participant's account, if it ever held money.
pub fn load_account<S: State + ?Sized>(
    st: &S,
    owner: &PublicKey,
) -> Result<Option<Account>, ContractError> {
    read(st, &keys::account(owner))
}

/// A participant's balance (0 without an account).
pub fn balance<S: State + ?Sized>(st: &S, owner: &PublicKey) -> Result<u64, ContractError> {
    Ok(load_account(st, owner)?.map_or(0, |a| a.balance))
}

pub fn treasury<S: State + ?Sized>(st: &S) -> Result<Treasury, ContractError> {
    Ok(read(st, keys::TREASURY)?.unwrap_or_default())
}

pub fn supply<S: State + ?Sized>(st: &S) -> Result<Supply, ContractError> {
    Ok(read(st, keys::SUPPLY)?.unwrap_or_default())
}

/// What one stored object holds of the ledger's money: an account's balance, an order's escrow
/// or the treasury's balance; `None` for any other key. An auditor sums it over the whole state
/// and compares with [`supply`]: Σ held = deposited − withdrawn.
pub fn money_in_object(key: &[u8], value: &[u8]) -> Result<Option<u64>, DecodeError> {
    if key.starts_with(keys::PREFIX_ACCOUNT) {
        return codec::decode::<Account>(value).map(|a| Some(a.balance));
    }
    if key.starts_with(keys::PREFIX_ORDER) {
        return codec::decode::<Order>(value).map(|o| Some(o.escrow));
    }
    if key == keys::TREASURY {
        return codec::decode::<Treasury>(value).map(|t| Some(t.balance));
    }
    Ok(None)
}

/// The fee on `amount` at `bps` basis points, rounded down.
pub fn fee(amount: u64, bps: u32) -> u64 {
    assert!(bps <= MAX_FEE_BASIS_POINTS, "fee of {bps} basis points");
    let f = u128::from(amount) * u128::from(bps) / u128::from(MAX_FEE_BASIS_POINTS);
    // f ≤ amount because bps ≤ 10 000.
    u64::try_from(f).expect("a fee never exceeds its amount")
}

// ----- moving money -------------------------------------------------------------------------

/// Add `amount` to `owner`'s balance; returns the new balance. Zero changes nothing.
fn credit<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    owner: &PublicKey,
    amount: u64,
) -> Result<u64, ContractError> {
    let mut a = load_account(&x.st, owner)?.unwrap_or(Account {
        owner: *owner,
        balance: 0,
        banks: Vec::new(),
        updated_height: 0,
    });
    if amount == 0 {
        return Ok(a.balance);
    }
    a.balance = a
        .balance
        .checked_add(amount)
        .ok_or_else(|| ContractError::overflow(format!("balance of {owner} plus {amount}")))?;
    a.updated_height = x.height();
    x.store(keys::account(owner), &a);
    Ok(a.balance)
}

/// Take `amount` from `owner`'s balance (refused if it holds less); returns the new balance.
fn debit<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    owner: &PublicKey,
    amount: u64,
    what: &'static str,
) -> Result<u64, ContractError> {
    let short =
        || ContractError::InsufficientFunds { account: owner.to_hex(), needed: amount, what };
    let mut a = load_account(&x.st, owner)?.ok_or_else(short)?;
    a.balance = a.balance.checked_sub(amount).ok_or_else(short)?;
    a.updated_height = x.height();
    x.store(keys::account(owner), &a);
    Ok(a.balance)
}

/// Remember that `bank` recorded a transfer for `owner` (it may read the account from now on).
fn note_bank<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    owner: &PublicKey,
    bank: &PublicKey,
) -> Result<(), ContractError> {
    let Some(mut a) = load_account(&x.st, owner)? else { return Ok(()) };
    if let Err(at) = a.banks.binary_search(bank) {
        if a.banks.len() >= MAX_ACCOUNT_BANKS {
            return Err(ContractError::conflict(format!(
                "account {owner} already has {MAX_ACCOUNT_BANKS} settlement banks"
            )));
        }
        a.banks.insert(at, *bank);
        x.store(keys::account(owner), &a);
    }
    Ok(())
}

/// The signer's account, which must be an active settlement bank's.
fn bank<S: State + ?Sized>(x: &Exec<'_, S>) -> Result<PublicKey, ContractError> {
    let me = x.me()?;
    if !me.has_role(Role::SettlementBank) {
        return Err(ContractError::forbidden(
            "only settlement banks record deposits and withdrawals",
        ));
    }
    if me.is_barred() {
        return Err(ContractError::forbidden(
            "a suspended or negative-listed settlement bank records nothing",
        ));
    }
    Ok(me.account)
}

/// The participant `key` names: by its account key, or by a key rotated in since.
fn holder<S: State + ?Sized>(
    x: &Exec<'_, S>,
    key: &PublicKey,
) -> Result<Participant, ContractError> {
    if let Some(p) = load_participant(&x.st, key)? {
        return Ok(p);
    }
    if let Some(account) = x.st.get(&keys::key_binding(key)) {
        let account = codec::key(&account, "key binding")?;
        if let Some(p) = load_participant(&x.st, &account)? {
            return Ok(p);
        }
    }
    Err(ContractError::not_found("participant", key))
}

/// A bank's `deposit` or `withdraw`.
pub(crate) fn bank_transfer<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    kind: BankRecordKind,
    account: &PublicKey,
    amount: u64,
    reference: &str,
) -> Result<(), ContractError> {
    let bank = bank(x)?;
    let owner = holder(x, account)?;
    let record_key = keys::bank_record(&bank, reference);
    if x.st.get(&record_key).is_some() {
        return Err(ContractError::conflict(format!(
            "bank {bank} already used reference {reference:?}"
        )));
    }
    let mut supply = supply(&x.st)?;
    let (balance, verb) = match kind {
        BankRecordKind::Deposit => {
            if owner.is_barred() {
                return Err(ContractError::forbidden(format!(
                    "{} is suspended or negative-listed and receives no deposits",
                    owner.account
                )));
            }
            supply.deposited = supply.deposited.checked_add(amount).ok_or_else(|| {
                ContractError::overflow(format!(
                    "ledger deposits {} plus {amount}",
                    supply.deposited
                ))
            })?;
            (credit(x, &owner.account, amount)?, "deposited")
        }
        BankRecordKind::Withdrawal => {
            let b = debit(x, &owner.account, amount, "the withdrawal")?;
            supply.withdrawn = supply.withdrawn.checked_add(amount).ok_or_else(|| {
                ContractError::overflow(format!(
                    "ledger withdrawals {} plus {amount}",
                    supply.withdrawn
                ))
            })?;
            (b, "withdrawn")
        }
    };
    note_bank(x, &owner.account, &bank)?;
    x.store(keys::SUPPLY.to_vec(), &supply);
    let record = BankRecord {
        bank,
        account: owner.account,
        kind,
        amount,
        reference: reference.to_string(),
        height: x.height(),
        tx_hash: x.tx_hash,
    };
    x.store(record_key, &record);
    x.emit(
        Event::new(&format!("money.{verb}"))
            .attr("bank", bank)
            .attr("account", owner.account)
            .attr("amount", amount)
            .attr("reference", reference)
            .attr("balance", balance),
    );
    Ok(())
}

/// Move an accepted order's price from the buyer's balance into escrow and fix the fee.
pub(crate) fn take_escrow<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    o: &mut Order,
) -> Result<(), ContractError> {
    debit(x, &o.buyer, o.price, "the order price, for escrow")?;
    o.escrow = o.price;
    o.fee_basis_points = Some(platform_fee_bps(&x.st)?);
    Ok(())
}

/// What a release of escrow paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Release {
    /// The provider's share before the fee.
    pub share: u64,
    pub fee: u64,
    pub refund: u64,
}

/// Release an order's escrow: `share` to the provider minus the fee (at the rate fixed on the
/// order) to the treasury, the rest back to the buyer. `share` 0 is a full refund.
pub(crate) fn release<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    o: &mut Order,
    share: u64,
) -> Result<Release, ContractError> {
    if share > o.escrow {
        return Err(ContractError::invalid(format!(
            "a provider share of {share} exceeds the escrow of {} held for order {}",
            o.escrow, o.id
        )));
    }
    let bps = o.fee_basis_points.unwrap_or(0);
    let fee = fee(share, bps);
    let refund = o.escrow - share;
    credit(x, &o.provider, share - fee)?;
    credit(x, &o.buyer, refund)?;
    if fee > 0 {
        let mut t = treasury(&x.st)?;
        t.balance =
            t.balance.checked_add(fee).ok_or_else(|| ContractError::overflow("treasury"))?;
        t.fees_collected = t
            .fees_collected
            .checked_add(fee)
            .ok_or_else(|| ContractError::overflow("fees collected"))?;
        x.store(keys::TREASURY.to_vec(), &t);
    }
    o.escrow = 0;
    o.fee_amount = Some(fee);
    o.refund_amount = Some(refund);
    Ok(Release { share, fee, refund })
}

// ----- governance ---------------------------------------------------------------------------

/// Execute an approved `set_platform_fee`.
pub(crate) fn set_platform_fee<S: State + ?Sized>(x: &mut Exec<'_, S>, bps: u32) {
    store_platform_fee(&mut x.st, bps);
    x.emit(Event::new("platform_fee.set").attr("basis_points", bps));
}

/// State checks of a `pay_from_treasury` proposal (when proposed and when executed).
pub(crate) fn check_payout<S: State + ?Sized>(
    x: &Exec<'_, S>,
    account: &PublicKey,
    amount: u64,
) -> Result<(), ContractError> {
    x.must::<Participant>(&keys::participant(account), "participant", account)?;
    let held = treasury(&x.st)?.balance;
    if held < amount {
        return Err(ContractError::InsufficientFunds {
            account: "treasury".into(),
            needed: amount,
            what: "the payout",
        });
    }
    Ok(())
}

/// Execute an approved `pay_from_treasury`: treasury → the participant's account.
pub(crate) fn pay_from_treasury<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    account: &PublicKey,
    amount: u64,
) -> Result<(), ContractError> {
    check_payout(x, account, amount)?;
    let mut t = treasury(&x.st)?;
    t.balance -= amount;
    t.paid_out =
        t.paid_out.checked_add(amount).ok_or_else(|| ContractError::overflow("paid out"))?;
    x.store(keys::TREASURY.to_vec(), &t);
    let balance = credit(x, account, amount)?;
    x.emit(
        Event::new("treasury.paid")
            .attr("account", account)
            .attr("amount", amount)
            .attr("balance", balance),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rounds_down_and_never_exceeds_the_amount() {
        assert_eq!(fee(10_000, 250), 250);
        assert_eq!(fee(999, 250), 24, "24.975 rounds down");
        assert_eq!(fee(1, 9_999), 0);
        assert_eq!(fee(u64::MAX, MAX_FEE_BASIS_POINTS), u64::MAX);
        assert_eq!(fee(u64::MAX, 5_000), u64::MAX / 2);
        assert_eq!(fee(123, 0), 0);
    }

    #[test]
    fn currency_validation() {
        assert!(Currency::default().validate().is_ok());
        let bad = |code: &str, unit: &str, decimals| {
            Currency { code: code.into(), minor_unit: unit.into(), decimals }.validate().is_err()
        };
        assert!(bad("cny", "fen", 2));
        assert!(bad("CNYX", "fen", 2));
        assert!(bad("CNY", "", 2));
        assert!(bad("CNY", "Fen", 2));
        assert!(bad("CNY", "fen", 7));
        assert!(!bad("EUR", "cent", 2));
    }
}
