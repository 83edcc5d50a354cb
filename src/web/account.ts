// Account pages of the reference web app: Calls, Recordings, Earnings and Privacy tabs next to the dial pad.
// They read the owner-only API with the token the user entered (kept in memory; in localStorage only when
// "remember on this device" is ticked; never in a URL). The response types are the server's own (type-only
// imports, erased in the build), so the page cannot drift from the API.
import type { Me } from '../api/me.js';
import type { CallItem } from '../api/calls.js';
import type { EarningsBody } from '../api/earnings.js';
import type { Recording, Grant } from '../api/recordings.js';
import type { Payout } from '../api/payouts.js';
import type { AuditEvent } from '../api/audit.js';
import type { ErrorBody } from '../api/replies.js';
import type { PageOf } from '../api/schemas.js';
import type { Static, TSchema } from '@sinclair/typebox';
import type { ConsentText } from '../api/consent.js';
// The same module instance as the page's <script src="/dialer.js"> (one URL, one module): only its labels.
import { el, REASON_LABELS } from './dialer.js';

const REMEMBER_KEY = 'monologue.token';
const TABS = ['dial', 'calls', 'recordings', 'earnings', 'privacy'] as const;
type Tab = (typeof TABS)[number];

const ui = {
  auth: el<HTMLFormElement>('auth'),
  token: el<HTMLInputElement>('token'),
  remember: el<HTMLInputElement>('remember'),
  signout: el<HTMLButtonElement>('signout'),
  tabs: el<HTMLElement>('tabs'),
  callsList: el<HTMLUListElement>('calls-list'),
  callsEmpty: el<HTMLElement>('calls-empty'),
  callsMore: el<HTMLButtonElement>('calls-more'),
  player: el<HTMLAudioElement>('player'),
  recordingsList: el<HTMLUListElement>('recordings-list'),
  recordingsEmpty: el<HTMLElement>('recordings-empty'),
  recordingsMore: el<HTMLButtonElement>('recordings-more'),
  balance: el<HTMLElement>('balance'),
  withdraw: el<HTMLFormElement>('withdraw'),
  withdrawAmount: el<HTMLInputElement>('withdraw-amount'),
  withdrawResult: el<HTMLElement>('withdraw-result'),
  days: el<HTMLTableElement>('days'),
  consentState: el<HTMLElement>('consent-state'),
  consentGive: el<HTMLButtonElement>('consent-give'),
  consentWithdraw: el<HTMLButtonElement>('consent-withdraw'),
  exportBtn: el<HTMLButtonElement>('export'),
  deleteAccount: el<HTMLButtonElement>('delete-account'),
  deleteConfirm: el<HTMLElement>('delete-confirm'),
  deleteYes: el<HTMLButtonElement>('delete-account-yes'),
  deleteNo: el<HTMLButtonElement>('delete-account-no'),
  privacyResult: el<HTMLElement>('privacy-result'),
  auditList: el<HTMLUListElement>('audit-list'),
  auditMore: el<HTMLButtonElement>('audit-more'),
  error: el<HTMLElement>('error'),
};

let token: string | null = null;
const cursors: Record<'calls' | 'recordings' | 'audit', string | null> = { calls: null, recordings: null, audit: null };

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody | null,
  ) {
    super(body?.message ?? `HTTP ${status}`);
  }
}

async function api<T>(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
  if (!token) throw new Error('Enter your access token.');
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }) });
  if (!res.ok) throw new HttpError(res.status, (await res.json().catch(() => null)) as ErrorBody | null);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

function showError(err: unknown): void {
  ui.error.textContent = err instanceof Error ? err.message : String(err);
  ui.error.hidden = false;
}

function clear(node: HTMLElement): void {
  while (node.firstChild) node.firstChild.remove();
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const money = (micros: number): string => `$${(micros / 1_000_000).toFixed(2)}`;
const when = (iso: string): string => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
function duration(seconds: number): string {
  const m = Math.floor(seconds / 60);
  return `${m}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
}
function callSeconds(c: CallItem): number | null {
  if (c.billableSeconds !== null) return c.billableSeconds;
  if (!c.answeredAt || !c.endedAt) return null;
  return Math.round((Date.parse(c.endedAt) - Date.parse(c.answeredAt)) / 1000);
}

// ---------------------------------------------------------------------------------------------
// Tabs

function selectTab(tab: Tab, focus = false): void {
  for (const t of TABS) {
    const button = el<HTMLButtonElement>(`tab-${t}`);
    const on = t === tab;
    button.setAttribute('aria-selected', String(on));
    button.tabIndex = on ? 0 : -1;
    el<HTMLElement>(`panel-${t}`).hidden = !on;
    if (on && focus) button.focus();
  }
  document.body.dataset.tab = tab;
  void load(tab).catch(showError);
}

async function load(tab: Tab): Promise<void> {
  if (!token) return;
  if (tab === 'calls') return loadCalls(true);
  if (tab === 'recordings') return loadRecordings(true);
  if (tab === 'earnings') return loadEarnings();
  if (tab === 'privacy') return loadPrivacy();
}

// ---------------------------------------------------------------------------------------------
// Calls

/**
 * One paged list: the first page (or the next one, by the kept cursor), its rows appended, "Load more"
 * shown while the API has a next page. Returns the page's items.
 */
async function loadPage<S extends TSchema>(key: keyof typeof cursors, path: string, list: HTMLElement, more: HTMLElement, first: boolean, row: (item: Static<S>) => HTMLElement): Promise<Static<S>[]> {
  const cursor = cursors[key];
  const q = first || !cursor ? '' : `&cursor=${encodeURIComponent(cursor)}`;
  const page = await api<PageOf<S>>('GET', `${path}?limit=20${q}`);
  if (first) clear(list);
  for (const item of page.items as Static<S>[]) list.append(row(item));
  cursors[key] = page.nextCursor;
  more.hidden = page.nextCursor === null;
  return page.items as Static<S>[];
}

async function loadCalls(first: boolean): Promise<void> {
  await loadPage<typeof CallItem>('calls', '/v1/calls', ui.callsList, ui.callsMore, first, callRow);
  ui.callsEmpty.hidden = ui.callsList.childElementCount > 0;
}

function callRow(c: CallItem): HTMLLIElement {
  const secs = callSeconds(c);
  const earning = c.earning ? `${money(c.earning.amountMicros)} (${c.earning.state})` : 'no earning';
  return h(
    'li',
    { class: 'item', 'data-call-id': c.id, ...(c.recordingId && { 'data-recording-id': c.recordingId }) },
    h('div', { class: 'item-main' }, h('span', { class: `dir dir-${c.direction}` }, c.direction === 'outbound' ? '↗ Outgoing' : '↙ Incoming'), ' ', h('strong', { class: 'counterpart' }, c.counterpart)),
    h('div', { class: 'item-meta' }, `${when(c.createdAt)} · ${secs === null ? 'not answered' : duration(secs)} · ${c.endReason === null ? 'in progress' : ((REASON_LABELS as Record<string, string>)[c.endReason] ?? c.endReason)}`),
    h('div', { class: 'item-meta' }, `${earning}${c.recordingNote ? ` · ${c.recordingNote}` : ''}`),
  );
}

// ---------------------------------------------------------------------------------------------
// Recordings

async function loadRecordings(first: boolean): Promise<void> {
  await loadPage<typeof Recording>('recordings', '/v1/recordings', ui.recordingsList, ui.recordingsMore, first, recordingRow);
  ui.recordingsEmpty.hidden = ui.recordingsList.childElementCount > 0;
}

function recordingRow(r: Recording): HTMLLIElement {
  const play = h('button', { type: 'button', class: 'play' }, 'Play');
  const download = h('button', { type: 'button', class: 'download' }, 'Download');
  const del = h('button', { type: 'button', class: 'delete danger' }, 'Delete');
  const yes = h('button', { type: 'button', class: 'delete-yes danger' }, 'Yes, delete');
  const no = h('button', { type: 'button', class: 'delete-no' }, 'Cancel');
  const confirm = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion' }, h('p', {}, 'Delete this recording for good?'), h('div', { class: 'row wrap' }, yes, no));
  confirm.hidden = true;
  const row = h(
    'li',
    { class: 'item', 'data-recording-id': r.id },
    h('div', { class: 'item-main' }, h('strong', {}, when(r.createdAt)), ` · ${duration(r.durationMs / 1000)}`),
    h('div', { class: 'item-meta' }, `${r.state} · talk ${duration(r.talkMs / 1000)}`),
    h('div', { class: 'row wrap' }, play, download, del),
    confirm,
  );
  play.addEventListener('click', () => void playRecording(r.id, row).catch(showError));
  download.addEventListener('click', () => void downloadRecording(r.id).catch(showError));
  del.addEventListener('click', () => {
    confirm.hidden = false;
    yes.focus();
  });
  no.addEventListener('click', () => {
    confirm.hidden = true;
    del.focus();
  });
  yes.addEventListener('click', () => void deleteRecording(r.id, row).catch(showError));
  return row;
}

async function playRecording(id: string, row: HTMLElement): Promise<void> {
  const grant = await api<Grant>('POST', `/v1/recordings/${encodeURIComponent(id)}/grants`, { body: { purpose: 'play' } });
  for (const r of ui.recordingsList.querySelectorAll('[data-playing]')) r.removeAttribute('data-playing');
  row.dataset.playing = 'true';
  ui.player.dataset.recordingId = id;
  ui.player.src = grant.url;
  await ui.player.play();
}

async function downloadRecording(id: string): Promise<void> {
  const grant = await api<Grant>('POST', `/v1/recordings/${encodeURIComponent(id)}/grants`, { body: { purpose: 'download' } });
  const a = h('a', { href: grant.url, download: `${id}.ogg` });
  document.body.append(a);
  a.click();
  a.remove();
}

async function deleteRecording(id: string, row: HTMLElement): Promise<void> {
  await api<void>('DELETE', `/v1/recordings/${encodeURIComponent(id)}`);
  if (ui.player.dataset.recordingId === id) {
    ui.player.pause();
    ui.player.removeAttribute('src');
    delete ui.player.dataset.recordingId;
    ui.player.load();
  }
  row.remove();
  ui.recordingsEmpty.hidden = ui.recordingsList.childElementCount > 0;
}

// ---------------------------------------------------------------------------------------------
// Earnings

async function loadEarnings(): Promise<void> {
  const e = await api<EarningsBody>('GET', '/v1/earnings');
  clear(ui.balance);
  const figures: [string, number][] = [
    ['Available', e.balance.availableMicros],
    ['Pending', e.balance.pendingMicros],
    ['Paid', e.balance.paidMicros],
    ['Withdrawable now', e.balance.withdrawableMicros],
  ];
  for (const [label, micros] of figures) ui.balance.append(h('div', {}, h('dt', {}, label), h('dd', {}, money(micros))));
  const body = ui.days.tBodies[0]!;
  clear(body);
  if (e.days.length === 0) body.append(h('tr', {}, h('td', { colspan: '4', class: 'help' }, 'No settled calls yet.')));
  for (const d of e.days) body.append(h('tr', {}, h('td', {}, d.day), h('td', {}, String(d.calls)), h('td', {}, money(d.creditedMicros)), h('td', {}, money(d.heldMicros))));
  if (!ui.withdrawAmount.value && e.balance.withdrawableMicros > 0) ui.withdrawAmount.value = (e.balance.withdrawableMicros / 1_000_000).toFixed(2);
}

async function requestWithdrawal(): Promise<void> {
  const amountMicros = Math.round(Number(ui.withdrawAmount.value) * 1_000_000);
  if (!Number.isSafeInteger(amountMicros) || amountMicros < 1) throw new Error('Enter an amount in dollars, e.g. 5.00.');
  // One key per attempt: a retry of this same request would reuse it; a new click is a new withdrawal.
  const p = await api<Payout>('POST', '/v1/payouts', { body: { amountMicros }, headers: { 'idempotency-key': crypto.randomUUID() } });
  ui.withdrawResult.textContent = `Withdrawal of ${money(p.amountMicros)} requested (${p.state}).`;
  await loadEarnings();
}

// ---------------------------------------------------------------------------------------------
// Privacy

/** The deployment's current consent text: only this version can be accepted, and only it is recorded under. */
let currentConsent: ConsentText | undefined;

function showConsent(m: Me): void {
  const outdated = m.consent !== null && currentConsent !== undefined && m.consent.version !== currentConsent.version;
  ui.consentState.textContent = !m.consent
    ? 'You have not given consent: your calls are not recorded.'
    : outdated
      ? `You consented to version ${m.consent.version} on ${when(m.consent.at)}; the current version is ${currentConsent!.version}. Your calls are not recorded until you accept it.`
      : `You consented to recording (version ${m.consent.version}) on ${when(m.consent.at)}.`;
  ui.consentState.dataset.consent = !m.consent ? 'none' : outdated ? 'outdated' : 'given';
  ui.consentGive.hidden = m.consent !== null && !outdated;
  ui.consentGive.textContent = currentConsent ? `Give consent (version ${currentConsent.version})` : 'Give consent';
  ui.consentGive.title = currentConsent?.text ?? '';
  ui.consentWithdraw.hidden = m.consent === null;
}

async function loadPrivacy(): Promise<void> {
  currentConsent = await api<ConsentText>('GET', '/v1/consent/current');
  showConsent(await api<Me>('GET', '/v1/me'));
  await loadAudit(true);
}

async function loadAudit(first: boolean): Promise<void> {
  const items = await loadPage<typeof AuditEvent>('audit', '/v1/me/audit', ui.auditList, ui.auditMore, first, (a) =>
    h('li', { class: 'item' }, h('div', { class: 'item-main' }, `${a.actor}: ${a.action}`), h('div', { class: 'item-meta' }, `${when(a.at)}${a.detail ? ` · ${a.detail}` : ''}`)),
  );
  if (first && items.length === 0) ui.auditList.append(h('li', { class: 'help' }, 'Nobody has accessed your recordings.'));
}

async function exportData(): Promise<void> {
  if (!token) return;
  const res = await fetch('/v1/me/export', { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new HttpError(res.status, (await res.json().catch(() => null)) as ErrorBody | null);
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: 'monologue-export.json' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  ui.privacyResult.textContent = 'Your data was exported.';
}

async function deleteAccount(): Promise<void> {
  await api<void>('DELETE', '/v1/me');
  signOut();
  ui.error.textContent = 'Your account was deleted.';
  ui.error.hidden = false;
}

// ---------------------------------------------------------------------------------------------
// Token

function signIn(value: string): void {
  const changed = value !== token;
  token = value;
  if (ui.remember.checked) localStorage.setItem(REMEMBER_KEY, value);
  else localStorage.removeItem(REMEMBER_KEY);
  ui.tabs.hidden = false;
  ui.signout.hidden = false;
  if (changed) {
    const current = TABS.find((t) => el(`tab-${t}`).getAttribute('aria-selected') === 'true') ?? 'dial';
    selectTab(current);
  }
}

function signOut(): void {
  token = null;
  localStorage.removeItem(REMEMBER_KEY);
  for (const list of [ui.callsList, ui.recordingsList, ui.auditList, ui.balance]) clear(list);
  ui.player.removeAttribute('src');
  ui.tabs.hidden = true;
  ui.signout.hidden = true;
  ui.token.value = '';
  ui.remember.checked = false;
  selectTab('dial');
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.auth.addEventListener('submit', () => {
  const value = ui.token.value.trim();
  if (value) signIn(value);
});
ui.remember.addEventListener('change', () => {
  if (!ui.remember.checked) localStorage.removeItem(REMEMBER_KEY);
  else if (token) localStorage.setItem(REMEMBER_KEY, token);
});
ui.signout.addEventListener('click', () => {
  if (ui.token.disabled) ui.auth.requestSubmit(); // the dialer disconnects first
  signOut();
});
ui.tabs.addEventListener('click', (event) => {
  const id = (event.target as HTMLElement).closest('[role="tab"]')?.id;
  const tab = TABS.find((t) => `tab-${t}` === id);
  if (tab) selectTab(tab);
});
ui.tabs.addEventListener('keydown', (event) => {
  // Arrow keys move between tabs (WAI-ARIA tabs pattern); Tab leaves the tab list.
  const current = TABS.findIndex((t) => el(`tab-${t}`).getAttribute('aria-selected') === 'true');
  const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
  if (!step) return;
  event.preventDefault();
  selectTab(TABS[(current + step + TABS.length) % TABS.length]!, true);
});
ui.callsMore.addEventListener('click', () => void loadCalls(false).catch(showError));
ui.recordingsMore.addEventListener('click', () => void loadRecordings(false).catch(showError));
ui.auditMore.addEventListener('click', () => void loadAudit(false).catch(showError));
ui.withdraw.addEventListener('submit', (event) => {
  event.preventDefault();
  void requestWithdrawal().catch((err: unknown) => {
    ui.withdrawResult.textContent = err instanceof Error ? err.message : String(err);
  });
});
ui.consentGive.addEventListener('click', () => {
  // The version is the one the server publishes now (re-read: it may have changed since the tab opened).
  void api<ConsentText>('GET', '/v1/consent/current')
    .then((c) => {
      currentConsent = c;
      return api<Me>('PUT', '/v1/me/consent', { body: { version: c.version } });
    })
    .then(showConsent)
    .catch(showError);
});
ui.consentWithdraw.addEventListener('click', () => {
  void api<Me>('DELETE', '/v1/me/consent').then(showConsent).catch(showError);
});
ui.exportBtn.addEventListener('click', () => void exportData().catch(showError));
ui.deleteAccount.addEventListener('click', () => {
  ui.deleteConfirm.hidden = false;
  ui.deleteYes.focus();
});
ui.deleteNo.addEventListener('click', () => {
  ui.deleteConfirm.hidden = true;
  ui.deleteAccount.focus();
});
ui.deleteYes.addEventListener('click', () => void deleteAccount().catch(showError));

const remembered = localStorage.getItem(REMEMBER_KEY);
if (remembered) {
  ui.token.value = remembered;
  ui.remember.checked = true;
  signIn(remembered);
}
