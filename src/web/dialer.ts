// Monologue reference web dialer. No framework: one WebSocket to /v1/signal, one
// RTCPeerConnection per call, complete SDP (no trickle ICE). The server's messages are the
// service's own types (a type-only import, erased in the build), so the page cannot drift from them.
import type { ServerMessage } from '../signaling/messages.js';
import type { ClientMessage } from '../signaling/protocol.js';

export type CallState = 'idle' | 'calling' | 'ringing' | 'active' | 'incoming' | 'ended';

/** Test-only introspection hook (harmless: it exposes nothing the page does not already hold). */
export interface MonologueDebug {
  callId: string | null;
  pc: RTCPeerConnection | null;
  remoteStream: MediaStream | null;
  localStream: MediaStream | null;
  lastEnded: { callId: string | null; reason: string } | null;
  userId: string | null;
  /** Send `call.dtmf` for the current call as it is, unchecked: tests drive the server's refusals through it. */
  sendDtmf: (digits: string) => boolean;
}

declare global {
  interface Window {
    monologueDebug: MonologueDebug;
  }
}

type EndReason = Extract<ServerMessage, { type: 'call.ended' }>['reason'];

interface Call {
  ref: string;
  callId: string | null;
  direction: 'outbound' | 'inbound';
  peer: string;
  pc: RTCPeerConnection | null;
  localStream: MediaStream | null;
  remoteStream: MediaStream;
  finished: boolean;
  answeredAt: number | null;
  /** The WebRTC answer is applied (early media came first): `call.answered` must not apply it again. */
  answerApplied: boolean;
  /** The far end holds the call. */
  held: boolean;
}

const AUDIO_CONSTRAINTS: MediaStreamConstraints = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  video: false,
};
const ICE_GATHERING_TIMEOUT_MS = 2000;
const PING_INTERVAL_MS = 25_000;
const E164 = /^\+[1-9][0-9]{1,14}$/;
/** Keys the in-call pad sends (the server takes 0-9 * # A-D; the pad has no A-D). */
const DTMF_KEY = /^[0-9*#]$/;
/** Digits of the current call shown under the pad. */
const DTMF_SHOWN = 24;

const STATE_LABELS: Record<CallState, (peer: string) => string> = {
  idle: () => 'Idle',
  calling: (peer) => `Calling ${peer}…`,
  ringing: (peer) => `Ringing ${peer}…`,
  active: (peer) => `In call with ${peer}`,
  incoming: (peer) => `Incoming call from ${peer}`,
  ended: () => 'Call ended',
};

export const REASON_LABELS: Record<EndReason, string> = {
  'local-hangup': 'you hung up',
  'remote-hangup': 'the other party hung up',
  cancelled: 'cancelled',
  rejected: 'rejected',
  busy: 'busy',
  'not-found': 'number not found',
  'no-answer': 'no answer',
  declined: 'declined',
  unavailable: 'unavailable',
  'auth-failed': 'authentication failed',
  failed: 'failed',
  'dialer-disconnected': 'connection lost',
  'media-failed': 'media failed',
  'media-timeout': 'no audio from either side',
  'session-expired': 'the call was lost (session expired)',
  'max-duration': 'maximum call length reached',
  shutdown: 'server shutting down',
};

// ---------------------------------------------------------------------------------------------
// Elements

/** The page element with this id; a missing one is a build mistake, said at once. */
export function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

const ui = {
  authForm: el<HTMLFormElement>('auth'),
  token: el<HTMLInputElement>('token'),
  connect: el<HTMLButtonElement>('connect'),
  status: el<HTMLParagraphElement>('status'),
  number: el<HTMLInputElement>('number'),
  backspace: el<HTMLButtonElement>('backspace'),
  pad: el<HTMLDivElement>('pad'),
  call: el<HTMLButtonElement>('call'),
  hangup: el<HTMLButtonElement>('hangup'),
  incoming: el<HTMLDivElement>('incoming'),
  incomingFrom: el<HTMLElement>('incoming-from'),
  answer: el<HTMLButtonElement>('answer'),
  reject: el<HTMLButtonElement>('reject'),
  state: el<HTMLParagraphElement>('state'),
  timer: el<HTMLParagraphElement>('timer'),
  error: el<HTMLParagraphElement>('error'),
  note: el<HTMLParagraphElement>('note'),
  dtmfSent: el<HTMLParagraphElement>('dtmf-sent'),
  remote: el<HTMLAudioElement>('remote'),
  pauseRecording: el<HTMLButtonElement>('pause-recording'),
  rec: el<HTMLParagraphElement>('rec-indicator'),
};

const debug: MonologueDebug = {
  callId: null,
  pc: null,
  remoteStream: null,
  localStream: null,
  lastEnded: null,
  userId: null,
  sendDtmf: (digits) => (call?.callId ? send({ type: 'call.dtmf', callId: call.callId, digits }) : false),
};
window.monologueDebug = debug;

// ---------------------------------------------------------------------------------------------
// Session state

let socket: WebSocket | null = null;
let token: string | null = null; // kept in memory only
let ready = false;
let pingTimer: ReturnType<typeof setInterval> | null = null;
let call: Call | null = null;
let pendingIncoming: { callId: string; from: string; sdp: string } | null = null;
let callState: CallState = 'idle';
let timerHandle: ReturnType<typeof setInterval> | null = null;
/** Refs of calls the user hung up before the server named them: hang up as soon as it does. */
const abandonedRefs = new Set<string>();

// ---------------------------------------------------------------------------------------------
// Signaling

function connect(): void {
  const value = ui.token.value.trim() || token;
  if (!value) {
    showError('Enter your access token.');
    return;
  }
  token = value;
  disconnect();
  clearError();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/v1/signal`);
  socket = ws;
  setStatus('connecting', 'Connecting…');
  ws.addEventListener('open', () => {
    if (socket !== ws) return;
    ws.send(JSON.stringify({ type: 'auth', token: value }));
    pingTimer = setInterval(() => send({ type: 'ping' }), PING_INTERVAL_MS);
  });
  ws.addEventListener('message', (event) => {
    if (socket !== ws || typeof event.data !== 'string') return;
    let msg: ServerMessage;
    try {
      msg = JSON.parse(event.data) as ServerMessage;
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    void handle(msg).catch((err: unknown) => showError(describe(err)));
  });
  ws.addEventListener('close', (event) => {
    if (socket !== ws) return;
    socket = null;
    const wasReady = ready;
    ready = false;
    stopPing();
    endCall('dialer-disconnected', false);
    setStatus(
      wasReady ? 'disconnected' : 'error',
      wasReady ? 'Disconnected' : `Could not connect${event.reason ? `: ${event.reason}` : ''}`,
    );
    refreshControls();
  });
}

function disconnect(): void {
  const ws = socket;
  socket = null;
  ready = false;
  stopPing();
  if (ws) {
    endCall('dialer-disconnected', true);
    ws.close(1000, 'bye');
  }
  setStatus('disconnected', 'Disconnected');
  refreshControls();
}

function stopPing(): void {
  if (pingTimer) clearInterval(pingTimer);
  pingTimer = null;
}

function send(msg: Record<string, unknown>): boolean {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(msg));
  return true;
}

async function handle(msg: ServerMessage): Promise<void> {
  switch (msg.type) {
    case 'ready':
      ready = true;
      debug.userId = msg.userId;
      setStatus('ready', 'Connected');
      refreshControls();
      return;
    case 'pong':
      return;
    case 'error':
      return onServerError(msg);
    case 'call.created':
      if (abandonedRefs.delete(msg.ref)) {
        send({ type: 'call.hangup', callId: msg.callId });
        return;
      }
      if (!call || call.ref !== msg.ref) return;
      call.callId = msg.callId;
      debug.callId = msg.callId;
      return;
    case 'call.ringing':
      if (isCurrent(msg.callId) && callState === 'calling') setState('ringing');
      return;
    case 'call.progress': {
      // Early media: the carrier's ringback or announcement plays before the call is answered.
      const current = call;
      if (!current || !isCurrent(msg.callId) || !current.pc || current.answerApplied || current.answeredAt !== null) return;
      current.answerApplied = true;
      await current.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      if (!live(current)) return;
      if (callState === 'calling' || callState === 'ringing') setState('ringing', `Ringing ${current.peer}… (early media)`);
      return;
    }
    case 'call.answered': {
      const current = call;
      if (!current || !isCurrent(msg.callId) || !current.pc || current.answeredAt !== null) return;
      // After early media the server confirms the answer the page already has: a second answer would
      // be refused by the browser (the connection is no longer waiting for one).
      if (!current.answerApplied) {
        current.answerApplied = true;
        await current.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      }
      if (!live(current)) return;
      markActive(current);
      return;
    }
    case 'call.held':
    case 'call.resumed': {
      const current = call;
      if (!current || !isCurrent(msg.callId)) return;
      current.held = msg.type === 'call.held';
      ui.state.dataset.hold = current.held ? 'held' : '';
      if (callState === 'active') setState('active', current.held ? `${current.peer} put the call on hold` : undefined);
      return;
    }
    case 'call.incoming':
      return onIncoming(msg.callId, msg.from, msg.sdp);
    case 'call.ended':
      if (pendingIncoming && pendingIncoming.callId === msg.callId) {
        pendingIncoming = null;
        finish(msg.callId, msg.reason);
        return;
      }
      if (isCurrent(msg.callId)) endCall(msg.reason, false);
      return;
    case 'recording.started':
    case 'recording.resumed':
      if (!isCurrent(msg.callId)) return;
      showNote('Recording your side of the call', 'recording');
      setRecording('recording', 'Recording');
      showPauseButton(msg.callId, false);
      return;
    case 'recording.paused':
      if (!isCurrent(msg.callId)) return;
      showNote('Recording paused: nothing you say is recorded (or paid) until you resume', 'paused');
      setRecording('paused', 'Paused');
      showPauseButton(msg.callId, true);
      return;
    case 'recording.stopped':
      if (isCurrent(msg.callId)) showPauseButton(null, false);
      // A call that goes on unrecorded must say so; a normal stop needs no words.
      if (msg.reason === 'consent-revoked') showNote('Recording stopped: you withdrew your consent. The call goes on unrecorded.', 'warning');
      else if (msg.reason !== 'call-ended') showNote(`Not recorded (${msg.reason})`, 'warning');
      else if (isCurrent(msg.callId)) showNote('', '');
      if (msg.reason !== 'call-ended') setRecording('off', `Not recorded: ${msg.reason}`);
      else setRecording('none', 'Not recording');
      return;
    case 'earnings.updated':
      showNote(`Earned $${(msg.amountMicros / 1_000_000).toFixed(2)} (${msg.state})`, 'earned');
      return;
    default:
      // Types added by later server versions are ignored on purpose.
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Pause / resume the recording (issue 10): one button, shown only while the current call is recorded.

/** The recorded call the button acts on, and whether its recording is paused; null hides the button. */
let pauseTarget: { callId: string; paused: boolean } | null = null;

function showPauseButton(callId: string | null, paused: boolean): void {
  pauseTarget = callId ? { callId, paused } : null;
  ui.pauseRecording.hidden = pauseTarget === null;
  ui.pauseRecording.textContent = paused ? 'Resume recording' : 'Pause recording';
  ui.pauseRecording.setAttribute('aria-pressed', String(paused));
}

function togglePause(): void {
  if (!pauseTarget) return;
  const msg: Extract<ClientMessage, { type: 'recording.pause' | 'recording.resume' }> = {
    type: pauseTarget.paused ? 'recording.resume' : 'recording.pause',
    callId: pauseTarget.callId,
  };
  send(msg); // the button changes when the server answers recording.paused / recording.resumed
}

/** The recording indicator: `recording`, `paused`, `off` (not recorded, and why) or `none` (no call). */
function setRecording(kind: 'recording' | 'paused' | 'off' | 'none', text: string): void {
  ui.rec.dataset.rec = kind;
  ui.rec.textContent = text;
}

function showNote(text: string, kind: string): void {
  ui.note.textContent = text;
  ui.note.dataset.kind = kind;
  ui.note.hidden = text === '';
}

function onServerError(msg: { code: string; message: string; ref?: string }): void {
  showError(`${msg.message || msg.code}`);
  if (!ready) {
    // Authentication failed: the server closes the socket; say why.
    setStatus('error', msg.code === 'auth-failed' || msg.code === 'unauthorized' ? 'Token rejected' : 'Error');
    return;
  }
  if (call && msg.ref && call.ref === msg.ref) endCall('failed', false);
}

/** True while `c` is the page's call and has not ended (async steps check this after each await). */
function live(c: Call): boolean {
  return call === c && !c.finished;
}

function isCurrent(callId: string): boolean {
  return call !== null && call.callId === callId;
}

// ---------------------------------------------------------------------------------------------
// Calls

async function startCall(): Promise<void> {
  clearError();
  const to = normalizeNumber(ui.number.value);
  if (!E164.test(to)) {
    showError('Enter the number in international format, e.g. +15550001111.');
    return;
  }
  if (!ready || call || pendingIncoming) return;
  ui.number.value = to;
  const current = newCall('outbound', to);
  setState('calling');
  try {
    const pc = await preparePeer(current);
    if (!pc) return;
    await pc.setLocalDescription(await pc.createOffer());
    const sdp = await completeSdp(pc);
    if (!live(current)) return;
    if (!send({ type: 'call.start', ref: current.ref, to, sdp })) endCall('dialer-disconnected', false);
  } catch (err) {
    if (live(current)) {
      showError(describe(err));
      endCall('failed', false);
    }
  }
}

function onIncoming(callId: string, from: string, sdp: string): void {
  if (call || pendingIncoming) {
    send({ type: 'call.reject', callId }); // one call at a time
    return;
  }
  pendingIncoming = { callId, from, sdp };
  debug.callId = callId;
  ui.incomingFrom.textContent = from;
  setState('incoming');
}

async function answerCall(): Promise<void> {
  const offer = pendingIncoming;
  if (!offer) return;
  pendingIncoming = null;
  clearError();
  const current = newCall('inbound', offer.from);
  current.callId = offer.callId;
  debug.callId = offer.callId;
  setState('calling');
  try {
    const pc = await preparePeer(current);
    if (!pc) return;
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    const sdp = await completeSdp(pc);
    if (!live(current)) return;
    if (!send({ type: 'call.accept', callId: offer.callId, sdp })) {
      endCall('dialer-disconnected', false);
      return;
    }
    markActive(current);
  } catch (err) {
    if (live(current)) {
      showError(describe(err));
      send({ type: 'call.reject', callId: offer.callId });
      endCall('failed', false);
    }
  }
}

function rejectCall(): void {
  const offer = pendingIncoming;
  if (!offer) return;
  pendingIncoming = null;
  send({ type: 'call.reject', callId: offer.callId });
  finish(offer.callId, 'rejected');
}

function hangup(): void {
  if (pendingIncoming) return rejectCall();
  if (!call) return;
  if (call.callId) send({ type: 'call.hangup', callId: call.callId });
  endCall('local-hangup', true);
}

function newCall(direction: Call['direction'], peer: string): Call {
  const current: Call = {
    ref: randomRef(),
    callId: null,
    direction,
    peer,
    pc: null,
    localStream: null,
    remoteStream: new MediaStream(),
    finished: false,
    answeredAt: null,
    answerApplied: false,
    held: false,
  };
  call = current;
  setRecording('none', 'Not recording');
  debug.callId = null;
  debug.remoteStream = current.remoteStream;
  ui.remote.srcObject = current.remoteStream;
  return current;
}

/** Microphone + peer connection for `current`; null if the call ended meanwhile. */
async function preparePeer(current: Call): Promise<RTCPeerConnection | null> {
  const stream = await navigator.mediaDevices.getUserMedia(AUDIO_CONSTRAINTS);
  if (!live(current)) {
    stopStream(stream);
    return null;
  }
  current.localStream = stream;
  debug.localStream = stream;
  const pc = new RTCPeerConnection({ iceServers: [] });
  current.pc = pc;
  debug.pc = pc;
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.addEventListener('track', (event) => {
    current.remoteStream.addTrack(event.track);
    // Re-assign so the element picks up the new track in every browser.
    if (call === current) ui.remote.srcObject = current.remoteStream;
    void ui.remote.play().catch(() => undefined);
  });
  pc.addEventListener('connectionstatechange', () => {
    if (!live(current)) return;
    if (pc.connectionState === 'failed') {
      if (current.callId) send({ type: 'call.hangup', callId: current.callId });
      showError('Media connection failed.');
      endCall('media-failed', true);
    }
  });
  return pc;
}

/** Wait until ICE gathering completes (or ~2 s), then return the complete local SDP. */
async function completeSdp(pc: RTCPeerConnection): Promise<string> {
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timeout);
        pc.removeEventListener('icegatheringstatechange', onChange);
        resolve();
      };
      const onChange = (): void => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timeout = setTimeout(done, ICE_GATHERING_TIMEOUT_MS);
      pc.addEventListener('icegatheringstatechange', onChange);
    });
  }
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error('no local description');
  return sdp;
}

function markActive(current: Call): void {
  current.answeredAt = Date.now();
  setState('active');
  startTimer(current);
}

/** Tear down the current call once. A local hang-up before call.created is sent when the id arrives. */
function endCall(reason: string, localHangup: boolean): void {
  const current = call;
  if (!current) {
    if (pendingIncoming) {
      const { callId } = pendingIncoming;
      pendingIncoming = null;
      finish(callId, reason);
    }
    return;
  }
  current.finished = true;
  call = null;
  if (localHangup && current.callId === null && current.direction === 'outbound') abandonedRefs.add(current.ref);
  current.pc?.close();
  if (current.localStream) stopStream(current.localStream);
  for (const track of current.remoteStream.getTracks()) track.stop();
  if (debug.pc === current.pc) debug.pc = null;
  finish(current.callId, reason);
}

function finish(callId: string | null, reason: string): void {
  stopTimer();
  debug.lastEnded = { callId, reason };
  ui.state.dataset.hold = '';
  ui.remote.srcObject = null;
  const label = (REASON_LABELS as Record<string, string>)[reason] ?? reason;
  if (ui.rec.dataset.rec !== 'off') setRecording('none', 'Not recording');
  setState('ended', `Call ended: ${label}`);
}

function stopStream(stream: MediaStream): void {
  for (const track of stream.getTracks()) track.stop();
}

/**
 * A key pressed on the pad during a call goes to the server as `call.dtmf`, which plays it to the trunk as an
 * RFC 4733 event. The server, not the browser's RTCDTMFSender, so that digits reach the far end the same way
 * whatever this browser negotiated, and the server can pace them.
 */
function sendDtmf(key: string): void {
  const callId = call?.callId;
  if (callState !== 'active' || !callId || !DTMF_KEY.test(key)) return;
  if (send({ type: 'call.dtmf', callId, digits: key })) {
    ui.dtmfSent.textContent = (ui.dtmfSent.textContent + key).slice(-DTMF_SHOWN);
    ui.dtmfSent.hidden = false;
  }
}

/** The pad dials a number between calls and sends digits during one (where `+` means nothing). */
function refreshKeypad(state: CallState): void {
  const inCall = state === 'active';
  ui.pad.dataset.mode = inCall ? 'dtmf' : 'dial';
  ui.pad.setAttribute('aria-label', inCall ? 'Keypad: sends tones to the call' : 'Dial pad');
  if (!inCall) {
    ui.dtmfSent.textContent = '';
    ui.dtmfSent.hidden = true;
  }
}

// ---------------------------------------------------------------------------------------------
// View

function setState(state: CallState, text?: string): void {
  callState = state;
  ui.state.dataset.state = state;
  const peer = call?.peer ?? pendingIncoming?.from ?? '';
  ui.state.textContent = text ?? STATE_LABELS[state](peer);
  ui.incoming.hidden = state !== 'incoming';
  if (state !== 'active') showPauseButton(null, false);
  ui.timer.hidden = state !== 'active';
  refreshKeypad(state);
  refreshControls();
}

function refreshControls(): void {
  const busy = call !== null && !call.finished;
  ui.call.disabled = !ready || busy || pendingIncoming !== null;
  ui.hangup.disabled = !busy;
  ui.connect.textContent = socket ? 'Disconnect' : 'Connect';
  ui.token.disabled = socket !== null;
}

function setStatus(kind: 'disconnected' | 'connecting' | 'ready' | 'error', text: string): void {
  ui.status.dataset.status = kind;
  ui.status.textContent = text;
}

function startTimer(current: Call): void {
  stopTimer();
  const tick = (): void => {
    const seconds = Math.floor((Date.now() - (current.answeredAt ?? Date.now())) / 1000);
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, '0');
    ui.timer.textContent = h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
  };
  tick();
  timerHandle = setInterval(tick, 1000);
}

function stopTimer(): void {
  if (timerHandle) clearInterval(timerHandle);
  timerHandle = null;
}

function showError(text: string): void {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

function clearError(): void {
  ui.error.textContent = '';
  ui.error.hidden = true;
}

function describe(err: unknown): string {
  if (err instanceof DOMException && err.name === 'NotAllowedError') return 'Microphone access was denied.';
  if (err instanceof DOMException && err.name === 'NotFoundError') return 'No microphone found.';
  return err instanceof Error ? err.message : String(err);
}

function normalizeNumber(raw: string): string {
  return raw.replace(/[\s().-]/g, '');
}

function randomRef(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------------------------
// Wiring

ui.authForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (socket) disconnect();
  else connect();
});
ui.pad.addEventListener('click', (event) => {
  const key = (event.target as HTMLElement).closest<HTMLButtonElement>('button[data-key]')?.dataset.key;
  if (!key) return;
  if (callState === 'active') sendDtmf(key);
  else ui.number.value += key;
});
ui.backspace.addEventListener('click', () => {
  ui.number.value = ui.number.value.slice(0, -1);
  ui.number.focus();
});
ui.number.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') void startCall();
});
ui.call.addEventListener('click', () => void startCall());
ui.hangup.addEventListener('click', hangup);
ui.pauseRecording.addEventListener('click', togglePause);
ui.answer.addEventListener('click', () => void answerCall());
ui.reject.addEventListener('click', rejectCall);
window.addEventListener('beforeunload', () => {
  if (call?.callId) send({ type: 'call.hangup', callId: call.callId });
});

setState('idle');
