export { computeEarning, prorate, utcDay, HOLDING_FLAGS } from './rules.js';
export type { CallMeasurements, CallEarning, PayoutFlag, PayoutsConfig } from './rules.js';
export { createLedger, callEntryKey } from './ledger.js';
export type { Ledger, LedgerEntry, CreditInput, CreditResult, Balance } from './ledger.js';
export { createSettler } from './settle.js';
export type { Settler, SettlerOptions, SettleInput, SettleResult, Settlement, ReviewResult, FlagResult } from './settle.js';
export { createEarnings } from './earnings.js';
export type { Earnings, DailyTotal, CallEarningRow } from './earnings.js';
