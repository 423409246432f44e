"""The dpx wire schema (the .proto files) for the codec in ``proto.py``, and the enumeration
tables of SPEC.md §9. Field kinds refine ``bytes``: ``key`` (32 bytes, a valid ed25519 key,
§3.1), ``hash`` (32 bytes), ``sig`` (64 bytes); those are checked when decoding strictly.
"""

from __future__ import annotations

from .proto import ENUMS, Field as F, message

# ---------------------------------------------------------------- enums (SPEC.md §9)
ENUMS.update({
    "Role": {1: "agency", 2: "operator", 3: "provider", 4: "consumer", 5: "regulator",
             6: "auditor", 7: "rating_body", 8: "registrar", 9: "settlement_bank",
             10: "compute_node"},
    "SubjectStatus": {0: "active"},
    "ListStatus": {0: "normal", 1: "whitelisted", 2: "negative_listed"},
    "Category": {1: "data_service", 2: "software", 3: "report", 4: "other"},
    "DemandStatus": {0: "open", 1: "awarded", 2: "closed"},
    "OrderStatus": {0: "ordered", 1: "accepted", 2: "delivered", 3: "confirmed", 4: "settled",
                    5: "cancelled", 6: "disputed"},
    "GrantState": {0: "issued", 1: "consumed", 2: "revoked", 3: "expired"},
    "Stage": {1: "processed", 2: "shared_onward", 3: "destroyed", 4: "collected", 5: "transmitted",
              6: "stored"},
    "Verdict": {1: "confirmed", 2: "rejected"},
    "ProposalStatus": {0: "open", 1: "executed"},
    "Code": {0: "ok", 1: "invalid", 2: "denied", 3: "failed", 4: "undecodable"},
    "VoteKind": {1: "prevote", 2: "precommit"},
    "BankRecordKind": {1: "deposit", 2: "withdrawal"},
    "JobStatus": {0: "requested", 1: "attested", 2: "received", 3: "cancelled", 4: "rejected"},
})

# ---------------------------------------------------------------- dpx.contracts.v1
message("SignedTransaction", F(1, "body", "bytes"), F(2, "signer", "key"), F(3, "signature", "sig"))
message("TransactionBody", F(1, "chain_id", "string"), F(2, "nonce", "uint64"),
        F(3, "expiry_height", "uint64", "opt"), F(4, "op", "msg:Operation"))
message("Grant", F(1, "serial", "hash"), F(2, "subject", "hash"), F(3, "key", "key"),
        F(4, "epoch", "uint64"), F(5, "consumer", "key"), F(6, "product", "hash"),
        F(7, "purpose", "string"), F(8, "expires_at_ms", "uint64"))
message("SignedGrant", F(1, "grant", "msg:Grant"), F(2, "signature", "sig"))
message("GrantRef", F(1, "inline", "msg:SignedGrant", "oneof", "kind"),
        F(2, "id", "hash", "oneof", "kind"))
message("ProductConditions", F(1, "min_consumer_rating", "uint32"), F(2, "whitelist_only", "bool"),
        F(3, "purposes", "string", "rep"))
message("ProductSpec", F(1, "name", "string"), F(2, "category", "enum:Category"),
        F(3, "domain", "string"), F(4, "grade", "uint32"), F(5, "price", "uint64"),
        F(6, "terms_hash", "hash"), F(7, "conditions", "msg:ProductConditions"),
        F(8, "retention_days", "uint32", "opt"))
message("ValidatorChange", F(1, "key", "key"), F(2, "power", "uint64"), F(3, "name", "string"))
message("Params", F(1, "max_block_bytes", "uint64"), F(2, "max_block_txs", "uint32"),
        F(3, "max_tx_bytes", "uint32"), F(4, "validator_update_delay", "uint64"),
        F(5, "proposal_ttl_blocks", "uint64"), F(6, "max_policy_bytes", "uint32"),
        F(7, "purposes", "msg:Purpose", "rep"), F(8, "grade4_grant_lifetime_ms_max", "uint64"))
message("Purpose", F(1, "code", "string"), F(2, "description", "string"), F(3, "max_grade", "uint32"))
message("ProposalAction", F(1, "set_policies", "string", "oneof", "kind", json_key="text"),
        F(2, "update_validators", "msg:ValidatorUpdate", "oneof", "kind"),
        F(3, "set_params", "msg:Params", "oneof", "kind"),
        F(4, "admit_agency", "msg:AgencyAdmission", "oneof", "kind"),
        F(5, "admit_registrar", "msg:AgencyAdmission", "oneof", "kind"),
        F(6, "suspend_agency", "msg:AgencySuspension", "oneof", "kind"),
        F(7, "reinstate_agency", "key", "oneof", "kind", json_key="key"),
        F(8, "set_agency_list_status", "msg:AgencyListStatus", "oneof", "kind"),
        F(9, "admit_settlement_bank", "msg:AgencyAdmission", "oneof", "kind"),
        F(10, "set_platform_fee", "uint32", "oneof", "kind", json_key="basis_points"),
        F(11, "pay_from_treasury", "msg:TreasuryPayout", "oneof", "kind"),
        F(12, "admit_compute_node", "msg:AgencyAdmission", "oneof", "kind"))
message("TreasuryPayout", F(1, "account", "key"), F(2, "amount", "uint64"))
message("ValidatorUpdate", F(1, "changes", "msg:ValidatorChange", "rep"),
        F(2, "effective_height", "uint64"))
message("AgencyAdmission", F(1, "key", "key"), F(2, "name", "string"))
message("AgencySuspension", F(1, "key", "key"), F(2, "reason", "string"))
message("AgencyListStatus", F(1, "key", "key"), F(2, "status", "enum:ListStatus"))
message("AttestTarget", F(1, "order", "hash", "oneof", "kind"), F(2, "grant", "hash", "oneof", "kind"))

OPERATIONS = [
    (1, "admit", "Admit"), (2, "rotate_key", "RotateKey"), (3, "set_rating", "SetRating"),
    (4, "set_list_status", "SetListStatus"), (5, "suspend", "Suspend"), (6, "reinstate", "Reinstate"),
    (10, "list_product", "ListProduct"), (11, "update_product", "UpdateProduct"),
    (12, "delist_product", "DelistProduct"),
    (20, "post_demand", "PostDemand"), (21, "respond_demand", "RespondDemand"),
    (22, "award_demand", "AwardDemand"), (23, "close_demand", "CloseDemand"),
    (30, "place_order", "PlaceOrder"), (31, "accept_order", "OrderStep"),
    (32, "deliver_order", "DeliverOrder"), (33, "confirm_order", "OrderStep"),
    (35, "cancel_order", "OrderStep"),
    (36, "dispute_order", "DisputeOrder"), (37, "resolve_dispute", "ResolveDispute"),
    (38, "attest", "Attest"), (39, "review_attestation", "ReviewAttestation"),
    (40, "register_grant", "RegisterGrant"), (41, "use_grant", "UseGrant"),
    (42, "revoke_grant", "RevokeGrant"), (43, "expire_grant", "GrantIdOp"),
    (45, "enrol_subject", "EnrolSubject"), (46, "rotate_subject_key", "RotateSubjectKey"),
    (47, "revoke_all_grants", "RevokeAllGrants"),
    (50, "propose", "Propose"), (51, "approve", "Approve"),
    (60, "deposit", "BankTransfer"), (61, "withdraw", "BankTransfer"),
    (70, "request_job", "RequestJob"), (71, "attest_job", "AttestJob"),
    (72, "confirm_job", "ConfirmJob"), (73, "cancel_job", "JobStep"), (74, "reject_job", "RejectJob"),
]
OPERATION_MESSAGE = {name: msg for _n, name, msg in OPERATIONS}
message("Operation", *[F(n, name, "msg:" + msg, "oneof", "kind") for n, name, msg in OPERATIONS])

message("Admit", F(1, "key", "key"), F(2, "name", "string"), F(3, "roles", "enum:Role", "rep"))
message("RotateKey", F(1, "new_key", "key"), F(2, "new_key_signature", "sig"))
message("SetRating", F(1, "participant", "key"), F(2, "rating", "uint32"))
message("SetListStatus", F(1, "participant", "key"), F(2, "status", "enum:ListStatus"))
message("Suspend", F(1, "participant", "key"), F(2, "reason", "string"))
message("Reinstate", F(1, "participant", "key"))
message("ListProduct", F(1, "spec", "msg:ProductSpec"))
message("UpdateProduct", F(1, "product", "hash"), F(2, "spec", "msg:ProductSpec"))
message("DelistProduct", F(1, "product", "hash"))
message("PostDemand", F(1, "title", "string"), F(2, "domain", "string"), F(3, "budget", "uint64"),
        F(4, "description_hash", "hash"), F(6, "deadline_ms", "uint64", "opt"))
message("RespondDemand", F(1, "demand", "hash"), F(2, "product", "hash", "opt"),
        F(3, "price", "uint64"), F(4, "proposal_hash", "hash"))
message("AwardDemand", F(1, "demand", "hash"), F(2, "responder", "key"))
message("CloseDemand", F(1, "demand", "hash"))
message("PlaceOrder", F(1, "product", "hash"), F(2, "grant", "msg:GrantRef", "opt"),
        F(3, "purpose", "string"), F(4, "demand", "hash", "opt"))
message("OrderStep", F(1, "order", "hash"))
message("DeliverOrder", F(1, "order", "hash"), F(2, "delivery_hash", "hash"))
message("DisputeOrder", F(1, "order", "hash"), F(2, "reason_hash", "hash"))
message("ResolveDispute", F(1, "order", "hash"), F(2, "settle_amount", "uint64", "opt"))
message("Attest", F(1, "target", "msg:AttestTarget"), F(2, "stage", "enum:Stage"), F(3, "hash", "hash"))
message("ReviewAttestation", F(1, "target", "msg:AttestTarget"), F(2, "seq", "uint32"),
        F(3, "verdict", "enum:Verdict"), F(4, "reason_hash", "hash"))
message("RegisterGrant", F(1, "grant", "msg:SignedGrant"))
message("UseGrant", F(1, "grant", "msg:GrantRef"), F(2, "product", "hash"), F(3, "purpose", "string"),
        F(4, "request_hash", "hash"), F(5, "subject", "hash"))
message("GrantIdOp", F(1, "id", "hash"))
message("RevokeGrant", F(1, "serial", "hash"))
message("EnrolSubject", F(1, "subject_id", "hash"), F(2, "subject_key", "key"))
message("RotateSubjectKey", F(1, "subject_id", "hash"), F(2, "new_key", "key"),
        F(3, "new_key_signature", "sig"))
message("RevokeAllGrants")
message("Propose", F(1, "action", "msg:ProposalAction"))
message("Approve", F(1, "proposal", "hash"))
message("BankTransfer", F(1, "account", "key"), F(2, "amount", "uint64"), F(3, "reference", "string"))
message("JobAuthorization", F(1, "grant", "msg:GrantRef", "oneof", "kind"),
        F(2, "order", "hash", "oneof", "kind"))
message("RequestJob", F(1, "products", "hash", "rep"),
        F(2, "authorizations", "msg:JobAuthorization", "rep"), F(3, "compute_node", "key"),
        F(4, "purpose", "string"), F(5, "code_hash", "hash"))
message("AttestJob", F(1, "job", "hash"), F(2, "code_hash", "hash"),
        F(3, "input_commitments", "hash", "rep"), F(4, "result_hash", "hash"),
        F(5, "inputs_destroyed", "bool"))
message("ConfirmJob", F(1, "job", "hash"), F(2, "result_hash", "hash"))
message("JobStep", F(1, "job", "hash"))
message("RejectJob", F(1, "job", "hash"), F(2, "reason_hash", "hash"))

# receipts
message("Attr", F(1, "key", "string"), F(2, "value", "string"))
message("Event", F(1, "kind", "string"), F(2, "attrs", "msg:Attr", "rep"))
message("DecisionReceipt", F(1, "action", "string"), F(2, "principal", "bytes"),
        F(3, "resource", "string"), F(4, "allowed", "bool"), F(5, "policy_version", "uint64"),
        F(6, "policy_hash", "bytes"), F(7, "determining", "string", "rep"), F(8, "reason", "string"))
message("Receipt", F(1, "tx_hash", "bytes"), F(2, "code", "enum:Code"), F(3, "reason", "string"),
        F(4, "events", "msg:Event", "rep"), F(5, "decision", "msg:DecisionReceipt", "opt"))

# stored state (decoded for display; sizes not enforced)
message("Participant", F(1, "account", "bytes"), F(2, "current_key", "bytes"), F(3, "name", "string"),
        F(4, "roles", "enum:Role", "rep"), F(5, "rating", "uint32"), F(6, "list_status", "enum:ListStatus"),
        F(7, "suspended", "bool"), F(8, "suspension_reason", "string"), F(9, "admitted_by", "bytes"),
        F(10, "admitted_height", "uint64"), F(11, "updated_height", "uint64"))
message("Product", F(1, "id", "bytes"), F(2, "provider", "bytes"), F(3, "spec", "msg:ProductSpec"),
        F(4, "listed", "bool"), F(5, "listed_height", "uint64"), F(6, "updated_height", "uint64"),
        F(7, "version", "uint32"))
message("Demand", F(1, "id", "bytes"), F(2, "poster", "bytes"), F(3, "title", "string"),
        F(4, "domain", "string"), F(5, "budget", "uint64"), F(6, "description_hash", "bytes"),
        F(8, "status", "enum:DemandStatus"),
        F(9, "responses", "uint32"), F(10, "awarded_to", "bytes", "opt"),
        F(11, "posted_height", "uint64"), F(12, "updated_height", "uint64"),
        F(13, "deadline_ms", "uint64", "opt"))
message("DemandResponse", F(1, "demand", "bytes"), F(2, "responder", "bytes"), F(3, "product", "bytes", "opt"),
        F(4, "price", "uint64"), F(5, "proposal_hash", "bytes"), F(6, "height", "uint64"))
message("Order", F(1, "id", "bytes"), F(2, "product", "bytes"), F(3, "buyer", "bytes"),
        F(4, "provider", "bytes"), F(5, "price", "uint64"), F(6, "status", "enum:OrderStatus"),
        F(7, "delivery_hash", "bytes", "opt"), F(8, "settlement_amount", "uint64", "opt"),
        F(9, "dispute_reason_hash", "bytes", "opt"), F(10, "grant", "bytes", "opt"),
        F(11, "demand", "bytes", "opt"), F(12, "purpose", "string"), F(13, "ordered_height", "uint64"),
        F(14, "updated_height", "uint64"), F(15, "escrow", "uint64"),
        F(16, "fee_basis_points", "uint32", "opt"), F(17, "fee_amount", "uint64", "opt"),
        F(18, "refund_amount", "uint64", "opt"), F(19, "terms_hash", "bytes"))
message("GrantRecord", F(1, "grant", "msg:SignedGrant", "opt"), F(2, "subject", "bytes"),
        F(3, "state", "enum:GrantState"), F(4, "state_height", "uint64"), F(5, "registered_height", "uint64"),
        F(6, "state_time_ms", "uint64"))
message("UsageReceipt", F(1, "grant", "bytes"), F(2, "consumer", "bytes"), F(3, "product", "bytes"),
        F(4, "purpose", "string"), F(5, "height", "uint64"), F(6, "request_hash", "bytes"),
        F(7, "tx_hash", "bytes"), F(8, "subject", "bytes"), F(9, "time_ms", "uint64"))
message("Subject", F(1, "id", "bytes"), F(2, "key", "bytes"), F(3, "registrar", "bytes"),
        F(4, "enrolled_height", "uint64"), F(5, "enrolled_time_ms", "uint64"),
        F(6, "grant_epoch", "uint64"), F(7, "status", "enum:SubjectStatus"),
        F(8, "updated_height", "uint64"))
message("Attestation", F(1, "target", "msg:AttestTarget"), F(2, "stage", "enum:Stage"), F(3, "hash", "bytes"),
        F(4, "attester", "bytes"), F(5, "height", "uint64"), F(6, "tx_hash", "bytes"), F(7, "seq", "uint32"),
        F(8, "review", "msg:Review", "opt"))
message("Review", F(1, "reviewer", "bytes"), F(2, "verdict", "enum:Verdict"), F(3, "reason_hash", "bytes"),
        F(4, "height", "uint64"))
message("DestructionDue", F(1, "target", "msg:AttestTarget"), F(2, "due_ms", "uint64"),
        F(3, "queued_height", "uint64"), F(4, "overdue_height", "uint64", "opt"), F(5, "reopened", "bool"),
        F(6, "holder", "bytes"))
message("JobAuthority", F(1, "grant", "bytes", "oneof", "kind"), F(2, "order", "bytes", "oneof", "kind"))
message("Job", F(1, "id", "bytes"), F(2, "consumer", "bytes"), F(3, "compute_node", "bytes"),
        F(4, "products", "bytes", "rep"), F(5, "providers", "bytes", "rep"),
        F(6, "authorities", "msg:JobAuthority", "rep"), F(7, "purpose", "string"),
        F(8, "code_hash", "bytes"), F(9, "status", "enum:JobStatus"),
        F(10, "requested_height", "uint64"), F(11, "requested_time_ms", "uint64"),
        F(12, "input_commitments", "bytes", "rep"), F(13, "result_hash", "bytes", "opt"),
        F(14, "inputs_destroyed", "bool"), F(15, "attested_height", "uint64", "opt"),
        F(16, "attestation_tx", "bytes", "opt"), F(17, "received_height", "uint64", "opt"),
        F(18, "reject_reason_hash", "bytes", "opt"), F(19, "updated_height", "uint64"))
message("Proposal", F(1, "id", "bytes"), F(2, "proposer", "bytes"), F(3, "action", "msg:ProposalAction"),
        F(4, "approvals", "uint32"), F(5, "status", "enum:ProposalStatus"), F(6, "created_height", "uint64"),
        F(7, "expiry_height", "uint64"), F(8, "decided_height", "uint64"))
message("PolicySetRecord", F(1, "version", "uint64"), F(2, "text", "string"), F(3, "hash", "bytes"),
        F(4, "height", "uint64"))
message("Validator", F(1, "key", "bytes"), F(2, "power", "uint64"), F(3, "name", "string"))
message("ValidatorSet", F(1, "validators", "msg:Validator", "rep"))
message("Currency", F(1, "code", "string"), F(2, "minor_unit", "string"), F(3, "decimals", "uint32"))
message("Account", F(1, "owner", "bytes"), F(2, "balance", "uint64"), F(3, "banks", "bytes", "rep"),
        F(4, "updated_height", "uint64"))
message("BankRecord", F(1, "bank", "bytes"), F(2, "account", "bytes"), F(3, "kind", "enum:BankRecordKind"),
        F(4, "amount", "uint64"), F(5, "reference", "string"), F(6, "height", "uint64"),
        F(7, "tx_hash", "bytes"))
message("Treasury", F(1, "balance", "uint64"), F(2, "fees_collected", "uint64"), F(3, "paid_out", "uint64"))
message("MoneySupply", F(1, "deposited", "uint64"), F(2, "withdrawn", "uint64"))

# ---------------------------------------------------------------- dpx.ledger.v1
message("Header", F(1, "chain_id", "string"), F(2, "height", "uint64"), F(3, "time_ms", "uint64"),
        F(4, "proposer", "key"), F(5, "parent_id", "hash"), F(6, "parent_certificate_hash", "hash"),
        F(7, "tx_root", "hash"), F(8, "state_root", "hash"), F(9, "validator_set_hash", "hash"),
        F(10, "prev_receipts_hash", "hash"))
message("Block", F(1, "header", "msg:Header"), F(2, "txs", "bytes", "rep"))
message("MerkleProof", F(1, "index", "uint64"), F(2, "leaf_count", "uint64"), F(3, "siblings", "hash", "rep"))
message("ProofLeaf", F(1, "key_hash", "hash"), F(2, "value_hash", "hash"))
message("ProofInternal", F(1, "left", "hash"), F(2, "right", "hash"))
message("ProofSibling", F(1, "null", "bool", "oneof", "node"),
        F(2, "internal", "msg:ProofInternal", "oneof", "node"),
        F(3, "leaf", "msg:ProofLeaf", "oneof", "node"))
message("StateProof", F(1, "leaf", "msg:ProofLeaf"), F(2, "siblings", "msg:ProofSibling", "rep"))

# ---------------------------------------------------------------- dpx.consensus.v1
message("ConsensusProposal", F(1, "height", "uint64"), F(2, "round", "uint32"), F(3, "value_id", "hash"),
        F(4, "pol_round", "uint32", "opt"), F(5, "proposer", "uint32"), F(6, "signature", "sig"))
message("Vote", F(1, "kind", "enum:VoteKind"), F(2, "height", "uint64"), F(3, "round", "uint32"),
        F(4, "value_id", "bytes"), F(5, "validator", "uint32"), F(6, "signature", "sig"))
message("SignedMessage", F(1, "proposal", "msg:ConsensusProposal", "oneof", "msg"),
        F(2, "vote", "msg:Vote", "oneof", "msg"))
message("CommitSignature", F(1, "validator", "uint32"), F(2, "signature", "sig"))
message("Certificate", F(1, "height", "uint64"), F(2, "round", "uint32"), F(3, "value_id", "hash"),
        F(4, "signatures", "msg:CommitSignature", "rep"))
