import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config/load.js';
import { MonologueError } from '../errors.js';

/**
 * The deployment's consent policy: which version of the consent text is current (a user who accepted
 * another one is not recorded), and what the counterpart's number asks for (`recording.counterpartPolicy`).
 * These are configuration chosen by the operator, not legal advice.
 */

export type CounterpartAction = 'record' | 'announce' | 'skip';

export interface ConsentText {
  version: string;
  text: string;
  publishedAt: string;
}

/** The current consent text: `recording.consent.text`, or the file `textFile` names when it is empty. Read once, at start. */
export function loadConsentText(consent: Config['recording']['consent']): ConsentText {
  let text = consent.text;
  if (text === '') {
    if (consent.textFile === '') throw new MonologueError('CONFIG_INVALID', 'recording.consent needs a text or a textFile');
    try {
      text = readFileSync(consent.textFile, 'utf8');
    } catch (err) {
      throw new MonologueError('CONFIG_INVALID', `recording.consent.textFile ${consent.textFile} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  }
  const at = Date.parse(consent.publishedAt);
  if (Number.isNaN(at)) throw new MonologueError('CONFIG_INVALID', 'recording.consent.publishedAt must be an ISO 8601 date-time');
  return { version: consent.version, text, publishedAt: new Date(at).toISOString() };
}

/**
 * What the policy says for a counterpart: the rule with the longest matching E.164 prefix, else the default.
 * A number the dialer may not see (`anonymous`) matches no rule.
 */
export function counterpartAction(policy: Config['recording']['counterpartPolicy'], counterpart: string): CounterpartAction {
  let best: { length: number; action: CounterpartAction } | undefined;
  for (const rule of policy.rules) {
    if (counterpart.startsWith(rule.prefix) && (!best || rule.prefix.length > best.length)) best = { length: rule.prefix.length, action: rule.action };
  }
  return best?.action ?? policy.default;
}

/**
 * The announcement file, generated when missing: 8 kHz 16-bit mono WAV, three short 1 kHz beeps (about
 * 1.5 s), the tone convention for "this call is recorded". Operators replace it with a spoken prompt.
 */
export function ensureAnnounceFile(path: string): string {
  if (existsSync(path)) return path;
  const rate = 8000;
  const pcm: number[] = [];
  for (let beep = 0; beep < 3; beep++) {
    for (let i = 0; i < rate * 0.25; i++) pcm.push(Math.round(12000 * Math.sin((2 * Math.PI * 1000 * i) / rate)));
    for (let i = 0; i < rate * 0.25; i++) pcm.push(0);
  }
  const data = Buffer.alloc(pcm.length * 2);
  pcm.forEach((s, i) => data.writeInt16LE(s, i * 2));
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.concat([header, data]));
  return path;
}
